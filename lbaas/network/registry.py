"""Networks and subnets in the database: create, find, list, delete.

Every function works in the caller's session, so a caller can combine several steps in
one transaction (for example creating a network and its bridge, committing only if both
worked). Bridges themselves are :mod:`lbaas.network.bridge`'s job.
"""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from lbaas.db.models import Network, Port, Subnet
from lbaas.network import addresses, segments
from lbaas.network.bridge import bridge_name, valid_interface_name
from lbaas.network.errors import (
    Duplicate,
    InUse,
    InvalidAddress,
    InvalidNetwork,
    InvalidSubnet,
    NotFound,
)

NamedT = TypeVar("NamedT", Network, Subnet)


def _by_name_or_id(session: Session, model: type[NamedT], name_or_id: str) -> NamedT | None:
    return session.get(model, name_or_id) or session.scalar(select(model).where(model.name == name_or_id))


def find_network(session: Session, name_or_id: str) -> Network:
    network = _by_name_or_id(session, Network, name_or_id)
    if network is None:
        raise NotFound(f"network {name_or_id} not found; `lbaas network list` shows the networks")
    return network


def find_subnet(session: Session, name_or_id: str) -> Subnet:
    subnet = _by_name_or_id(session, Subnet, name_or_id)
    if subnet is None:
        raise NotFound(f"subnet {name_or_id} not found; `lbaas subnet list` shows the subnets")
    return subnet


def get_subnet(session: Session, subnet_id: str) -> Subnet:
    """The subnet with this id (what a load balancer's ``vip_subnet_id`` refers to)."""
    subnet = session.get(Subnet, subnet_id)
    if subnet is None:
        raise NotFound(f"subnet {subnet_id} not found")
    return subnet


def list_networks(session: Session) -> list[Network]:
    return list(session.scalars(select(Network).order_by(Network.created_at, Network.id)))


def list_subnets(session: Session, network: Network | None = None) -> list[Subnet]:
    stmt = select(Subnet).order_by(Subnet.created_at, Subnet.id)
    if network is not None:
        stmt = stmt.where(Subnet.network_id == network.id)
    return list(session.scalars(stmt))


def _check_name_free(session: Session, model: type[NamedT], name: str, kind: str) -> None:
    if not name:
        raise InvalidNetwork(f"a {kind} needs a name")
    taken = session.scalar(select(model).where(model.name == name))
    if taken is not None:
        raise Duplicate(f"a {kind} named {name} already exists ({taken.id}); choose another name")


def create_network(session: Session, name: str, *, physical_interface: str | None = None,
                   project_id: str | None = None, shared: bool = True, mtu: int | None = None,
                   bridge: str | None = None, network_type: str = segments.LOCAL,
                   segmentation_id: int | None = None, physical_network: str | None = None,
                   vni_range: str = "1000:1999") -> Network:
    """A new network; its bridge is ``lbr-<11 hex digits of the id>`` unless ``bridge`` is
    given. A VXLAN network takes the lowest free VNI of ``vni_range`` unless it names one,
    and its MTU defaults to 1500 less the VXLAN headers."""
    _check_name_free(session, Network, name, "network")
    if network_type not in segments.NETWORK_TYPES:
        raise InvalidNetwork(f"network type {network_type} is not supported; use one of "
                             f"{', '.join(segments.NETWORK_TYPES)}")
    if physical_interface is not None:
        if network_type != segments.LOCAL:
            raise InvalidNetwork("--physical-interface is for a local network (one host); "
                                 "a flat network names its --provider-physical-network")
        if not valid_interface_name(physical_interface):
            raise InvalidNetwork(f"'{physical_interface}' is not a valid interface name")
        holder = session.scalar(select(Network).where(Network.physical_interface == physical_interface))
        if holder is not None:
            raise Duplicate(f"interface {physical_interface} already belongs to network {holder.name}")
    if (network_type == segments.FLAT) != bool(physical_network):
        raise InvalidNetwork("a flat network needs --provider-physical-network, and only a flat "
                             "network has one")
    if network_type == segments.VXLAN:
        segmentation_id = _vni(session, segmentation_id, vni_range)
    elif segmentation_id is not None:
        raise InvalidNetwork("only a vxlan network has a segmentation id (VNI)")
    if mtu is None:
        mtu = 1500 - segments.VXLAN_OVERHEAD if network_type == segments.VXLAN else 1500
    if not 68 <= mtu <= 65535:
        raise InvalidNetwork(f"mtu {mtu} is out of range; use 68 to 65535 (usually 1500)")
    network_id = str(uuid.uuid4())
    network = Network(id=network_id, name=name, project_id=project_id, shared=shared, mtu=mtu,
                      bridge=bridge or bridge_name(network_id), physical_interface=physical_interface,
                      network_type=network_type, segmentation_id=segmentation_id,
                      physical_network=physical_network)
    session.add(network)
    session.flush()
    return network


