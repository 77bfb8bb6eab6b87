"""References from the load-balancing API into the network registry.

With the ``local`` network driver the networks and subnets a request names live in this
service's own registry, so the API checks them as upstream checks Neutron's: an unknown
subnet or network is a 400, a VIP address must lie in its subnet and be free. The
management network is not there for tenants: naming it (or its subnet, or a port on it)
is the same 400 as naming nothing. With the no-op driver there is nothing to check
against.
"""
from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lbaas.api import faults
from lbaas.config import Settings
from lbaas.db.models import Network, Port, Subnet
from lbaas.network import management


def check_subnet(session: Session, settings: Settings, subnet_id: str | None) -> Subnet | None:
    """The registry's subnet ``subnet_id`` (400 if unknown); None without the registry."""
    if subnet_id is None or not management.uses_local_network(settings):
        return None
    subnet = session.get(Subnet, subnet_id)
    if subnet is None or management.is_management_network(subnet.network):
        raise faults.InvalidSubresource(resource="Subnet", id=subnet_id)
    return subnet


def check_vip(session: Session, settings: Settings, body: Any) -> None:
    """The VIP's network, subnet and address exist, fit together and are free."""
    if not management.uses_local_network(settings):
        return
    if body.vip_port_id:
        port = session.get(Port, body.vip_port_id)
        port_subnet = session.get(Subnet, port.subnet_id) if port is not None else None
        if port is None or (port_subnet is not None
                            and management.is_management_network(port_subnet.network)):
            raise faults.InvalidSubresource(resource="Port", id=body.vip_port_id)
    for vip in getattr(body, "additional_vips", None) or []:
        check_subnet(session, settings, vip.subnet_id)
    network = None
    if body.vip_network_id:
        network = session.get(Network, body.vip_network_id)
        if network is None or management.is_management_network(network):
            raise faults.InvalidSubresource(resource="Network", id=body.vip_network_id)
    subnet = check_subnet(session, settings, body.vip_subnet_id)
    if subnet is not None and network is not None and subnet.network_id != network.id:
        raise faults.ValidationException(
            detail=f"Subnet {subnet.id} is not on network {network.id}.")
    if body.vip_address is None:
        return
    candidates = [subnet] if subnet is not None else list(network.subnets) if network else []
    address = ipaddress.ip_address(body.vip_address)
    inside = [item for item in candidates if address in ipaddress.ip_network(item.cidr)]
    if candidates and not inside:
        raise faults.ValidationException(
            detail=f"VIP address {body.vip_address} is not within the VIP subnet.")
    taken = session.scalar(select(Port).where(Port.ip_address == str(address),
                                              Port.subnet_id.in_([item.id for item in inside])))
    if taken is not None:
        raise faults.ValidationException(
            detail=f"VIP address {body.vip_address} is already in use.")
