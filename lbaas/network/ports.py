"""Handing out and releasing addresses (ports) on subnets.

An address is held by one port row; the ``(subnet_id, ip_address)`` unique constraint
makes the database refuse a second holder, so two allocators (threads, processes, hosts)
can never both get it, and a restart changes nothing. An allocator that loses such a
race (its insert is refused) moves on to the next free address.
"""
from __future__ import annotations

import logging
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lbaas.db.models import Port
from lbaas.network import addresses, registry
from lbaas.network.errors import AddressInUse, NetworkError, NoFreeAddress

LOG = logging.getLogger(__name__)

# Neutron's default base MAC: locally administered, and familiar to operators.
MAC_PREFIX = "fa:16:3e"
MAX_ATTEMPTS = 20

# device_owner values (Neutron spells its own as "network:..." and "compute:...").
OWNER_CONTROLLER = "network:controller"
OWNER_VIP = "lbaas:vip"
OWNER_AMPHORA = "lbaas:amphora"


def _random_mac() -> str:
    return ":".join([MAC_PREFIX, *(f"{byte:02x}" for byte in secrets.token_bytes(3))])


def _taken(session: Session, subnet_id: str) -> set[addresses.Address]:
    held = session.scalars(select(Port.ip_address).where(Port.subnet_id == subnet_id))
    return {addresses.parse_address(address, "address") for address in held}


def _choose(spec: addresses.SubnetSpec, taken: set[addresses.Address],
            requested: addresses.Address | None, subnet_name: str) -> addresses.Address:
    if requested is not None:
        if requested in taken:
            raise AddressInUse(f"address {requested} on subnet {subnet_name} is already in use")
        return requested
    free = next(addresses.free_addresses(spec.pools, taken), None)
    if free is None:
        pools = ", ".join(str(pool) for pool in spec.pools)
        raise NoFreeAddress(f"no free address left on subnet {subnet_name} (pools {pools}); "
                            "release some or give the subnet a larger allocation pool")
    return free


def allocate(session: Session, subnet_id: str, *, device_id: str, device_owner: str,
             ip_address: str | None = None) -> Port:
    """Hand out an address on the subnet to ``device_id``: ``ip_address``, or the lowest free one.

    A requested address may lie outside the allocation pools but must be a host address
    of the subnet other than the gateway. The port is flushed, not committed: it is held
    once the caller's transaction commits.
    """
    subnet = registry.get_subnet(session, subnet_id)
    spec = registry.spec_of(subnet)
    requested = addresses.check_address(spec, ip_address) if ip_address else None
    lost: set[addresses.Address] = set()
    for _ in range(MAX_ATTEMPTS):
        address = _choose(spec, _taken(session, subnet.id) | lost, requested, subnet.name)
        port = Port(subnet_id=subnet.id, ip_address=str(address), mac_address=_random_mac(),
                    device_id=device_id, device_owner=device_owner)
        try:
            with session.begin_nested():
                session.add(port)
        except IntegrityError:
            # Another allocator committed this address (or, rarely, this MAC) first.
            LOG.debug("address %s on subnet %s was taken concurrently; trying again", address, subnet.id)
            lost.add(address)
            continue
        return port
    raise NetworkError(f"could not allocate an address on subnet {subnet.name}: other allocators "
                       f"took {MAX_ATTEMPTS} candidates first; try again")


def ports_of(session: Session, device_id: str) -> list[Port]:
    """Every address the device holds."""
    return list(session.scalars(select(Port).where(Port.device_id == device_id)
                                .order_by(Port.created_at)))


def release(session: Session, port_id: str) -> bool:
    """Give the port's address back; False if it was released already."""
    port = session.get(Port, port_id)
    if port is None:
        return False
    session.delete(port)
    session.flush()
    return True


def release_device(session: Session, device_id: str) -> int:
    """Give back every address the device holds; how many were released."""
    ports = ports_of(session, device_id)
    for port in ports:
        session.delete(port)
    session.flush()
    return len(ports)
