"""Where an amphora runs: a compute host (failure domain) from ``[compute] hosts``.

With ``[nova] enable_anti_affinity`` the amphorae of an ACTIVE_STANDBY pair never share
a host (upstream's Nova server group with the ``anti-affinity`` policy); without it they
share one only when no other host is listed (as ``soft-anti-affinity``). Among the
allowed hosts the one running the fewest amphorae is taken.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping


class NoValidHost(Exception):
    """No host may run the amphora; the message says how to fix the configuration."""


def choose_host(hosts: list[str], *, avoid: Collection[str | None],
                load: Mapping[str, int], strict: bool = True) -> str:
    """The least loaded of ``hosts`` not in ``avoid`` (ties: the first listed); when every
    host is to be avoided, the least loaded of all unless ``strict``."""
    if not hosts:
        raise NoValidHost("[compute] hosts is empty: list at least one host name")
    allowed = [host for host in hosts if host not in avoid]
    if not allowed and not strict:
        allowed = list(hosts)
    if not allowed:
        raise NoValidHost(
            f"anti-affinity: no compute host is left for the amphora, the pair's other "
            f"amphora already runs on {', '.join(sorted(h for h in avoid if h))}; "
            f"[compute] hosts lists only {', '.join(hosts)}. List another host "
            "in [compute] hosts or set [nova] enable_anti_affinity = False")
    return min(allowed, key=lambda host: (load.get(host, 0), hosts.index(host)))
