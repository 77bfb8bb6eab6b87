"""Network driver: hands out VIP, management and member-side addresses (ports)."""
from __future__ import annotations

import abc
import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session


@dataclass
class Port:
    """An address on a subnet, reserved for one owner (like a Neutron port)."""

    id: str
    network_id: str | None
    subnet_id: str | None
    ip_address: str
    subnet_cidr: str | None = None
    gateway: str | None = None
    # The Linux bridge of the network (local driver), where a compute driver plugs the port.
    bridge: str | None = None
    mtu: int | None = None
    mac_address: str | None = None
    created_at: dt.datetime | None = None


@dataclass
class VipRequest:
    load_balancer_id: str
    ip_address: str | None
    port_id: str | None
    subnet_id: str | None
    network_id: str | None


class NetworkDriver(abc.ABC):
    @abc.abstractmethod
    def allocate_vip(self, request: VipRequest) -> Port:
        """Reserve the VIP address (the requested one, or a free one on the subnet); the
        VIP the load balancer already holds, if it has one (a flow run again)."""

    @abc.abstractmethod
    def reserve_vip(self, session: Session, request: VipRequest) -> Port:
        """``allocate_vip`` in the caller's transaction (the API's, which writes the load
        balancer row with its VIP), plugging nothing: the port is held if and only if
        that transaction commits. A driver that keeps no ports in this database ignores
        ``session``."""

    @abc.abstractmethod
    def allocate_port(self, owner: str, subnet_id: str | None) -> Port:
        """Reserve an address for ``owner`` (an amphora) on a subnet (None: management);
        an owner holds one address per subnet, so asking again returns the same port."""

    @abc.abstractmethod
    def get_port(self, port_id: str) -> Port | None:
        """The port with this id, or None once it was released."""

    @abc.abstractmethod
    def ports_of(self, owner: str) -> list[Port]:
        """Every port reserved for ``owner``."""

    @abc.abstractmethod
    def devices(self) -> dict[str, list[Port]]:
        """Every port held for an amphora or a VIP, by the id of its holder (an amphora or
        a load balancer): what the reconciler compares with the rows."""

    @abc.abstractmethod
    def release_port(self, port_id: str) -> None:
        """Give the address back; releasing a released port is not an error."""
