"""API benchmark: create load balancers against a real ``lbaas up`` and time the API.

Starts ``lbaas up`` (no-op drivers, SQLite in a private state directory) on a free
loopback port, as an operator would, then measures:

- create-to-ACTIVE latency: from sending ``POST /v2/lbaas/loadbalancers`` until a
  ``GET`` of the new load balancer shows ``ACTIVE`` (polled back to back), with
  ``--create-clients`` clients creating concurrently;
- ``GET /v2/lbaas/loadbalancers`` latency with every load balancer present (the default
  page: up to ``pagination_max_limit`` = 1000 objects);
- requests per second of ``GET /v2/lbaas/loadbalancers/{id}`` with ``--show-clients``
  concurrent clients;
- with one client, the latency of that ``GET`` and of a page of 100 (``?limit=100``).

Each client is a thread with one keep-alive connection of the standard library's
``http.client``: a load generator that costs a quarter of httpx's CPU per request leaves
more of this small machine to the service being measured.

The service (and anything it started) is stopped at the end, also on error or Ctrl-C.
Run from the repository root: ``.venv/bin/python bench/api_bench.py``.
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUBNET = "8c1a4e5c-9b1f-4d5c-8f5e-0a6f3e2b9c10"
COLLECTION = "/v2/lbaas/loadbalancers"
STARTUP_TIMEOUT_S = 60.0
ACTIVE_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Target:
    name: str
    value: float
    unit: str
    goal: str
    met: bool

    def line(self) -> str:
        verdict = "ok" if self.met else "MISSED"
        return f"{self.name:<52} {self.value:>9.2f} {self.unit:<6} target {self.goal:<9} {verdict}"


class Client:
    """One keep-alive HTTP/1.1 connection to the API."""

    def __init__(self, port: int) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        """Send a request; the decoded JSON answer, or RuntimeError on another status."""
        payload = None if body is None else json.dumps(body)
        headers = {} if body is None else {"Content-Type": "application/json"}
        self._connection.request(method, path, body=payload, headers=headers)
        response = self._connection.getresponse()
        data = response.read()
        if response.status != expect:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return json.loads(data)

    def close(self) -> None:
        self._connection.close()


@contextlib.contextmanager
def client(port: int) -> Iterator[Client]:
    connection = Client(port)
    try:
        yield connection
    finally:
        connection.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def lbaas_command() -> list[str]:
    """The ``lbaas`` entry point of the interpreter running this script."""
    installed = Path(sys.executable).parent / "lbaas"
    if installed.exists():
        return [str(installed)]
    return [sys.executable, "-c", "from lbaas.cli import app; app()"]


def write_config(state_path: Path, port: int) -> Path:
    config = state_path / "lbaas.conf"
    config.write_text(
        "[DEFAULT]\n"
        f"state_path = {state_path}\n"
        "[api_settings]\n"
        "bind_host = 127.0.0.1\n"
        f"bind_port = {port}\n"
        "pagination_max_limit = 1000\n"
        "[controller_worker]\n"
        "amphora_driver = amphora_noop_driver\n"
        "compute_driver = compute_noop_driver\n"
        "network_driver = network_noop_driver\n"
        "[certificates]\n"
        "cert_generator = cert_noop_generator\n")
    return config


def wait_until_serving(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"lbaas up exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError, http.client.HTTPException), client(port) as api:
            api.call("GET", "/")
            return
        time.sleep(0.1)
    raise RuntimeError(f"lbaas up did not answer within {STARTUP_TIMEOUT_S:.0f} s:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the service's process group (it and its children), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def running_service(state_path: Path) -> Iterator[int]:
    """``lbaas up`` on a free loopback port; yields the port."""
    port = free_port()
    config = write_config(state_path, port)
    log = state_path / "lbaas.log"
    with log.open("w") as output:
        process = subprocess.Popen([*lbaas_command(), "up", "--config-file", str(config)],
                                   stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        wait_until_serving(port, process, log)
        yield port
    finally:
        stop(process)


def percentile(samples: list[float], pct: int) -> float:
    """The ``pct``-th percentile (inclusive method) of ``samples``."""
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def create_to_active(api: Client, index: int) -> tuple[str, float]:
    """Create one load balancer; return its id and seconds until GET showed ACTIVE."""
    started = time.perf_counter()
    created = api.call("POST", COLLECTION, {"loadbalancer": {
        "name": f"bench-{index}", "vip_subnet_id": SUBNET}}, expect=201)
    lb_id = created["loadbalancer"]["id"]
    deadline = started + ACTIVE_TIMEOUT_S
    while time.perf_counter() < deadline:
        status = api.call("GET", f"{COLLECTION}/{lb_id}")["loadbalancer"]["provisioning_status"]
        if status == "ACTIVE":
            return lb_id, time.perf_counter() - started
        if status == "ERROR":
            raise RuntimeError(f"load balancer {lb_id} went to ERROR")
    raise RuntimeError(f"load balancer {lb_id} not ACTIVE after {ACTIVE_TIMEOUT_S:.0f} s")


def in_threads(clients: int, work: Callable[[int], Any], items: range) -> list[Any]:
    """Run ``work`` over ``items`` on ``clients`` threads (each a client)."""
    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(work, items))


def bench_create(port: int, count: int, clients: int) -> tuple[list[str], list[float], float]:
    """Create ``count`` load balancers with ``clients`` concurrent clients."""
    local = threading.local()
    connections: list[Client] = []

    def create(index: int) -> tuple[str, float]:
        if not hasattr(local, "api"):
            local.api = Client(port)
            connections.append(local.api)
        return create_to_active(local.api, index)

    started = time.perf_counter()
    try:
        results = in_threads(clients, create, range(count))
    finally:
        for connection in connections:
            connection.close()
    elapsed = time.perf_counter() - started
    return [lb_id for lb_id, _ in results], [seconds for _, seconds in results], elapsed


def bench_list(port: int, expected: int, runs: int) -> list[float]:
    """Sequential ``GET`` of the collection's default page; checks it holds ``expected``."""
    samples = []
    with client(port) as api:
        for _ in range(runs):
            started = time.perf_counter()
            found = len(api.call("GET", COLLECTION)["loadbalancers"])
            samples.append(time.perf_counter() - started)
            if found != expected:
                raise RuntimeError(f"list returned {found} load balancers, expected {expected}")
    return samples


