"""Draining an amphora before its VIP moves to a peer (the failover of an ACTIVE_STANDBY
MASTER): once the VIP moves, the packets of connections still open here reach the peer,
which knows none of them and resets them. So first new connections to the VIP are
dropped (not refused: a client sends its SYN again a second later, by when the peer holds
the VIP), then every haproxy stops listening and finishes what it has (SIGUSR1, its soft
stop; idle keep-alive connections are closed, and their clients reconnect), and only when
they are done, or ``timeout`` passed, does the controller move the VIP.

Draining twice is harmless: the rule is replaced, a stopped haproxy is not signalled.
Nothing undoes it: a drained amphora is about to be removed.
"""
from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence

from lbaas.amphora.agent.haproxy import Haproxy
from lbaas.amphora.agent.nft import Nft

TABLE = "lbaas_drain"


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


def drain(haproxies: Sequence[Haproxy], addresses: Sequence[str], nft: Nft,
          timeout: float) -> list[int]:
    """Drop new connections to ``addresses``, soft-stop every haproxy and wait for them to
    finish; returns the pids still running at ``timeout`` (none: fully drained)."""
    drop_new_connections(nft, addresses)
    for haproxy in haproxies:
        haproxy.soft_stop()
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for haproxy in haproxies for pid in haproxy.pids()]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)
