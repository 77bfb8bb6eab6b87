"""Network driver: hands out VIP and member-side addresses and plugs amphorae in."""
from __future__ import annotations

import abc
from dataclasses import dataclass


@dataclass
class Vip:
    ip_address: str
    port_id: str
    subnet_id: str | None
    network_id: str | None


@dataclass
class VipRequest:
    load_balancer_id: str
    ip_address: str | None
    port_id: str | None
    subnet_id: str | None
    network_id: str | None


class NetworkDriver(abc.ABC):
    @abc.abstractmethod
    def allocate_vip(self, request: VipRequest) -> Vip:
        """Reserve the VIP address (the requested one, or a free one on the subnet)."""

    @abc.abstractmethod
    def deallocate_vip(self, vip: Vip) -> None:
        """Release the VIP address; releasing a released one is not an error."""

    @abc.abstractmethod
    def plug_vip(self, vip: Vip, amphora_id: str, compute_id: str) -> str | None:
        """Connect an amphora to the VIP network; returns its own (VRRP) address there."""

    @abc.abstractmethod
    def unplug_vip(self, vip: Vip, amphora_id: str, compute_id: str) -> None:
        """Disconnect an amphora from the VIP network."""
