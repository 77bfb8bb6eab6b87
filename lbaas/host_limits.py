"""Kernel and process limits that a host of a thousand amphorae runs into, raised when a
service prepares the host. A limit is only ever raised: a value an operator set higher
stays as it is.

Checked at 1,000 amphorae and left alone: ``fs.inotify.max_user_instances`` (the host
agent takes one instance, the other agents none), ``fs.file-max`` (the kernel sizes it
from the memory: millions), ``kernel.pid_max`` (an amphora is about six tasks: 32,768
holds five thousand). What cannot be raised: a Linux bridge holds at most 1,023 ports, so
one management, VIP or member network holds at most that many amphorae.
"""
from __future__ import annotations

import logging
import resource
from dataclasses import dataclass
from pathlib import Path

LOG = logging.getLogger(__name__)
PROC_SYS = Path("/proc/sys")

_NEIGHBOURS = (
    "the neighbour table (ARP, NDP) is one for every namespace of the host, and an amphora "
    "keeps several live entries in it (the controller's in its namespace, the members' it "
    "checks, the clients', and its own in the members' and the host's; 250 amphorae made "
    "1,680 ARP and 4,585 NDP entries): past the kernel's default hard limit of 1,024, live "
    "entries are evicted and new ones refused ('neighbour table overflow'), so traffic "
    "stalls")


@dataclass(frozen=True)
class Floor:
    """The least value a sysctl needs, and why."""

    name: str  # as sysctl(8) names it
    value: int
    why: str

    @property
    def path(self) -> Path:
        return Path(*self.name.split("."))


FLOORS = (
    # Garbage collection leaves the table alone below thresh1, trims it above thresh2 and
    # refuses entries past thresh3: room for about four thousand amphorae.
    *(Floor(f"net.{family}.neigh.default.gc_thresh{level}", value, _NEIGHBOURS)
      for family in ("ipv4", "ipv6")
      for level, value in ((1, 8192), (2, 16384), (3, 32768))),
    # Present once the firewall's rules have loaded conntrack. Each amphora's health
    # checks leave connections in TIME_WAIT for two minutes (about 50 per amphora at the
    # default 5 s interval and two members), and the kernel sizes the table from the
    # memory: 65,536 or less on a host of 4 GB, where it fills and drops new connections.
    Floor("net.netfilter.nf_conntrack_max", 262144,
          "the connection-tracking table must hold every amphora's health-check and "
          "heartbeat connections"),
    # A broadcast (an ARP request) on a bridge of N veth ports is N packets queued at once
    # on the receiving CPU's backlog; at the default of 1,000 a single broadcast on a
    # network of 1,000 amphorae overflows it and the rest are dropped. Measured: with 1,000
    # amphorae ARPing for the members, 54 million drops, and one member namespace that no
    # ARP request reached any more (bench/scale_bench.py, docs/benchmarks.md).
    Floor("net.core.netdev_max_backlog", 32768,
          "a broadcast on a bridge of N ports queues N packets on one CPU's backlog: at "
          "the default of 1,000 one broadcast among 1,000 amphorae overflows it, and ARP "
          "requests are lost"),
)


def raise_sysctls(floors: tuple[Floor, ...] = FLOORS, root: Path = PROC_SYS) -> list[str]:
    """Raise each sysctl of ``floors`` that is below its floor (one the kernel does not
    have is skipped); what was changed, as ``name: old -> new``."""
    changed = []
    for floor in floors:
        path = root / floor.path
        try:
            current = int(path.read_text().split()[0])
        except FileNotFoundError:
            continue
        if current >= floor.value:
            continue
        try:
            path.write_text(f"{floor.value}\n")
        except OSError as exc:  # a container's read-only /proc/sys, say
            LOG.warning("cannot raise %s from %d to %d (%s): %s", floor.name, current,
                        floor.value, exc.strerror, floor.why)
            continue
        LOG.info("raised %s from %d to %d: %s", floor.name, current, floor.value, floor.why)
        changed.append(f"{floor.name}: {current} -> {floor.value}")
    return changed


def raise_open_files() -> tuple[int, int]:
    """Let this process open as many files as its hard limit allows (its soft limit is
    often 1,024 when started from a shell): the amphora driver keeps a connection to each
    amphora's agent, and the agents and haproxy it starts inherit the limit. The limits
    before."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # never unlimited on Linux
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return soft, hard
