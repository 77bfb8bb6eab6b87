"""What a fleet of amphorae and the ``lbaas up`` process running it cost this host: CPU
seconds by component between two readings, and the memory (Pss) of the amphorae.

CPU comes from ``/proc/PID/stat`` (utime + stime, and cutime + cstime: what the children a
process waited for used, such as a haproxy master's old workers). The parts of ``lbaas
up`` are threads of one process, told apart by their kernel names (``named_threads.py``
gives them). A process that exited between the readings without a parent that waited
for it is missing from the figures.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dataplane_bench import proportional_kib

from lbaas.drivers.compute.netns import namespace_of

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
AGENT_MODULE = b"lbaas.amphora.agent"  # every agent's command line (exec, zygote, host)
API, WORKER, HEALTH, HOUSEKEEPING = "API", "worker", "health manager", "housekeeping"
OTHER_THREADS, COMMANDS = "lbaas, other threads", "commands lbaas ran"
HAPROXY, AGENTS, MACHINE = "haproxy (all)", "agents (all)", "machine (all CPUs)"
COMPONENTS = (API, WORKER, HEALTH, HOUSEKEEPING, OTHER_THREADS, COMMANDS, HAPROXY, AGENTS,
              MACHINE)
# Thread name (its first 15 bytes, as the kernel keeps it) -> the part of lbaas up; the
# API is a process of its own (api_pids).
THREAD_PARTS = (("worker-", WORKER), ("job-", WORKER), ("presence-worke", WORKER),
                ("hm-", HEALTH), ("presence-healt", HEALTH),
                ("housekeeping-", HOUSEKEEPING), ("cert-rotate", HOUSEKEEPING),
                ("presence-house", HOUSEKEEPING))


@dataclass(frozen=True)
class Stat:
    comm: str
    start: int  # clock ticks after boot: tells a reused pid apart
    own_s: float  # utime + stime
    children_s: float  # cutime + cstime


def read_stat(path: Path) -> Stat:
    text = path.read_text()
    name_end = text.rindex(")")
    fields = text[name_end + 2:].split()  # from the third field (state) on
    return Stat(text[text.index("(") + 1:name_end], int(fields[19]),
                (int(fields[11]) + int(fields[12])) * TICK_S,
                (int(fields[13]) + int(fields[14])) * TICK_S)


@dataclass(frozen=True)
class Process:
    pid: int
    stat: Stat
    netns: int  # the inode of its network namespace
    agent: bool


def processes() -> Iterator[Process]:
    """Every process of the host that this one may inspect (one that exits while read,
    or that this container's root cannot look into, is left out)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                yield Process(int(entry.name), read_stat(entry / "stat"),
                              (entry / "ns" / "net").stat().st_ino,
                              AGENT_MODULE in (entry / "cmdline").read_bytes())


def amphora_namespaces(amphorae: Iterable[str]) -> dict[int, str]:
    """The inode of each amphora's network namespace -> the amphora."""
    found = {}
    for amphora in amphorae:
        with contextlib.suppress(FileNotFoundError):
            found[Path("/run/netns", namespace_of(amphora)).stat().st_ino] = amphora
    return found


