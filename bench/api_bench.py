"""API benchmark: create load balancers against a real ``lbaas up`` and time the API.

Starts ``lbaas up`` (no-op drivers, SQLite in a private state directory) on a free
loopback port, as an operator would, then measures:

- create-to-ACTIVE latency: from sending ``POST /v2/lbaas/loadbalancers`` until a
  ``GET`` of the new load balancer shows ``ACTIVE`` (polled back to back), with
  ``--create-clients`` clients creating concurrently;
- ``GET /v2/lbaas/loadbalancers`` latency with every load balancer present (the default
  page: up to ``pagination_max_limit`` = 1000 objects);
- requests per second of ``GET /v2/lbaas/loadbalancers/{id}`` with ``--show-clients``
  concurrent clients.

The service (and anything it started) is stopped at the end, also on error or Ctrl-C.
Run from the repository root: ``.venv/bin/python bench/api_bench.py``.
"""
from __future__ import annotations

import argparse
import contextlib
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

import httpx

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
        return f"{self.name:<44} {self.value:>9.1f} {self.unit:<6} target {self.goal:<9} {verdict}"


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


def wait_until_serving(base_url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"lbaas up exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(base_url + "/", timeout=1.0).status_code == 200:
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
def running_service(state_path: Path) -> Iterator[str]:
    """``lbaas up`` on a free loopback port; yields its base URL."""
    port = free_port()
    config = write_config(state_path, port)
    log = state_path / "lbaas.log"
    with log.open("w") as output:
        process = subprocess.Popen([*lbaas_command(), "up", "--config-file", str(config)],
                                   stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_serving(base_url, process, log)
        yield base_url
    finally:
        stop(process)


def percentile(samples: list[float], pct: int) -> float:
    """The ``pct``-th percentile (inclusive method) of ``samples``."""
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def create_to_active(client: httpx.Client, index: int) -> tuple[str, float]:
    """Create one load balancer; return its id and seconds until GET showed ACTIVE."""
    started = time.perf_counter()
    response = client.post(COLLECTION, json={"loadbalancer": {
        "name": f"bench-{index}", "vip_subnet_id": SUBNET}})
    response.raise_for_status()
    lb_id = response.json()["loadbalancer"]["id"]
    deadline = started + ACTIVE_TIMEOUT_S
    while time.perf_counter() < deadline:
        lb = client.get(f"{COLLECTION}/{lb_id}").json()["loadbalancer"]
        if lb["provisioning_status"] == "ACTIVE":
            return lb_id, time.perf_counter() - started
        if lb["provisioning_status"] == "ERROR":
            raise RuntimeError(f"load balancer {lb_id} went to ERROR")
    raise RuntimeError(f"load balancer {lb_id} not ACTIVE after {ACTIVE_TIMEOUT_S:.0f} s")


def per_thread_client(base_url: str) -> Callable[[], httpx.Client]:
    """One keep-alive client per thread (an ``httpx.Client`` is not shared across threads)."""
    local = threading.local()
    clients: list[httpx.Client] = []

    def get() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base_url, timeout=30.0)
            clients.append(local.client)
        return local.client
    get.clients = clients  # type: ignore[attr-defined]
    return get


def close_clients(get: Callable[[], httpx.Client]) -> None:
    for client in get.clients:  # type: ignore[attr-defined]
        client.close()


def bench_create(base_url: str, count: int, clients: int) -> tuple[list[str], list[float], float]:
    """Create ``count`` load balancers with ``clients`` concurrent clients."""
    client_for_thread = per_thread_client(base_url)
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(lambda i: create_to_active(client_for_thread(), i), range(count)))
    finally:
        close_clients(client_for_thread)
    elapsed = time.perf_counter() - started
    return [lb_id for lb_id, _ in results], [seconds for _, seconds in results], elapsed


def bench_list(base_url: str, expected: int, runs: int) -> list[float]:
    """Sequential ``GET`` of the collection's default page; checks it holds ``expected``."""
    samples = []
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        for _ in range(runs):
            started = time.perf_counter()
            response = client.get(COLLECTION)
            samples.append(time.perf_counter() - started)
            response.raise_for_status()
            found = len(response.json()["loadbalancers"])
            if found != expected:
                raise RuntimeError(f"list returned {found} load balancers, expected {expected}")
    return samples


def bench_show(base_url: str, lb_id: str, clients: int, duration: float) -> tuple[int, float]:
    """``clients`` threads GET one load balancer for ``duration`` seconds; (requests, seconds)."""
    stop_at = time.perf_counter() + duration
    url = f"{COLLECTION}/{lb_id}"

    def hammer(_: int) -> int:
        done = 0
        with httpx.Client(base_url=base_url, timeout=30.0) as client:
            while time.perf_counter() < stop_at:
                client.get(url).raise_for_status()
                done += 1
        return done

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        total = sum(pool.map(hammer, range(clients)))
    return total, time.perf_counter() - started


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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="lbaas-bench-") as tmp, running_service(Path(tmp)) as url:
        print(f"lbaas up at {url}, state in {tmp}")
        ids, latencies, elapsed = bench_create(url, args.count, args.create_clients)
        print(f"created {len(ids)} load balancers in {elapsed:.1f} s "
              f"({args.create_clients} concurrent clients, {len(ids) / elapsed:.0f}/s)")
        list_samples = bench_list(url, min(args.count, 1000), args.list_runs)
        requests, seconds = bench_show(url, ids[len(ids) // 2], args.show_clients, args.show_seconds)

    create_p50, create_p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    list_p50 = percentile(list_samples, 50) * 1000
    show_rate = requests / seconds
    results = [
        Target(f"create-to-ACTIVE p50 ({args.create_clients} clients)", create_p50, "ms",
               "< 50 ms", create_p50 < 50),
        Target(f"create-to-ACTIVE p99 ({args.create_clients} clients)", create_p99, "ms", "-", True),
        Target(f"GET {COLLECTION} p50 ({len(ids)} present)", list_p50, "ms", "< 100 ms",
               list_p50 < 100),
        Target(f"GET one load balancer ({args.show_clients} clients)", show_rate, "req/s",
               "> 500/s", show_rate > 500),
    ]
    print()
    for result in results:
        print(result.line())
    return 0 if all(result.met for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