def bench_show(port: int, lb_id: str, clients: int, duration: float) -> tuple[int, float]:
    """``clients`` threads GET one load balancer for ``duration`` seconds; (requests, seconds)."""
    stop_at = time.perf_counter() + duration

    def hammer(_: int) -> int:
        done = 0
        with client(port) as api:
            while time.perf_counter() < stop_at:
                api.call("GET", f"{COLLECTION}/{lb_id}")
                done += 1
        return done

    started = time.perf_counter()
    total = sum(in_threads(clients, hammer, range(clients)))
    return total, time.perf_counter() - started


def bench_reads(port: int, lb_id: str, runs: int) -> tuple[list[float], list[float]]:
    """One client: ``runs`` GETs of one load balancer, then of a page of 100 (after a
    tenth as many untimed, to warm up); the latencies of each."""
    paths = (f"{COLLECTION}/{lb_id}", f"{COLLECTION}?limit=100")
    timed: tuple[list[float], list[float]] = ([], [])
    with client(port) as api:
        for path, samples in zip(paths, timed, strict=True):
            for attempt in range(runs + runs // 10):
                started = time.perf_counter()
                api.call("GET", path)
                if attempt >= runs // 10:
                    samples.append(time.perf_counter() - started)
    return timed


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="load balancers to create")
    parser.add_argument("--create-clients", type=int, default=4,
                        help="concurrent clients creating load balancers")
    parser.add_argument("--list-runs", type=int, default=30, help="timed GETs of the collection")
    parser.add_argument("--show-clients", type=int, default=8,
                        help="concurrent clients GETting one load balancer")
    parser.add_argument("--show-seconds", type=float, default=10.0,
                        help="how long the show benchmark runs")
    parser.add_argument("--read-runs", type=int, default=2000,
                        help="timed GETs of one load balancer and of a page of 100, one client")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="lbaas-bench-") as tmp, running_service(Path(tmp)) as port:
        print(f"lbaas up at http://127.0.0.1:{port}/, state in {tmp}")
        ids, latencies, elapsed = bench_create(port, args.count, args.create_clients)
        print(f"created {len(ids)} load balancers in {elapsed:.1f} s "
              f"({args.create_clients} concurrent clients, {len(ids) / elapsed:.0f}/s)")
        list_samples = bench_list(port, min(args.count, 1000), args.list_runs)
        requests, seconds = bench_show(port, ids[len(ids) // 2], args.show_clients, args.show_seconds)
        show_samples, page_samples = bench_reads(port, ids[len(ids) // 2], args.read_runs)

    create_p50, create_p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    list_p50 = percentile(list_samples, 50) * 1000
    show_rate = requests / seconds
    show_p50, page_p50 = (percentile(show_samples, 50) * 1000,
                          percentile(page_samples, 50) * 1000)
    create_goal = 15 if args.create_clients == 1 else 50  # POST -> ACTIVE alone, or with others
    results = [
        Target(f"create-to-ACTIVE p50 ({args.create_clients} clients)", create_p50, "ms",
               f"< {create_goal} ms", create_p50 < create_goal),
        Target(f"create-to-ACTIVE p99 ({args.create_clients} clients)", create_p99, "ms", "-", True),
        Target(f"GET {COLLECTION} p50 ({len(ids)} present)", list_p50, "ms", "< 100 ms",
               list_p50 < 100),
        Target(f"GET one load balancer ({args.show_clients} clients)", show_rate, "req/s",
               "> 500/s", show_rate > 500),
        Target("GET one load balancer p50 (1 client)", show_p50, "ms", "< 1 ms", show_p50 < 1),
        Target(f"GET {COLLECTION}?limit=100 p50 (1 client)", page_p50, "ms", "< 3 ms",
               page_p50 < 3),
    ]
    print()
    for result in results:
        print(result.line())
    return 0 if all(result.met for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
