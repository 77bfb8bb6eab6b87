"""nftables rules that serve a load balancer's UDP/SCTP listeners: a pure function.

``commands(service, served, existing)`` returns one nft transaction (text syntax) that
makes the table ``inet lbaas_udp_<lb>`` serve ``service`` sending to the members in
``served`` (those enabled, with weight, and up by their health monitor: see
``served_members``). The table is kept across changes (its named counters keep counting,
clients keep their persistence entries); its chains are flushed and refilled in the same
transaction, and objects that no longer belong are deleted, so packets see either the old
rules or the new ones.

Per listener (``ct mark`` = the listener's mark, so later packets of a flow and its
replies are known without looking at addresses again):

* ``dnat_in`` (nat prerouting: the first packet of each flow): a packet for a VIP and the
  listener's port from a client outside ``allowed_cidrs`` (if any) is dropped, any other
  gets the mark; over ``connection_limit`` tracked flows it is dropped
  (counted ``l_<id>_drop``); otherwise it is counted (``_new``) and DNATed: with SOURCE_IP
  persistence to the member its client (network) had within ``persistence_timeout``, else
  by the pool's algorithm, ``numgen inc`` (ROUND_ROBIN) or ``jhash`` of the source address
  (SOURCE_IP) over slots given out by weight (smooth weighted round robin);
* ``track`` (after DNAT): records each packet's member in the persistence map, which
  restarts its timeout;
* ``filter_fwd`` (forward, policy drop: the amphora forwards nothing but these flows):
  byte/packet counters per member and per listener and direction;
* ``snat_out``: masquerade, so members answer through the amphora whatever their route.

A packet for a listener with no member to send to is not DNATed: the amphora answers it
with ICMP port unreachable, as for a port nothing listens on.
"""
from __future__ import annotations

import ipaddress
import math
import zlib
from collections.abc import Iterable, Mapping

from lbaas.amphora.agent.udp_model import Listener, Member, Pool, UdpService

FAMILY = "inet"
CHAINS = {
    "dnat_in": "type nat hook prerouting priority dstnat; policy accept;",
    "track": "type filter hook prerouting priority dstnat + 10; policy accept;",
    "filter_fwd": "type filter hook forward priority filter; policy drop;",
    "snat_out": "type nat hook postrouting priority srcnat; policy accept;",
}
NFPROTO = {4: "ipv4", 6: "ipv6"}
ADDRESS = {4: "ip", 6: "ip6"}
ADDRESS_TYPE = {4: "ipv4_addr", 6: "ipv6_addr"}


def table_name(load_balancer_id: str) -> str:
    return f"lbaas_udp_{load_balancer_id.replace('-', '')}"


def mark(listener_id: str) -> int:
    """The listener's conntrack mark: a stable 32-bit hash of its id, never 0 (unmarked)."""
    return zlib.crc32(listener_id.encode()) or 1


def _name(prefix: str, object_id: str, suffix: str) -> str:
    return f"{prefix}_{object_id.replace('-', '')}_{suffix}"


def listener_counters(listener_id: str) -> dict[str, str]:
    """Counter names of a listener: new flows, bytes in (client to member) and out, drops."""
    return {key: _name("l", listener_id, key) for key in ("new", "in", "out", "drop")}


def member_counters(member_id: str) -> dict[str, str]:
    return {key: _name("m", member_id, key) for key in ("in", "out")}


def persistence_map(listener_id: str, version: int) -> str:
    return _name("p", listener_id, f"v{version}")


def _flows_set(listener_id: str) -> str:
    return _name("l", listener_id, "flows")


def served_members(pool: Pool, up: Mapping[str, bool]) -> tuple[Member, ...]:
    """The members a pool sends new flows to: enabled, weight above 0, not DOWN by their
    monitor (``up``: member id -> last verdict; a member not in it counts as up); backup
    members only when no other is left, as haproxy does."""
    usable = [member for member in pool.members
              if member.enabled and member.weight > 0 and up.get(member.id, True)]
    primary = [member for member in usable if not member.backup]
    return tuple(primary or usable)


