"""Crash benchmark: a worker SIGKILLed in the middle of a create, and the time until the
load balancer is ACTIVE and serving.

Sets up as dataplane_bench (``lbaas up``, a member and a VIP network, two nginx backends,
a client namespace), with ``lbaas up``'s own worker idle (``[controller_worker]
flow_threads = 0``: its API, health manager and housekeeping run); the flows are run by
``lbaas worker`` processes on the same database. In each run a worker started with
``LBAAS_CRASH_AT`` takes the job of a POSTed load balancer (HTTP listener, pool, both
backends) and kills itself (SIGKILL) at the crash point, then, by mode:

- restart: a worker is started on the same host, as an operator or systemd would start
  it again; it takes the dead worker's job back at once;
- takeover: a second worker, on another controller host (``[DEFAULT] host = ctl-b``,
  with its own management address), started as soon as the first took the job, takes
  the job over when the dead worker's lease runs out (``job_lease_seconds``, 3 s).

It prints, from the kill (the crashed worker's exit), the time until the load balancer is
ACTIVE and until the first 200 through the VIP (a poller in the client namespace, every
~10 ms). Targets (issue 10): p50 under 5 s in both modes.

Run as root from the repository root: ``.venv/bin/python bench/crash_bench.py``.
"""
from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from api_bench import Target, lbaas_command, percentile, stop
from dataplane_bench import (
    COLLECTION,
    CONTROLLER_IP,
    FIRST_REQUEST_TIMEOUT_S,
    FIRST_VIP,
    BenchError,
    Environment,
    Teardown,
    await_poller,
    clean_environment,
    delete_lb,
    in_namespace,
    lb_body,
    load_average,
    read_line,
    run_benchmark,
    set_up,
)

SECOND_CONTROLLER_IP = CONTROLLER_IP.rsplit(".", 1)[0] + ".2"
POINTS = ("netns:management-plugged", "create_load_balancer:plug-vip",
          "create_load_balancer:update-amphorae")
EXTRA = ("[controller_worker]\nflow_threads = 0\n"
         f"[networking]\nused_ips = {SECOND_CONTROLLER_IP}\n")
WAIT_S = 60.0


@dataclass(frozen=True)
class Run:
    point: str
    active_s: float
    first_200_s: float


def worker(env: Environment, log: Path, crash_at: str | None = None,
           second_host: bool = False) -> subprocess.Popen[bytes]:
    """``lbaas worker`` with the service's configuration (and its own flow threads)."""
    environ = {**clean_environment(), "LBAAS__controller_worker__flow_threads": "4"}
    if crash_at:
        environ["LBAAS_CRASH_AT"] = crash_at
    if second_host:
        environ.update({"LBAAS__DEFAULT__host": "ctl-b",
                        "LBAAS__networking__controller_ip": SECOND_CONTROLLER_IP,
                        "LBAAS__networking__used_ips": CONTROLLER_IP})
    with log.open("ab") as output:
        return subprocess.Popen([*lbaas_command(), "worker", "--config-file",
                                 str(env.service.config)], env=environ, stdout=output,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def job_taken(database: Path) -> bool:
    """Whether a worker holds a lease on a job (read straight from the SQLite file)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
        return connection.execute(
            "SELECT 1 FROM job WHERE lease_owner IS NOT NULL").fetchone() is not None


def wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise BenchError(f"{what} within {WAIT_S:.0f} s")
        time.sleep(0.01)


def active_at(api: httpx.Client, lb_id: str) -> float:
    """When the load balancer was first seen ACTIVE (polled every 10 ms)."""
    def active() -> bool:
        status = api.get(f"{COLLECTION}/{lb_id}").json()["loadbalancer"]["provisioning_status"]
        if status == "ERROR":
            raise BenchError(f"load balancer {lb_id} went to ERROR (see the worker logs)")
        return status == "ACTIVE"
    wait_until(active, f"load balancer {lb_id} not ACTIVE")
    return time.monotonic()


def one_run(env: Environment, workdir: Path, index: int, mode: str, point: str) -> Run:
    body = lb_body(index, str(FIRST_VIP + index), env.vips, env.members, env.backends)
    poller = subprocess.Popen(
        in_namespace(env.client_ns, sys.executable,
                     str(Path(__file__).parent / "dataplane_bench.py"),
                     "_poll", body["loadbalancer"]["vip_address"],
                     "--deadline", str(FIRST_REQUEST_TIMEOUT_S)),
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, bufsize=0)
    log = workdir / f"workers-{mode}.log"
    crashing = worker(env, log, crash_at=point)
    survivor = None
    try:
        if read_line(poller.stdout, 30.0) != "ready":  # type: ignore[arg-type]
            raise BenchError("the poller in the client namespace did not start")
        response = env.api.post(COLLECTION, json=body)
        if response.status_code != 201:
            raise BenchError(f"POST {COLLECTION}: {response.status_code} {response.text}")
        lb_id = response.json()["loadbalancer"]["id"]
        if mode == "takeover":
            wait_until(lambda: job_taken(workdir / "state" / "lbaas.sqlite"),
                       "no worker took the job")
            survivor = worker(env, log, second_host=True)
        try:
            crashing.wait(WAIT_S)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"the worker did not reach its crash point {point}") from exc
        killed = time.monotonic()
        if mode == "restart":
            survivor = worker(env, log)
        active = active_at(env.api, lb_id)
        answered, _ = await_poller(env.api, poller, lb_id)
        delete_lb(env.api, lb_id)
        return Run(point, active - killed, answered - killed)
    finally:
        poller.kill()
        poller.wait()
        for process in (crashing, survivor):
            if process is not None:
                stop(process)


def report(mode: str, runs: list[Run]) -> list[Target]:
    active = [run.active_s for run in runs]
    served = [run.first_200_s for run in runs]
    for name, values in (("ACTIVE", active), ("first 200", served)):
        print(f"  {mode}: kill -> {name}: p50 {statistics.median(values):.2f} s, "
              f"p90 {percentile(values, 90):.2f} s, max {max(values):.2f} s")
    p50 = statistics.median(served)
    return [Target(f"kill mid-create -> serving ({mode}), p50", p50, "s", "< 5 s", p50 < 5)]


def run(args: argparse.Namespace, workdir: Path) -> list[Target]:
    targets: list[Target] = []
    with Teardown() as stack:
        env = set_up(stack, workdir, args.save_log, 10, EXTRA)
        index = 0
        for mode in ("restart", "takeover"):
            print(f"\n{mode}: {args.runs} runs, crash points cycling through {', '.join(POINTS)}")
            print(f"  load average before: {load_average()}")
            runs = []
            for number in range(args.runs):
                point = POINTS[number % len(POINTS)]
                runs.append(one_run(env, workdir, index, mode, point))
                index += 1
                print(f"  run {number + 1:>2} ({point}): kill -> ACTIVE {runs[-1].active_s:.2f} s, "
                      f"-> first 200 {runs[-1].first_200_s:.2f} s", flush=True)
            targets += report(mode, runs)
        print("\ncleaning up ...", flush=True)
    return targets


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, choices=range(2, 31), metavar="2..30",
                        help="crashes per mode (default 9)")
    parser.add_argument("--save-log", type=Path, metavar="FILE",
                        help="copy the service's log to FILE")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(run, parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
