"""Agent memory benchmark: what each amphora costs the host (Pss), with agents started as
Python processes of their own (``[haproxy_amphora] agent_launcher = exec``), forked
from a preloaded parent (``zygote``), and served by one agent process per host
(``host``), side by side.

For each mode it sets up what ``dataplane_bench.py`` sets up (``lbaas up`` with the real
drivers, a member and a VIP network, two nginx backends, a client namespace), creates
``--count`` load balancers (HTTP listener, pool, two members; one POST each, one after the
other, each ACTIVE before the next), checks each serves, waits a few heartbeats, then reads
``smaps_rollup`` of every process in every amphora's namespace: Pss (shared pages split
among their users: what the host really pays per amphora), and Private (pages no other
process shares). The zygote's own Pss, or the host agent's (its supervisor's and its
own), is counted and spread over the amphorae.

Everything it made is removed at the end, also on error or Ctrl-C. Run as root from
``bench/``: ``../.venv/bin/python agent_memory_bench.py --count 20``.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from api_bench import Target
from dataplane_bench import (
    COLLECTION,
    FIRST_VIP,
    MAX_RUNS,
    BenchError,
    Teardown,
    amphora_processes,
    in_namespace,
    lb_body,
    load_average,
    proportional_kib,
    run_benchmark,
    set_up,
    sh,
    wait_active,
)

from lbaas.drivers.compute.launcher import LAUNCHERS
from lbaas.drivers.compute.netns import namespace_of


@dataclasses.dataclass(frozen=True)
class Mode:
    name: str
    agent_pss_mb: float  # per amphora (the zygote's or the host agent's share included)
    haproxy_pss_mb: float
    agent_private_mb: float
    total_pss_mb: float


def private_kib(pid: int) -> int:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup")
                  .read_text().splitlines()[1:])
    return sum(int(fields[key].split()[0]) for key in ("Private_Clean", "Private_Dirty"))


def bench_mode(args: argparse.Namespace, workdir: Path, launcher: str) -> Mode:
    extra = f"[haproxy_amphora]\nagent_launcher = {launcher}\n"
    with Teardown() as stack:
        env = set_up(stack, workdir, None, 10, extra)
        print(f"\nagent_launcher = {launcher}: creating {args.count} load balancers, "
              f"load average {load_average()}", flush=True)
        for index in range(args.count):
            vip = str(FIRST_VIP + index)
            response = env.api.post(COLLECTION, json=lb_body(index, vip, env.vips, env.members,
                                                             env.backends))
            if response.status_code != 201:
                raise BenchError(f"POST {COLLECTION}: {response.status_code} {response.text}")
            wait_active(env.api, response.json()["loadbalancer"]["id"])
            answer = sh(*in_namespace(env.client_ns, "curl", "-s", "--max-time", "5",
                                      f"http://{vip}/"), check=False)
            if not answer.strip():
                raise BenchError(f"load balancer {index} ({vip}) does not serve")
        time.sleep(args.settle)
        directories = list(env.service.base_path.iterdir())
        agents, haproxies, private = [], [], []
        for directory in directories:
            for process in amphora_processes(namespace_of(directory.name)):
                if process.role.startswith("haproxy"):
                    haproxies.append(process.pss_kib)
                else:
                    agents.append(process.pss_kib)
                    private.append(private_kib(process.pid))
        shared = shared_processes(env.service.base_path, launcher)
        shared_kib = sum(proportional_kib(pid) for pid in shared)
        private.extend(private_kib(pid) for pid in shared)
        count = len(directories)
        print(f"  {count} amphorae, {len(agents)} agent processes in them; {launcher}'s "
              f"shared processes {shared}, Pss {shared_kib / 1024:.1f} MB", flush=True)
        print("  cleaning up ...", flush=True)
    agent = (sum(agents) + shared_kib) / count / 1024
    haproxy = sum(haproxies) / count / 1024
    return Mode(launcher, agent, haproxy, sum(private) / count / 1024, agent + haproxy)


def shared_processes(base_path: Path, launcher: str) -> list[int]:
    """The zygote, or the host agent's supervisor and the agent it forked."""
    if launcher not in LAUNCHERS:
        return []
    parent = LAUNCHERS[launcher](base_path, sys.executable)._pid()
    if parent is None:
        return []
    children = [int(child) for task in Path(f"/proc/{parent}/task").iterdir()
                for child in (task / "children").read_text().split()]
    # The zygote's children are the agents' middle processes, gone at once; the host
    # agent's is the agent.
    return [parent, *(children if launcher == "host" else [])]


def run(args: argparse.Namespace, workdir: Path) -> list[Target]:
    modes = []
    for launcher in args.launchers:
        (workdir / launcher).mkdir()
        modes.append(bench_mode(args, workdir / launcher, launcher))
    print(f"\nper amphora, {args.count} amphorae{'':<13}"
          + "".join(f"{mode.name:>12}" for mode in modes))
    for label, field in (("agent Pss (shared processes included)", "agent_pss_mb"),
                         ("agent Private", "agent_private_mb"),
                         ("haproxy Pss", "haproxy_pss_mb"),
                         ("amphora Pss (agent + haproxy)", "total_pss_mb")):
        print(f"{label:<43}" + "".join(f"{getattr(mode, field):>9.1f} MB" for mode in modes))
    return [Target(f"amphora memory (Pss), {mode.name}, {args.count} amphorae",
                   mode.total_pss_mb, "MB", "< 10 MB", mode.total_pss_mb < 10)
            for mode in modes]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20,
                        help=f"load balancers per mode (default 20, at most {MAX_RUNS})")
    parser.add_argument("--settle", type=float, default=15.0,
                        help="seconds to let the agents run before measuring (default 15)")
    parser.add_argument("--launchers", type=lambda text: text.split(","),
                        default=["exec", "zygote", "host"],
                        help="agent_launcher values to compare (default exec,zygote,host)")
    args = parser.parse_args(argv)
    if not set(args.launchers) <= {"exec", "zygote", "host"}:
        parser.error("--launchers: a comma-separated list of exec, zygote and host")
    if not 1 <= args.count <= MAX_RUNS:
        parser.error(f"--count must be between 1 and {MAX_RUNS}")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(run, parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