def slots(weights: list[int]) -> list[int]:
    """Indexes into ``weights``, each as often as its weight (reduced by their common
    divisor), interleaved by smooth weighted round robin: 5,1,1 gives 0,0,1,0,2,0,0."""
    divisor = math.gcd(*weights)
    reduced = [weight // divisor for weight in weights]
    total = sum(reduced)
    current = [0] * len(reduced)
    order = []
    for _ in range(total):
        current = [value + weight for value, weight in zip(current, reduced, strict=True)]
        chosen = max(range(len(current)), key=lambda index: current[index])
        current[chosen] -= total
        order.append(chosen)
    return order


def _map_elements(members: tuple[Member, ...]) -> str:
    """``0-1 : addr . port, 2 : ...``: runs of one member as a range."""
    order = slots([member.weight for member in members])
    elements, start = [], 0
    for index in range(1, len(order) + 1):
        if index == len(order) or order[index] != order[start]:
            member = members[order[start]]
            key = f"{start}" if index - 1 == start else f"{start}-{index - 1}"
            elements.append(f"{key} : {member.address} . {member.port}")
            start = index
    return ", ".join(elements)


def _version(address: str) -> int:
    return ipaddress.ip_address(address).version


def _source(version: int, granularity: str | None) -> str:
    """The persistence key: the source address, masked (IPv4) to the granularity."""
    source = f"{ADDRESS[version]} saddr"
    if version == 4 and granularity and granularity != "255.255.255.255":
        source = f"{source} & {granularity}"
    return source


class _Rules:
    def __init__(self, table: str) -> None:
        self.table = table
        self.lines: list[str] = []
        self.objects: dict[str, str] = {}  # name -> kind ("counter", "map", "set")

    def rule(self, chain: str, text: str) -> None:
        self.lines.append(f"add rule {FAMILY} {self.table} {chain} {text}")

    def object(self, kind: str, name: str, spec: str = "") -> None:
        self.objects[name] = kind
        body = f" {{ {spec} }}" if spec else ""
        self.lines.append(f"add {kind} {FAMILY} {self.table} {name}{body}")


def commands(service: UdpService, served: Mapping[str, tuple[Member, ...]],
             existing: Mapping[str, str] | None = None) -> str:
    """The transaction that makes the table serve ``service`` (see the module's docstring).

    ``served``: listener id -> the members to send to; ``existing``: the named objects the
    table holds now (name -> kind), so that the ones no longer wanted are deleted.
    """
    rules = _Rules(table_name(service.load_balancer_id))
    rules.lines.append(f"add table {FAMILY} {rules.table}")
    for chain, spec in CHAINS.items():
        rules.lines.append(f"add chain {FAMILY} {rules.table} {chain} {{ {spec} }}")
        rules.lines.append(f"flush chain {FAMILY} {rules.table} {chain}")
    for listener in service.listeners:
        _listener(rules, listener, served.get(listener.id, ()))
    for name, kind in sorted((existing or {}).items()):
        if name not in rules.objects:
            rules.lines.append(f"delete {kind} {FAMILY} {rules.table} {name}")
    return "\n".join(rules.lines) + "\n"


def delete_commands(load_balancer_id: str) -> str:
    table = table_name(load_balancer_id)
    # "add" first: deleting a table that is not there would fail the transaction.
    return f"add table {FAMILY} {table}\ndelete table {FAMILY} {table}\n"


def _listener(rules: _Rules, listener: Listener, members: tuple[Member, ...]) -> None:
    ct_mark = f"ct mark {mark(listener.id):#010x}"
    protocol = f"meta l4proto {listener.protocol.lower()}"
    counters = listener_counters(listener.id)
    for name in counters.values():
        rules.object("counter", name)
    for version in (4, 6):
        vips = [vip for vip in listener.vips if _version(vip) == version]
        if vips and listener.allowed_cidrs:
            cidrs = [cidr for cidr in listener.allowed_cidrs
                     if _version(cidr.split("/")[0]) == version]
            allowed = f" {ADDRESS[version]} saddr != {{ {', '.join(cidrs)} }}" if cidrs else ""
            rules.rule("dnat_in", f"{ADDRESS[version]} daddr {{ {', '.join(vips)} }} {protocol} "
                                  f"th dport {listener.port}{allowed} drop")
        if vips:
            rules.rule("dnat_in", f"{ADDRESS[version]} daddr {{ {', '.join(vips)} }} {protocol} "
                                  f"th dport {listener.port} ct mark set {mark(listener.id):#010x}")
    if listener.connection_limit is not None:
        flows = _flows_set(listener.id)
        rules.object("set", flows, "type mark; flags dynamic;")
        rules.rule("dnat_in", f"{ct_mark} add @{flows} {{ ct mark ct count over "
                              f"{listener.connection_limit} }} "
                              f"counter name \"{counters['drop']}\" drop")
    rules.rule("dnat_in", f"{ct_mark} counter name \"{counters['new']}\"")
    pool = listener.pool
    if pool is not None:
        for version in (4, 6):
            family_members = tuple(member for member in members
                                   if _version(member.address) == version)
            if family_members:
                _balance(rules, listener, pool, version, family_members, ct_mark)
        for member in pool.members:
            _member(rules, member, ct_mark)
    for direction, counter in (("original", counters["in"]), ("reply", counters["out"])):
        rules.rule("filter_fwd", f"{ct_mark} ct direction {direction} counter name \"{counter}\" "
                                 "accept")
    rules.rule("snat_out", f"{ct_mark} masquerade")


def _balance(rules: _Rules, listener: Listener, pool: Pool, version: int,
             members: tuple[Member, ...], ct_mark: str) -> None:
    # nft maps a port only after a transport protocol match.
    family = f"meta nfproto {NFPROTO[version]} meta l4proto {listener.protocol.lower()}"
    address = ADDRESS[version]
    persistence = pool.persistence
    if persistence is not None:
        _persist(rules, listener, pool, version, members, ct_mark, family)
    total = len(slots([member.weight for member in members]))
    selector = (f"jhash {address} saddr mod {total} seed 0x0" if pool.algorithm == "SOURCE_IP"
                else f"numgen inc mod {total}")
    rules.rule("dnat_in", f"{ct_mark} {family} dnat {address} to {selector} map "
                          f"{{ {_map_elements(members)} }}")


def _persist(rules: _Rules, listener: Listener, pool: Pool, version: int,
             members: tuple[Member, ...], ct_mark: str, family: str) -> None:
    """SOURCE_IP persistence: a map from the client (network) to its member's number, with
    a timeout that every packet restarts. A new flow of a known client goes to that member
    if it is still served (else the lookup misses and the algorithm picks another, which
    the map then records). The number travels in the packet mark between the lookup and
    the DNAT (nft 1.0.6 cannot store an IPv6 address and port as one map value)."""
    assert pool.persistence is not None
    address = ADDRESS[version]
    name = persistence_map(listener.id, version)
    source = _source(version, pool.persistence.granularity)
    rules.object("map", name, f"type {ADDRESS_TYPE[version]} : mark; flags dynamic,timeout; "
                              f"timeout {pool.persistence.timeout}s;")
    numbered = ", ".join(f"{member_number(member.id):#010x} : {member.address} . {member.port}"
                         for member in members)
    rules.rule("dnat_in", f"{ct_mark} {family} meta mark set {source} map @{name}")
    rules.rule("dnat_in", f"{ct_mark} {family} meta mark != 0x0 dnat {address} to meta mark map "
                          f"{{ {numbered} }}")
    known = ", ".join(f"{member.address} . {member.port} : {member_number(member.id):#010x}"
                      for member in pool.members if _version(member.address) == version)
    rules.rule("track", f"{ct_mark} ct direction original {family} meta mark set "
                        f"{address} daddr . th dport map {{ {known} }}")
    rules.rule("track", f"{ct_mark} ct direction original {family} meta mark != 0x0 "
                        f"update @{name} {{ {source} : meta mark }} meta mark set 0x0")


def member_number(member_id: str) -> int:
    """A member's number in the persistence maps: a stable 32-bit hash of its id, never 0."""
    return zlib.crc32(member_id.encode()) or 1


def _member(rules: _Rules, member: Member, ct_mark: str) -> None:
    counters = member_counters(member.id)
    for name in counters.values():
        rules.object("counter", name)
    address = ADDRESS[_version(member.address)]
    rules.rule("filter_fwd", f"{ct_mark} ct direction original {address} daddr {member.address} "
                             f"th dport {member.port} counter name \"{counters['in']}\"")
    rules.rule("filter_fwd", f"{ct_mark} ct direction reply {address} saddr {member.address} "
                             f"th sport {member.port} counter name \"{counters['out']}\"")


def members_of(service: UdpService) -> Iterable[tuple[Listener, Member]]:
    for listener in service.listeners:
        for member in listener.pool.members if listener.pool else ():
            yield listener, member
