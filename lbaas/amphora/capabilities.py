"""What the amphorae of this host can serve, found out from its kernel once per process.

Amphorae share the host's kernel (a network namespace each), so the API can tell before
accepting an object whether it can be served. UDP is served by nftables (DNAT with
conntrack), which every kernel lbaas runs on has. SCTP could be served the same way, but
only by a kernel with SCTP: where an SCTP socket cannot be opened, the API refuses SCTP
listeners, pools and health monitors (400) and the provider's description says so.
Standard library only.
"""
from __future__ import annotations

import functools
import socket

SCTP_UNAVAILABLE = "SCTP is not served here: this host's kernel has no SCTP support"


@functools.cache
def sctp_supported() -> bool:
    """Whether this kernel opens SCTP sockets (the ``sctp`` module is built in or loads)."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()
    except OSError:
        return False
    return True


def unserved_protocols() -> dict[str, str]:
    """Protocol -> why amphorae on this host cannot serve it (empty when all can be)."""
    return {} if sctp_supported() else {"SCTP": SCTP_UNAVAILABLE}
