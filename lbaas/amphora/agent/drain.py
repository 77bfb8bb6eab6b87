"""Draining an amphora before its VIP moves to a peer (the failover of an ACTIVE_STANDBY
MASTER): once the VIP moves, the packets of connections still open here reach the peer,
which knows none of them and resets them. So first new connections to the VIP are
dropped (not refused: a client sends its SYN again a second later, by when the peer holds
the VIP), then every haproxy stops listening and finishes what it has (SIGUSR1, its soft
stop; idle keep-alive connections are closed, and their clients reconnect), and as soon
as no connection to the VIP is open any more, or ``timeout`` passed, the controller moves
the VIP.

The end is judged by the connections, not by haproxy exiting: a soft-stopped haproxy with
a ``peers`` section (every ACTIVE_STANDBY amphora has one) lives on for seconds trying to
hand its stick tables to a local successor that never comes, while new connections keep
being dropped (3 s in a failover measured with ``bench/failover_bench.py``).

Draining twice is harmless: the rule is replaced, a stopped haproxy is not signalled.
Nothing undoes it: a drained amphora is about to be removed.
"""
from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from pathlib import Path

from lbaas.amphora.agent.haproxy import Haproxy
from lbaas.amphora.agent.nft import Nft

TABLE = "lbaas_drain"
TCP_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
"""This network namespace's TCP sockets (the agent runs in the amphora's namespace)."""
OPEN_STATES = frozenset({"01", "03", "04", "08", "09", "0B"})
"""ESTABLISHED, SYN_RECV, FIN_WAIT1, CLOSE_WAIT, LAST_ACK, CLOSING: a client may still
send or wait for data. FIN_WAIT2 and TIME_WAIT are over for haproxy; LISTEN is not a
connection."""


def drop_new_connections(nft: Nft, addresses: Sequence[str]) -> None:
    """An nftables table dropping TCP SYNs to ``addresses`` (in one transaction)."""
    rules = []
    for address in addresses:
        family = "ip" if ipaddress.ip_address(address).version == 4 else "ip6"
        rules.append(f"add rule inet {TABLE} input {family} daddr {address} "
                     "tcp flags & (syn | ack) == syn drop")
    nft.run("\n".join([f"add table inet {TABLE}", f"flush table inet {TABLE}",
                       f"add chain inet {TABLE} input {{ type filter hook input priority -10; }}",
                       *rules]) + "\n")


def _local_address(field: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address of a ``/proc/net/tcp*`` ``local_address`` field: hex, in host order per
    32-bit word (little-endian here), then ``:port``."""
    raw = bytes.fromhex(field.split(":")[0])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(words)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def open_connections(addresses: Sequence[str], tables: Sequence[Path] = TCP_TABLES) -> int:
    """How many TCP connections to ``addresses`` (as the local end) are still open."""
    wanted = {ipaddress.ip_address(address) for address in addresses}
    count = 0
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except FileNotFoundError:  # no IPv6 in this kernel
            continue
        for line in lines:
            fields = line.split()
            if fields[3] in OPEN_STATES and _local_address(fields[1]) in wanted:
                count += 1
    return count


def drain(haproxies: Sequence[Haproxy], addresses: Sequence[str], nft: Nft,
          timeout: float) -> list[int]:
    """Drop new connections to ``addresses``, soft-stop every haproxy and wait until no
    connection to ``addresses`` is open; returns the pids of the haproxies still running
    when ``timeout`` passed with connections open (none: fully drained)."""
    drop_new_connections(nft, addresses)
    for haproxy in haproxies:
        haproxy.soft_stop()
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for haproxy in haproxies for pid in haproxy.pids()]
        if not left or not open_connections(addresses):
            return []
        if time.monotonic() > deadline:
            return left
        time.sleep(0.02)