def _vni(session: Session, requested: int | None, vni_range: str) -> int:
    """The requested VNI if free, else the lowest free one of ``vni_range`` (start:end)."""
    taken = set(session.scalars(select(Network.segmentation_id)
                                .where(Network.segmentation_id.is_not(None))))
    if requested is not None:
        if not 1 <= requested <= 16777215:
            raise InvalidNetwork(f"VNI {requested} is out of range; use 1 to 16777215")
        if requested in taken:
            raise Duplicate(f"VNI {requested} is taken by another network; choose another")
        return requested
    try:
        start, end = (int(part) for part in vni_range.split(":"))
    except ValueError as exc:
        raise InvalidNetwork(f"[networking] vni_ranges {vni_range!r} is not start:end") from exc
    free = next((vni for vni in range(start, end + 1) if vni not in taken), None)
    if free is None:
        raise InvalidNetwork(f"no free VNI left in [networking] vni_ranges {vni_range}; "
                             "widen the range")
    return free


def segment_of(network: Network, peers: Sequence[str] = ()) -> segments.Segment:
    """What a host needs of ``network``; ``peers``: the other hosts' tunnel addresses."""
    return segments.Segment(
        network_id=network.id, bridge=network.bridge, network_type=network.network_type,
        mtu=network.mtu, segmentation_id=network.segmentation_id,
        physical_network=network.physical_network,
        physical_interface=network.physical_interface,
        peers=tuple(peers) if network.network_type == segments.VXLAN else ())


def _ports_on(session: Session, subnet_ids: Sequence[str]) -> list[Port]:
    return list(session.scalars(select(Port).where(Port.subnet_id.in_(subnet_ids))
                                .order_by(Port.created_at)))


def _refuse_if_used(session: Session, kind: str, name: str, subnet_ids: Sequence[str]) -> None:
    ports = _ports_on(session, subnet_ids)
    if ports:
        holders = ", ".join(sorted({f"{port.device_owner} {port.device_id}" for port in ports})[:5])
        raise InUse(f"{kind} {name} is in use: {len(ports)} address(es) handed out ({holders}); "
                    "delete the load balancers that use it first")


def delete_network(session: Session, network: Network) -> None:
    """Delete the network and its subnets; refused while any address on them is handed out."""
    _refuse_if_used(session, "network", network.name, [subnet.id for subnet in network.subnets])
    for subnet in network.subnets:
        session.delete(subnet)
    session.delete(network)
    session.flush()


def spec_of(subnet: Subnet) -> addresses.SubnetSpec:
    """The subnet's layout as address values."""
    return addresses.SubnetSpec(
        cidr=addresses.parse_cidr(subnet.cidr),
        gateway=addresses.parse_address(subnet.gateway_ip, "gateway") if subnet.gateway_ip else None,
        pools=tuple(addresses.Pool(addresses.parse_address(pool["start"], "pool start"),
                                   addresses.parse_address(pool["end"], "pool end"))
                    for pool in subnet.allocation_pools))


def _check_no_overlap(session: Session, network: Network, spec: addresses.SubnetSpec,
                      ignore: Subnet | None = None) -> None:
    for other in network.subnets:
        if other is not ignore and spec.cidr.overlaps(addresses.parse_cidr(other.cidr)):
            raise InvalidSubnet(f"requested subnet with cidr {spec.cidr} for network {network.name} "
                                f"overlaps with subnet {other.name} ({other.cidr})")


def apply_spec(subnet: Subnet, spec: addresses.SubnetSpec) -> None:
    """Write a validated layout into the subnet row."""
    subnet.cidr = str(spec.cidr)
    subnet.ip_version = spec.ip_version
    subnet.gateway_ip = str(spec.gateway) if spec.gateway else None
    subnet.allocation_pools = [pool.as_dict() for pool in spec.pools]


def create_subnet(session: Session, name: str, network: Network, cidr: str, *,
                  gateway: str | None = addresses.AUTO, pools: Sequence[str | addresses.Pool] = (),
                  project_id: str | None = None) -> Subnet:
    """A new subnet on ``network``; ``gateway`` is an address, ``auto`` or ``none``."""
    _check_name_free(session, Subnet, name, "subnet")
    spec = addresses.subnet_spec(cidr, gateway, pools)
    _check_no_overlap(session, network, spec)
    subnet = Subnet(name=name, network=network, project_id=project_id)
    apply_spec(subnet, spec)
    session.add(subnet)
    session.flush()
    return subnet


def change_layout(session: Session, subnet: Subnet, spec: addresses.SubnetSpec) -> None:
    """Give the subnet a new layout, provided every address handed out still fits in it."""
    _check_no_overlap(session, subnet.network, spec, ignore=subnet)
    for port in _ports_on(session, [subnet.id]):
        try:
            addresses.check_address(spec, port.ip_address)
        except InvalidAddress as exc:
            raise InUse(f"subnet {subnet.name} cannot become {spec.cidr}: {exc}, and it is held "
                        f"by {port.device_owner} {port.device_id}; release it first") from exc
    apply_spec(subnet, spec)
    session.flush()


def delete_subnet(session: Session, subnet: Subnet) -> None:
    """Delete the subnet; refused while any address on it is handed out."""
    _refuse_if_used(session, "subnet", subnet.name, [subnet.id])
    session.delete(subnet)
    session.flush()
