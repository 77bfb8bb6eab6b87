"""Subnet arithmetic: parse and validate CIDRs, gateways and allocation pools; find free addresses.

Pure functions on :mod:`ipaddress` values, no database and no system calls. The rules are
Neutron's: the CIDR has no host bits; the gateway is an address of the subnet that is
neither the network nor the broadcast address; allocation pools lie inside the subnet,
hold neither of those two addresses nor the gateway, and do not overlap each other.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from lbaas.network.errors import InvalidAddress, InvalidSubnet

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# Addresses of one version are compared as integers: ``ipaddress`` orders only addresses
# of the same class, which a type checker cannot see through the union above.
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

AUTO = "auto"
NONE = "none"


@dataclass(frozen=True, order=True)
class Pool:
    """An inclusive range of addresses, ``start`` to ``end``."""

    start: Address
    end: Address

    def __str__(self) -> str:
        return str(self.start) if self.start == self.end else f"{self.start}-{self.end}"

    def __contains__(self, address: object) -> bool:
        return (isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address))
                and address.version == self.start.version
                and int(self.start) <= int(address) <= int(self.end))

    def overlaps(self, other: Pool) -> bool:
        return (self.start.version == other.start.version
                and int(self.start) <= int(other.end) and int(other.start) <= int(self.end))

    @property
    def size(self) -> int:
        return int(self.end) - int(self.start) + 1

    def as_dict(self) -> dict[str, str]:
        return {"start": str(self.start), "end": str(self.end)}


@dataclass(frozen=True)
class SubnetSpec:
    """A validated subnet layout."""

    cidr: Network
    gateway: Address | None
    pools: tuple[Pool, ...]

    @property
    def ip_version(self) -> int:
        return self.cidr.version


def parse_address(text: str, what: str) -> Address:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError as exc:
        raise InvalidAddress(f"{what} '{text}' is not an IPv4 or IPv6 address") from exc


def parse_cidr(text: str) -> Network:
    """A network in CIDR notation without host bits (Neutron's rule and wording)."""
    text = text.strip()
    try:
        interface = ipaddress.ip_interface(text)
    except ValueError as exc:
        raise InvalidSubnet(f"'{text}' is not a valid CIDR (e.g. 10.0.0.0/24)") from exc
    if "/" not in text:
        raise InvalidSubnet(f"'{text}' is not a valid CIDR: it has no prefix length (e.g. {text}/24)")
    if interface.ip != interface.network.network_address:
        raise InvalidSubnet(
            f"'{text}' isn't a recommended CIDR, '{interface.network}' should be specified instead")
    return interface.network


def parse_pool(text: str) -> Pool:
    """``start=IP,end=IP`` (the openstack CLI's form) or ``IP-IP`` (the seed deployment's)."""
    text = text.strip()
    if "=" in text:
        fields = dict(item.split("=", 1) for item in text.split(",") if "=" in item)
        if set(fields) != {"start", "end"}:
            raise InvalidSubnet(f"allocation pool '{text}' must be written start=IP,end=IP")
        start_text, end_text = fields["start"], fields["end"]
    else:
        start_text, sep, end_text = text.partition("-")
        if not sep:
            raise InvalidSubnet(f"allocation pool '{text}' must be written start=IP,end=IP or IP-IP")
    start = parse_address(start_text, "allocation pool start")
    end = parse_address(end_text, "allocation pool end")
    if start.version != end.version:
        raise InvalidSubnet(f"allocation pool {start}-{end} mixes IPv4 and IPv6")
    if int(start) > int(end):
        raise InvalidSubnet(f"allocation pool {start}-{end}: the start is after the end")
    return Pool(start, end)


def parse_range(text: str) -> Pool:
    """One address, or a range ``IP-IP`` (the entries of ``[networking] used_ips``)."""
    if "-" in text:
        return parse_pool(text)
    address = parse_address(text, "address")
    return Pool(address, address)


def _point_to_point(cidr: Network) -> bool:
    """IPv4 /31 and /32 have no network or broadcast address (RFC 3021)."""
    return cidr.version == 4 and cidr.prefixlen >= 31


def reserved_addresses(cidr: Network) -> tuple[Address, ...]:
    """The addresses no host may take: the network address, and IPv4's broadcast address."""
    if _point_to_point(cidr):
        return ()
    if cidr.version == 4:
        return (cidr.network_address, cidr.broadcast_address)
    return (cidr.network_address,)


def usable_range(cidr: Network) -> Pool:
    """Every address of the subnet that a host may hold."""
    if _point_to_point(cidr):
        return Pool(cidr.network_address, cidr.broadcast_address)
    last = cidr.broadcast_address - 1 if cidr.version == 4 else cidr.broadcast_address
    if int(cidr.network_address) + 1 > int(last):
        raise InvalidSubnet(f"subnet {cidr} has no address a host could use; choose a shorter prefix")
    return Pool(cidr.network_address + 1, last)


def pools_excluding(usable: Pool, excluded: Iterable[Pool]) -> list[Pool]:
    """``usable`` split into the ranges that avoid every excluded range (Neutron's default pools)."""
    pools = []
    start = usable.start
    for gap in sorted(excluded, key=lambda pool: (int(pool.start), int(pool.end))):
        if (gap.start.version != start.version  # another family's range takes nothing here
                or int(gap.end) < int(start) or int(gap.start) > int(usable.end)):
            continue
        if int(gap.start) > int(start):
            pools.append(Pool(start, gap.start - 1))
        if int(gap.end) >= int(usable.end):
            return pools
        start = max(start, gap.end + 1, key=int)
    pools.append(Pool(start, usable.end))
    return pools


def gateway_address(cidr: Network, gateway: str | None) -> Address | None:
    """The gateway of ``cidr``: an address of it, ``auto`` (the first host) or ``none``/None."""
    if gateway is None or gateway.strip().lower() == NONE:
        return None
    if gateway.strip().lower() == AUTO:
        return usable_range(cidr).start
    address = parse_address(gateway, "gateway")
    if address not in cidr:
        raise InvalidSubnet(f"gateway {address} is not inside the subnet {cidr}; "
                            f"choose an address of {cidr}, or none")
    if address in reserved_addresses(cidr):
        raise InvalidSubnet(f"gateway {address} is the network or broadcast address of {cidr}; "
                            f"choose a host address of {cidr}")
    return address


def _check_pools(cidr: Network, gateway: Address | None, pools: Sequence[Pool]) -> None:
    for pool in pools:
        if pool.start not in cidr or pool.end not in cidr:
            raise InvalidSubnet(f"allocation pool {pool} spans beyond the subnet cidr {cidr}")
        for address in reserved_addresses(cidr):
            if address in pool:
                raise InvalidSubnet(f"allocation pool {pool} includes {address}, the network or "
                                    f"broadcast address of {cidr}; start or end the pool inside it")
        if gateway is not None and gateway in pool:
            raise InvalidSubnet(f"gateway ip {gateway} conflicts with allocation pool {pool}; "
                                "leave the gateway out of the pool or choose another --gateway")
    ordered = sorted(pools)
    for first, second in zip(ordered, ordered[1:], strict=False):
        if first.overlaps(second):
            raise InvalidSubnet(f"allocation pools {first} and {second} overlap")


def subnet_spec(cidr: str, gateway: str | None = AUTO, pools: Sequence[str | Pool] = ()) -> SubnetSpec:
    """Validate a subnet. ``gateway``: an address, ``auto`` (the first host) or ``none``.

    Without pools, the pool is every usable address except the gateway.
    """
    network = parse_cidr(cidr)
    gateway_ip = gateway_address(network, gateway)
    parsed = [pool if isinstance(pool, Pool) else parse_pool(pool) for pool in pools]
    if not parsed:
        excluded = [Pool(gateway_ip, gateway_ip)] if gateway_ip else []
        parsed = pools_excluding(usable_range(network), excluded)
        if not parsed:
            raise InvalidSubnet(f"subnet {network} has no address left after the gateway "
                                f"{gateway_ip}; choose a shorter prefix or --gateway none")
    _check_pools(network, gateway_ip, parsed)
    return SubnetSpec(cidr=network, gateway=gateway_ip, pools=tuple(sorted(parsed)))


def check_address(spec: SubnetSpec, text: str) -> Address:
    """A specifically requested address: inside the subnet, a host address, not the gateway.

    It may lie outside the allocation pools, as in Neutron.
    """
    address = parse_address(text, "address")
    if address not in spec.cidr:
        raise InvalidAddress(f"address {address} is not inside the subnet {spec.cidr}")
    if address in reserved_addresses(spec.cidr):
        raise InvalidAddress(f"address {address} is the network or broadcast address of {spec.cidr}")
    if address == spec.gateway:
        raise InvalidAddress(f"address {address} is the gateway of subnet {spec.cidr}")
    return address


def free_addresses(pools: Iterable[Pool], taken: set[Address]) -> Iterator[Address]:
    """The pools' addresses that are not taken, lowest first."""
    for pool in sorted(pools):
        for value in range(int(pool.start), int(pool.end) + 1):
            address = type(pool.start)(value)
            if address not in taken:
                yield address