def service_pid(config: Path) -> int:
    """The pid of the ``lbaas up`` that reads ``config`` (not of the API process it
    forked, which has the same command line)."""
    found = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
            if entry.name.isdigit() and b"up" in arguments and str(config).encode() in arguments:
                found[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    for pid, parent in found.items():
        if parent not in found:
            return pid
    raise LookupError(f"no lbaas up process reads {config}")


def api_pids(service: int) -> list[int]:
    """The API process ``lbaas up`` forked: its child with the same command line."""
    command = Path(f"/proc/{service}/cmdline").read_bytes()
    children = Path(f"/proc/{service}/task/{service}/children").read_text().split()
    found = []
    for child in children:
        with contextlib.suppress(OSError):
            if Path(f"/proc/{child}/cmdline").read_bytes() == command:
                found.append(int(child))
    return found


def thread_part(comm: str) -> str | None:
    return next((part for prefix, part in THREAD_PARTS if comm.startswith(prefix)), None)


@dataclass(frozen=True)
class Usage:
    """One reading: CPU seconds used so far, by process or thread."""

    at: float
    machine_busy_s: float
    processes: dict[tuple[int, int], tuple[str, float]]  # (pid, start) -> (part, seconds)
    threads: dict[tuple[int, int], tuple[str, float]]  # (tid, start) -> (part, seconds)
    service_own_s: float
    service_children_s: float


def machine_busy_s() -> float:
    """CPU seconds that every CPU of the machine spent on anything but idling."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) * TICK_S  # less idle and iowait


def read_usage(service: int, amphorae: Iterable[str]) -> Usage:
    namespaces = amphora_namespaces(amphorae)
    found = {}
    for process in processes():
        if process.agent:
            part = AGENTS
        elif process.stat.comm == "haproxy" and process.netns in namespaces:
            part = HAPROXY
        else:
            continue
        found[(process.pid, process.stat.start)] = (part, process.stat.own_s
                                                    + process.stat.children_s)
    for pid in api_pids(service):
        with contextlib.suppress(OSError):
            stat = read_stat(Path(f"/proc/{pid}/stat"))
            found[(pid, stat.start)] = (API, stat.own_s + stat.children_s)
    threads = {}
    for task in Path(f"/proc/{service}/task").iterdir():
        with contextlib.suppress(OSError):
            stat = read_stat(task / "stat")
            named = thread_part(stat.comm)
            if named is not None:
                threads[(int(task.name), stat.start)] = (named, stat.own_s)
    own = read_stat(Path(f"/proc/{service}/stat"))
    return Usage(time.monotonic(), machine_busy_s(), found, threads, own.own_s, own.children_s)


def cpu_between(before: Usage, after: Usage) -> dict[str, float]:
    """CPU seconds each component used from ``before`` to ``after``."""
    used: dict[str, float] = defaultdict(float)
    for now, then in ((after.processes, before.processes), (after.threads, before.threads)):
        for key, (part, seconds) in now.items():
            used[part] += seconds - then.get(key, (part, 0.0))[1]
    named = sum(used[part] for part in (WORKER, HEALTH, HOUSEKEEPING))  # threads of lbaas up
    used[OTHER_THREADS] = after.service_own_s - before.service_own_s - named
    used[COMMANDS] = after.service_children_s - before.service_children_s
    used[MACHINE] = after.machine_busy_s - before.machine_busy_s
    return {part: used[part] for part in COMPONENTS}


@dataclass(frozen=True)
class Memory:
    amphorae: int
    agent_mb: float  # per amphora, the agents outside every amphora's namespace included
    haproxy_mb: float  # per amphora
    other_mb: float  # per amphora: any other process in an amphora's namespace

    @property
    def per_amphora_mb(self) -> float:
        return self.agent_mb + self.haproxy_mb + self.other_mb

    @property
    def total_mb(self) -> float:
        return self.per_amphora_mb * self.amphorae


def read_memory(amphorae: list[str]) -> Memory:
    """Pss of every process in an amphora's namespace, and of every agent process outside
    them (a zygote, or the one agent serving every amphora from the host) split evenly
    among the amphorae."""
    namespaces = amphora_namespaces(amphorae)
    kib: dict[str, int] = defaultdict(int)
    for process in processes():
        if not process.agent and process.netns not in namespaces:
            continue
        part = ("agent" if process.agent else
                "haproxy" if process.stat.comm == "haproxy" else "other")
        with contextlib.suppress(OSError):
            kib[part] += proportional_kib(process.pid)
    count = max(len(amphorae), 1)
    return Memory(len(amphorae), *(kib[part] / 1024 / count
                                   for part in ("agent", "haproxy", "other")))
