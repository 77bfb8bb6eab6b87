"""Data-plane benchmark: real amphorae (namespaces running haproxy) on this host.

Sets up what an operator would — a configuration file with the real drivers, ``lbaas up``
(a subprocess), a member and a VIP network made with ``lbaas network/subnet create``,
two nginx backends in their own namespaces on the member network, and a client namespace
on the VIP network (with a second leg on the member network for the "direct" runs) —
then measures:

1. the time from ``POST /v2/lbaas/loadbalancers`` (one call with an HTTP listener, a
   pool and both members, an explicit ``vip_address``) to the first ``200`` through the
   VIP, seen by a poller in the client namespace trying every ~10 ms; over ``--runs``
   load balancers, each deleted before the next; with ``--busy N`` while another load
   balancer serves ``wrk`` with N connections from the client namespace all along;
2. requests/s (and latency p50/p99) with ``wrk`` from the client namespace, through the
   load balancer and directly to both backends at once (same total threads, connections
   and duration), in alternating rounds;
3. the memory (VmRSS, and Pss) of one amphora: the agent and haproxy (its master and worker
   if it runs in master-worker mode).

To explain a missed target it also prints each create-flow step's median duration (from
the service's debug log) and who used the CPU during each wrk run.

Everything it made is removed at the end, also on error, Ctrl-C or SIGTERM: load
balancers (and so amphorae) through the API, backend and client namespaces, networks and
their bridges, its own management bridge, the service, its firewall rules (``lbaas down``)
and the temporary files. Traffic goes only to addresses inside what it made.
Run as root from the repository root: ``.venv/bin/python bench/dataplane_bench.py``.
"""
from __future__ import annotations

import argparse
import configparser
import contextlib
import datetime
import ipaddress
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
from api_bench import (
    Target,
    free_port,
    lbaas_command,
    machine,
    percentile,
    stop,
    wait_until_serving,
)

from lbaas.drivers.compute.container import Runc
from lbaas.drivers.compute.launcher import LAUNCHERS
from lbaas.drivers.compute.netns import namespace_of

# A management network of its own ([networking] lb_network_bridge, with firewall chains
# of its own), so that it never meets another lbaas's amphorae on this host.
MANAGEMENT_BRIDGE = "lbb-mgmt"
MANAGEMENT_CIDR = "172.29.252.0/24"
CONTROLLER_IP = "172.29.252.1"
MEMBER_CIDR, MEMBER_POOL = "10.243.1.0/24", "start=10.243.1.100,end=10.243.1.200"
VIP_CIDR, VIP_POOL = "10.243.2.0/24", "start=10.243.2.100,end=10.243.2.200"
BACKEND_ADDRESSES = ("10.243.1.11", "10.243.1.12")
CLIENT_VIP_SIDE, CLIENT_MEMBER_SIDE = "10.243.2.5", "10.243.1.5"
FIRST_VIP = ipaddress.ip_address("10.243.2.10")  # one VIP per run, outside the pool
MAX_RUNS = 80  # VIPs .10-.89: above the client, below the allocation pool
PREFIX = "lbaas-bench"
COLLECTION = "/v2/lbaas/loadbalancers"

POLL_INTERVAL_S = 0.01
# A try gives up on a connect quickly (a lost SYN would otherwise cost TCP's 1 s
# retransmission), but gives a connected request time to be answered.
POLL_CONNECT_TIMEOUT_S = 0.1
POLL_ANSWER_TIMEOUT_S = 2.0
FIRST_REQUEST_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 60.0
COMMAND_TIMEOUT_S = 120.0
BACKEND_START_TRIES = 50
STEP_LINE = re.compile(r"flow create_load_balancer: step (\S+) took ([0-9.]+) s")

WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.6f, "errors": %d, "p50_ms": %.3f, "p99_ms": %.3f}\\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
"""

NGINX_CONF = """worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    default_type text/plain;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    server {{
        listen {address}:80;
        location / {{ return 200 "{name}\\n"; }}
    }}
}}
"""


class BenchError(Exception):
    """A step of the set-up or a measurement failed; the message says which."""


def sh(*command: str, check: bool = True, timeout: float = COMMAND_TIMEOUT_S) -> str:
    """Run ``command``; its stdout. Raises BenchError with its output if it fails and ``check``."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL, env=clean_environment())
    if check and result.returncode != 0:
        raise BenchError(f"`{' '.join(command)}` failed ({result.returncode}): "
                         f"{(result.stderr or result.stdout).strip()}")
    return result.stdout


def clean_environment() -> dict[str, str]:
    """This environment without ``LBAAS__*`` settings that would override the config file."""
    return {key: value for key, value in os.environ.items() if not key.startswith("LBAAS__")}


def in_namespace(namespace: str, *command: str) -> list[str]:
    return ["ip", "netns", "exec", namespace, *command]


# --- host resources: namespaces, links --------------------------------------------------

def attempt(what: str, action: Callable[[], object]) -> None:
    """One clean-up action: a failure is reported and the other clean-ups still run."""
    try:
        action()
    except Exception as exc:  # noqa: BLE001 - report whatever it was and carry on
        print(f"warning: {what} failed: {exc}", file=sys.stderr)


def remove_link(name: str) -> None:
    if link_exists(name):
        sh("ip", "link", "del", "dev", name)


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", "dev", name], capture_output=True).returncode == 0


def remove_namespace(name: str, grace_s: float = 5.0) -> None:
    """Stop every process in the namespace (TERM, then KILL), then delete it."""
    def pids() -> list[int]:
        return [int(pid) for pid in sh("ip", "netns", "pids", name, check=False).split()]

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while pids() and time.monotonic() < deadline:
            time.sleep(0.05)
    sh("ip", "netns", "del", name, check=False)


def add_leg(namespace: str, host_end: str, ifname: str, bridge: str, address: str) -> None:
    """A veth from ``bridge`` into the namespace, named ``ifname`` there, at ``address``."""
    sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", ifname, "netns", namespace)
    sh("ip", "link", "set", host_end, "master", bridge)
    sh("ip", "link", "set", host_end, "up")
    sh("ip", "-n", namespace, "addr", "add", address, "dev", ifname)
    sh("ip", "-n", namespace, "link", "set", ifname, "up")


@contextlib.contextmanager
def namespace(name: str) -> Iterator[str]:
    """A network namespace with loopback up; removed with its processes and veths."""
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        remove_namespace(name)


def namespace_names() -> set[str]:
    return {line.split()[0] for line in sh("ip", "netns", "list").splitlines() if line.strip()}


# --- the service ------------------------------------------------------------------------

@dataclass(frozen=True)
class Service:
    url: str
    config: Path
    log: Path
    base_path: Path

    def lbaas(self, *args: str) -> str:
        """``lbaas ARGS --config-file CONFIG``; its stdout."""
        return sh(*lbaas_command(), *args, "--config-file", str(self.config))

    def lbaas_json(self, *args: str) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.lbaas(*args, "-f", "json"))
        return parsed


@dataclass(frozen=True)
class Layout:
    """The addresses of a benchmark's management, member and VIP networks, its backends
    and its client. The defaults are the /24s that the data-plane benchmarks share (one
    run at a time); a benchmark that needs more amphorae brings larger ones."""

    management_cidr: str = MANAGEMENT_CIDR
    member_cidr: str = MEMBER_CIDR
    member_pool: str = MEMBER_POOL
    vip_cidr: str = VIP_CIDR
    vip_pool: str = VIP_POOL
    backends: tuple[str, ...] = BACKEND_ADDRESSES
    client_vip_side: str = CLIENT_VIP_SIDE
    client_member_side: str = CLIENT_MEMBER_SIDE

    @property
    def controller_ip(self) -> str:
        """The controller's address on the management network: its first host address."""
        return str(next(ipaddress.ip_network(self.management_cidr).hosts()))


DEFAULT_LAYOUT = Layout()


def write_config(workdir: Path, base_path: Path, port: int, extra: str = "",
                 layout: Layout = DEFAULT_LAYOUT) -> Path:
    """The service's configuration; ``extra`` (INI sections) is merged in (its options
    win)."""
    config = workdir / "lbaas.conf"
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(
        "[DEFAULT]\n"
        f"state_path = {workdir / 'state'}\n"
        "debug = True\n"
        "[api_settings]\n"
        "bind_host = 127.0.0.1\n"
        f"bind_port = {port}\n"
        "[controller_worker]\n"
        "compute_driver = compute_netns_driver\n"
        "network_driver = network_local_driver\n"
        "amphora_driver = amphora_haproxy_rest_driver\n"
        "[certificates]\n"
        "cert_generator = local_cert_generator\n"
        "[haproxy_amphora]\n"
        f"base_path = {base_path}\n"
        "[networking]\n"
        f"lb_network_cidr = {layout.management_cidr}\n"
        f"lb_network_bridge = {MANAGEMENT_BRIDGE}\n"
        f"controller_ip = {layout.controller_ip}\n")
    parser.read_string(extra)
    with config.open("w") as output:
        parser.write(output)
    return config


def remove_amphora_leftovers(base_path: Path) -> None:
    """Amphorae the service left (it died before deleting them): their namespaces and files.

    Every amphora of this service has a directory under its private ``base_path``."""
    runc = Runc.beside(base_path)
    if base_path.is_dir():
        for directory in base_path.iterdir():
            remove_namespace(namespace_of(directory.name))
            runc.delete(namespace_of(directory.name))  # an amphora run from an image
    shutil.rmtree(base_path, ignore_errors=True)
    shutil.rmtree(runc.root, ignore_errors=True)
    for kind in LAUNCHERS.values():  # agent_launcher = zygote or host: a process per host
        launcher = kind(base_path, sys.executable)
        launcher.stop()
        shutil.rmtree(launcher.socket_path.parent, ignore_errors=True)


@contextlib.contextmanager
def lbaas_up(workdir: Path, save_log: Path | None, extra_config: str = "",
             layout: Layout = DEFAULT_LAYOUT, launcher: list[str] | None = None
             ) -> Iterator[Service]:
    """``lbaas up`` with the real drivers (``launcher``, default ``lbaas_command()``, is
    the command that runs lbaas); on exit it is stopped (its log copied to ``save_log``),
    ``lbaas down`` runs, and leftover amphorae, the management bridge and the amphorae
    directory are removed."""
    base_path = Path(f"/run/{PREFIX}-{uuid.uuid4().hex[:8]}")
    port = free_port()
    config = write_config(workdir, base_path, port, extra_config, layout)
    service = Service(f"http://127.0.0.1:{port}", config, workdir / "lbaas.log", base_path)
    try:
        with service.log.open("w") as output:
            process = subprocess.Popen([*(launcher or lbaas_command()), "up",
                                        "--config-file", str(config)],
                                       stdout=output, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=clean_environment(),
                                       start_new_session=True)
        try:
            wait_until_serving(port, process, service.log)
            yield service
        finally:
            stop(process)
            if save_log:
                attempt(f"saving the log to {save_log}",
                        lambda: shutil.copyfile(service.log, save_log))
    finally:
        attempt("removing leftover amphorae", lambda: remove_amphora_leftovers(base_path))
        attempt("lbaas down", lambda: service.lbaas("down"))
        attempt(f"removing {MANAGEMENT_BRIDGE}", lambda: remove_link(MANAGEMENT_BRIDGE))


# --- networks, backends, client ---------------------------------------------------------

@dataclass(frozen=True)
class Network:
    name: str
    bridge: str
    subnet_id: str
    prefix: str


@contextlib.contextmanager
def registry_network(service: Service, name: str, cidr: str, pool: str) -> Iterator[Network]:
    """A network and subnet made with ``lbaas network/subnet create``; deleted on exit."""
    network = service.lbaas_json("network", "create", name)
    try:
        subnet = service.lbaas_json("subnet", "create", f"{name}-subnet", "--network", name,
                                    "--subnet-range", cidr, "--allocation-pool", pool)
        yield Network(name, network["bridge"], subnet["id"], cidr.split("/")[1])
    finally:
        attempt(f"lbaas network delete {name}", lambda: service.lbaas("network", "delete", name))
        attempt(f"removing bridge {network['bridge']}", lambda: remove_link(network["bridge"]))


@dataclass(frozen=True)
class Backend:
    name: str
    address: str
    namespace: str


def wait_for_backend(backend: Backend, process: subprocess.Popen[bytes]) -> None:
    url = f"http://{backend.address}/"
    for _ in range(BACKEND_START_TRIES):
        if process.poll() is not None:
            raise BenchError(f"nginx of {backend.name} exited with {process.returncode}")
        probe = subprocess.run(in_namespace(backend.namespace, "curl", "-sf", "--max-time", "1",
                                            url), capture_output=True, text=True)
        if probe.returncode == 0:
            return
        time.sleep(0.1)
    raise BenchError(f"nginx of {backend.name} did not answer on {url}")


@contextlib.contextmanager
def nginx_backend(workdir: Path, network: Network, index: int, address: str) -> Iterator[Backend]:
    """nginx (one worker, files in ``workdir``) in its own namespace on ``network``."""
    name = f"backend-{index}"
    root = workdir / name
    (root / "tmp").mkdir(parents=True)
    (root / "nginx.conf").write_text(NGINX_CONF.format(root=root, address=address, name=name))
    with namespace(f"{PREFIX}-{name}") as ns:
        add_leg(ns, f"lbb-b{index}", "eth0", network.bridge, f"{address}/{network.prefix}")
        backend = Backend(name, address, ns)
        with (root / "nginx.out").open("w") as output:
            process = subprocess.Popen(
                in_namespace(ns, "nginx", "-p", str(root), "-c", str(root / "nginx.conf"),
                             "-e", str(root / "error.log"), "-g", "daemon off;"),
                stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for_backend(backend, process)
            yield backend
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def client_namespace(vips: Network, members: Network, arp_retry_ms: int,
                     layout: Layout = DEFAULT_LAYOUT) -> Iterator[str]:
    """The client: on the VIP network, with a second leg on the member network so that it
    can also load the backends directly. ``arp_retry_ms`` is how often it re-asks who has
    a VIP that does not answer yet (the kernel's default is 1000 ms)."""
    with namespace(f"{PREFIX}-client") as ns:
        add_leg(ns, "lbb-cv", "eth0", vips.bridge, f"{layout.client_vip_side}/{vips.prefix}")
        add_leg(ns, "lbb-cm", "eth1", members.bridge,
                f"{layout.client_member_side}/{members.prefix}")
        sh(*in_namespace(ns, "sysctl", "-qw", f"net.ipv4.neigh.eth0.retrans_time_ms={arp_retry_ms}"))
        yield ns


# --- load balancers through the API -----------------------------------------------------

def lb_body(index: int, vip: str, vips: Network, members: Network,
            backends: list[Backend]) -> dict[str, Any]:
    """A load balancer with an HTTP listener, a pool and both backends, in one request."""
    return {"loadbalancer": {
        "name": f"bench-{index}", "vip_subnet_id": vips.subnet_id, "vip_address": vip,
        "listeners": [{
            "name": f"bench-{index}-http", "protocol": "HTTP", "protocol_port": 80,
            "default_pool": {
                "name": f"bench-{index}-pool", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                "members": [{"address": backend.address, "protocol_port": 80,
                             "subnet_id": members.subnet_id} for backend in backends]}}]}}


def provisioning_status(api: httpx.Client, lb_id: str) -> str | None:
    """The load balancer's provisioning status, None once it is gone."""
    response = api.get(f"{COLLECTION}/{lb_id}")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    status: str = response.json()["loadbalancer"]["provisioning_status"]
    return status


def wait_status(api: httpx.Client, lb_id: str, done: Callable[[str | None], bool],
                what: str) -> str | None:
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        status = provisioning_status(api, lb_id)
        if done(status):
            return status
        time.sleep(0.1)
    raise BenchError(f"load balancer {lb_id} not {what} after {SETTLE_TIMEOUT_S:.0f} s")


def wait_active(api: httpx.Client, lb_id: str) -> None:
    status = wait_status(api, lb_id, lambda s: s in ("ACTIVE", "ERROR", None), "ACTIVE")
    if status != "ACTIVE":
        raise BenchError(f"load balancer {lb_id} is {status}, not ACTIVE")


def delete_lb(api: httpx.Client, lb_id: str) -> None:
    """Delete (cascade) once it is not PENDING_*; wait until it is gone."""
    wait_status(api, lb_id, lambda s: s is None or not s.startswith("PENDING_"), "settled")
    response = api.delete(f"{COLLECTION}/{lb_id}", params={"cascade": "true"})
    if response.status_code not in (204, 404):
        raise BenchError(f"DELETE load balancer {lb_id}: {response.status_code} {response.text}")
    wait_status(api, lb_id, lambda s: s is None, "deleted")


@contextlib.contextmanager
def api_client(service: Service) -> Iterator[httpx.Client]:
    """An API client; on exit every load balancer of the service is deleted."""
    with httpx.Client(base_url=service.url, timeout=30.0) as api:
        try:
            yield api
        finally:
            attempt("deleting the load balancers", lambda: delete_all(api))


def delete_all(api: httpx.Client) -> None:
    for lb in api.get(COLLECTION).json()["loadbalancers"]:
        delete_lb(api, lb["id"])


# --- 1. POST to first request -----------------------------------------------------------

def poll(vip: str, port: int, deadline_s: float) -> int:
    """In the client namespace: GET / every ~10 ms until a 200; print its time.monotonic()
    (the clock is the host's, shared by every namespace) and the attempts it took."""
    request = f"GET / HTTP/1.1\r\nHost: {vip}\r\nConnection: close\r\n\r\n".encode()
    print("ready", flush=True)
    started = time.monotonic()
    for attempt_number in range(1, int(deadline_s / POLL_INTERVAL_S) + 1):
        if http_ok(vip, port, request):
            print(f"{time.monotonic():.6f} {attempt_number}", flush=True)
            return 0
        time.sleep(max(0.0, started + attempt_number * POLL_INTERVAL_S - time.monotonic()))
    return 1


def http_ok(host: str, port: int, request: bytes) -> bool:
    try:
        with socket.create_connection((host, port), timeout=POLL_CONNECT_TIMEOUT_S) as sock:
            sock.settimeout(POLL_ANSWER_TIMEOUT_S)
            sock.sendall(request)
            status_line = sock.makefile("rb").readline(256)
    except OSError:
        return False
    return status_line.split()[1:2] == [b"200"]


def read_line(stream: IO[bytes], timeout: float) -> str | None:
    """A line from an unbuffered pipe, or None if none arrives within ``timeout``."""
    readable, _, _ = select.select([stream], [], [], timeout)
    return stream.readline().decode().strip() if readable else None


@dataclass(frozen=True)
class FirstRequest:
    post_s: float
    first_request_s: float
    attempts: int


def time_first_request(api: httpx.Client, client_ns: str,
                       body: dict[str, Any]) -> tuple[str, FirstRequest]:
    """Create the load balancer while the poller knocks on its VIP; (id, timings)."""
    vip = body["loadbalancer"]["vip_address"]
    poller = subprocess.Popen(
        in_namespace(client_ns, sys.executable, str(Path(__file__).resolve()), "_poll", vip,
                     "--deadline", str(FIRST_REQUEST_TIMEOUT_S)),
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, bufsize=0)
    assert poller.stdout is not None  # a pipe
    try:
        if read_line(poller.stdout, 30.0) != "ready":
            raise BenchError("the poller in the client namespace did not start")
        started = time.monotonic()
        response = api.post(COLLECTION, json=body)
        posted = time.monotonic()
        if response.status_code != 201:
            raise BenchError(f"POST {COLLECTION}: {response.status_code} {response.text}")
        lb_id = response.json()["loadbalancer"]["id"]
        answered, attempts = await_poller(api, poller, lb_id)
        return lb_id, FirstRequest(posted - started, answered - started, attempts)
    finally:
        poller.kill()
        poller.wait()


def await_poller(api: httpx.Client, poller: subprocess.Popen[bytes],
                 lb_id: str) -> tuple[float, int]:
    """The poller's (time of first 200, attempts); fails early if the load balancer errs."""
    assert poller.stdout is not None  # a pipe
    deadline = time.monotonic() + FIRST_REQUEST_TIMEOUT_S
    while time.monotonic() < deadline:
        line = read_line(poller.stdout, 0.5)
        if line:
            answered, attempts = line.split()
            return float(answered), int(attempts)
        if poller.poll() is not None:
            raise BenchError(f"no 200 through the VIP of {lb_id} in {FIRST_REQUEST_TIMEOUT_S:.0f} s")
        if provisioning_status(api, lb_id) == "ERROR":
            raise BenchError(f"load balancer {lb_id} went to ERROR (see the service log)")
    raise BenchError(f"no 200 through the VIP of {lb_id} in {FIRST_REQUEST_TIMEOUT_S:.0f} s")


def bench_first_request(
        api: httpx.Client, client_ns: str, runs: int,
        make_body: Callable[[int, str], dict[str, Any]],
        before_each: Callable[[], None] = lambda: None) -> tuple[str, list[FirstRequest]]:
    """``runs`` load balancers one after the other, ``before_each`` called before each
    POST; the last one is kept (its id returned)."""
    samples: list[FirstRequest] = []
    lb_id = ""
    for index in range(runs):
        before_each()
        lb_id, sample = time_first_request(api, client_ns, make_body(index, str(FIRST_VIP + index)))
        samples.append(sample)
        print(f"  run {index + 1:>2}: POST answered in {sample.post_s * 1000:5.0f} ms, first 200 "
              f"after {sample.first_request_s:.3f} s ({sample.attempts} attempts)", flush=True)
        wait_active(api, lb_id)
        if index < runs - 1:
            delete_lb(api, lb_id)
    return lb_id, samples


def wait_for_spares(api: httpx.Client, count: int, timeout: float = 60.0) -> None:
    """Until the spare pool holds ``count`` READY amphorae (none: return at once)."""
    deadline = time.monotonic() + timeout
    while count:
        ready = api.get("/v2/octavia/amphorae", params={"status": "READY"}).json()["amphorae"]
        if len(ready) >= count:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"the spare pool did not reach {count} in {timeout:.0f} s")
        time.sleep(0.1)


@contextlib.contextmanager
def busy_load_balancer(api: httpx.Client, client_ns: str, script: Path, connections: int,
                       vips: Network, members: Network,
                       backends: list[Backend]) -> Iterator[None]:
    """With ``connections``: another load balancer (the last VIP of the runs' range) under
    ``wrk`` from the client namespace until the block ends, then deleted."""
    if not connections:
        yield
        return
    vip = str(FIRST_VIP + MAX_RUNS - 1)
    response = api.post(COLLECTION, json=lb_body(MAX_RUNS - 1, vip, vips, members, backends))
    if response.status_code != 201:
        raise BenchError(f"POST {COLLECTION}: {response.status_code} {response.text}")
    lb_id = response.json()["loadbalancer"]["id"]
    wait_active(api, lb_id)
    load = Load(max(1, min(2, connections // 2)), connections, 3600)
    wrk = start_wrk(client_ns, script, f"http://{vip}/", load)
    time.sleep(2.0)  # under load before the first create
    print(f"  busy: load balancer {vip} under wrk -c{connections} throughout")
    try:
        yield
    finally:
        wrk.kill()
        wrk.wait()
        delete_lb(api, lb_id)


def create_flow_steps(log: Path) -> dict[str, list[float]]:
    """Each step's durations over the create flows the service logged (``debug = True``)."""
    steps: dict[str, list[float]] = defaultdict(list)
    for match in STEP_LINE.finditer(log.read_text(errors="replace")):
        steps[match.group(1)].append(float(match.group(2)))
    return steps


# --- 2. requests/s ----------------------------------------------------------------------

@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class Load:
    threads: int
    connections: int
    seconds: float


def start_wrk(client_ns: str, script: Path, url: str, load: Load) -> subprocess.Popen[str]:
    return subprocess.Popen(
        in_namespace(client_ns, "wrk", f"-t{load.threads}", f"-c{load.connections}",
                     f"-d{load.seconds:g}s", "-s", str(script), url),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)


def wrk_result(process: subprocess.Popen[str], load: Load) -> WrkResult:
    output, _ = process.communicate(timeout=load.seconds + 60)
    report = [line for line in output.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not report:
        raise BenchError(f"wrk failed ({process.returncode}):\n{output}")
    return WrkResult(**json.loads(report[-1]))


def run_wrk(client_ns: str, script: Path, urls: list[str], load: Load) -> list[WrkResult]:
    """``load`` split evenly over ``urls``, all at the same time; one result per URL."""
    share = Load(max(1, load.threads // len(urls)), load.connections // len(urls), load.seconds)
    processes = [start_wrk(client_ns, script, url, share) for url in urls]
    try:
        return [wrk_result(process, share) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Cpu:
    """CPU seconds spent during one wrk run, by whom: the client (wrk), the amphora
    (haproxy), the backends (nginx) — each with the kernel's packet handling done in its
    context — and the whole host (other sessions' work and kernel threads included)."""

    client: float
    amphora: float
    backends: float
    host_busy: float
    host_total: float

    @property
    def ours(self) -> float:
        return self.client + self.amphora + self.backends

    @property
    def rest(self) -> float:
        return max(0.0, self.host_busy - self.ours)

    @property
    def idle(self) -> float:
        return self.host_total - self.host_busy


def namespace_pids(name: str) -> list[int]:
    return [int(pid) for pid in sh("ip", "netns", "pids", name).split()]


def process_cpu_s(pids: list[int]) -> float:
    """utime + stime of ``pids`` (fields 14 and 15 of /proc/PID/stat)."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def namespaces_cpu(namespaces: list[str], seconds: float) -> dict[str, float]:
    """Per command, the CPU the processes of ``namespaces`` used over the next ``seconds``,
    in percent of one core; with the children they reaped (a check script keepalived runs
    counts as keepalived's). Processes that start or end meanwhile are not counted."""
    def ticks() -> dict[int, tuple[str, int]]:
        found = {}
        for pid in (pid for name in namespaces for pid in namespace_pids(name)):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                stat = Path(f"/proc/{pid}/stat").read_text()
                command, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat.rsplit(")", 1)[1].split()
                found[pid] = (command, sum(int(value) for value in fields[11:15]))
        return found

    before, started = ticks(), time.monotonic()
    time.sleep(seconds)
    after, elapsed = ticks(), time.monotonic() - started
    per_command: dict[str, float] = {}
    for pid, (command, used) in after.items():
        if pid in before:
            share = (used - before[pid][1]) / CLOCK_TICKS / elapsed * 100
            per_command[command] = per_command.get(command, 0.0) + share
    return per_command


def host_cpu_s() -> tuple[float, float]:
    """(busy, all) CPU seconds of the host since boot (first line of /proc/stat)."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return (total - idle - iowait) / CLOCK_TICKS, total / CLOCK_TICKS


def cpu_counters(amphora: list[int], backends: list[int]) -> Cpu:
    """The counters now; wrk's time is in our waited children's usage."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Cpu(children.ru_utime + children.ru_stime, process_cpu_s(amphora),
               process_cpu_s(backends), *host_cpu_s())


@dataclass(frozen=True)
class Place:
    """Where the load goes and whose CPU time to count."""

    client: str
    amphora: str
    backends: list[Backend]


def measured_wrk(place: Place, script: Path, urls: list[str],
                 load: Load) -> tuple[list[WrkResult], Cpu]:
    amphora = namespace_pids(place.amphora)
    backends = [pid for backend in place.backends for pid in namespace_pids(backend.namespace)]
    before = cpu_counters(amphora, backends)
    results = run_wrk(place.client, script, urls, load)
    after = cpu_counters(amphora, backends)
    return results, Cpu(*(getattr(after, key) - getattr(before, key)
                          for key in Cpu.__dataclass_fields__))


@dataclass(frozen=True)
class Round:
    through_lb: WrkResult
    direct: list[WrkResult]
    lb_cpu: Cpu
    direct_cpu: Cpu

    @property
    def direct_rate(self) -> float:
        return sum(result.rate for result in self.direct)

    @property
    def direct_requests(self) -> int:
        return sum(result.requests for result in self.direct)

    @property
    def ratio(self) -> float:
        return self.through_lb.rate / self.direct_rate


def bench_throughput(place: Place, script: Path, vip: str, load: Load, rounds: int,
                     warmup_s: float) -> list[Round]:
    """Alternate runs through the VIP and straight to the backends, after a warm-up of each."""
    lb_urls, direct_urls = [f"http://{vip}/"], [f"http://{b.address}/" for b in place.backends]
    warmup = Load(load.threads, load.connections, warmup_s)
    run_wrk(place.client, script, lb_urls, warmup)
    run_wrk(place.client, script, direct_urls, warmup)
    results = []
    for index in range(rounds):
        (through_lb,), lb_cpu = measured_wrk(place, script, lb_urls, load)
        direct, direct_cpu = measured_wrk(place, script, direct_urls, load)
        made = Round(through_lb, direct, lb_cpu, direct_cpu)
        errors = made.through_lb.errors + sum(result.errors for result in made.direct)
        print(f"  round {index + 1}: through LB {made.through_lb.rate:8.0f} req/s, direct "
              f"{made.direct_rate:8.0f} req/s, ratio {made.ratio:.2f}"
              + (f", {errors} errors" if errors else ""), flush=True)
        results.append(made)
    return results


# --- 3. memory --------------------------------------------------------------------------

@dataclass(frozen=True)
class Process:
    pid: int
    role: str
    rss_kib: int
    pss_kib: int  # shared pages (libraries, haproxy's master/worker copy-on-write) split fairly


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def proportional_kib(pid: int) -> int:
    """The process's proportional set size (Pss in /proc/PID/smaps_rollup)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def process_role(pid: int, status: dict[str, str]) -> str:
    if status["Name"] == "haproxy":
        parent = proc_status(int(status["PPid"])).get("Name") if status["PPid"] != "0" else None
        if parent == "haproxy":
            return "haproxy worker"
        return "haproxy master" if b"-W" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") else "haproxy"
    if status["Name"] == "tini":
        return "tini (container init)"
    if b"lbaas.amphora.agent" in Path(f"/proc/{pid}/cmdline").read_bytes():
        return "agent"
    return f"other ({status['Name']})"


def amphora_processes(amphora_namespace: str) -> list[Process]:
    """Every process in the amphora's namespace with its role and VmRSS."""
    found = []
    for pid in map(int, sh("ip", "netns", "pids", amphora_namespace).split()):
        with contextlib.suppress(FileNotFoundError):  # it exited meanwhile
            status = proc_status(pid)
            rss = int(status.get("VmRSS", "0 kB").split()[0])
            found.append(Process(pid, process_role(pid, status), rss, proportional_kib(pid)))
    return sorted(found, key=lambda process: process.role)


def only_amphora(service: Service) -> str:
    amphorae = [path.name for path in service.base_path.iterdir()]
    if len(amphorae) != 1:
        raise BenchError(f"expected one amphora under {service.base_path}, found {amphorae}")
    return namespace_of(amphorae[0])


# --- the run ----------------------------------------------------------------------------

class Teardown(contextlib.ExitStack):
    """An ExitStack whose unwinding a second Ctrl-C or a SIGTERM cannot cut short."""

    def __exit__(self, *exc_info: Any) -> bool:
        previous = {signum: signal.signal(signum, signal.SIG_IGN)
                    for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            return bool(super().__exit__(*exc_info))
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def preflight() -> None:
    """Refuse to start where the run would fail or disturb another lbaas on this host."""
    if os.geteuid() != 0:
        raise BenchError("run as root: it creates namespaces, bridges and iptables rules")
    missing = [tool for tool in ("ip", "iptables", "haproxy", "nginx", "wrk", "curl")
               if shutil.which(tool) is None]
    if missing:
        raise BenchError(f"missing {', '.join(missing)}: apt-get install iproute2 iptables "
                         "haproxy nginx-light wrk curl")
    leftovers = sorted(name for name in namespace_names() if name.startswith(PREFIX))
    if leftovers or link_exists(MANAGEMENT_BRIDGE):
        raise BenchError(f"another run of this benchmark is going on, or an earlier one left "
                         f"{', '.join(leftovers) or MANAGEMENT_BRIDGE} behind; remove leftovers "
                         f"with `ip netns del NAME` / `ip link del {MANAGEMENT_BRIDGE}`")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def report_first_request(samples: list[FirstRequest],
                         steps: dict[str, list[float]]) -> list[Target]:
    times = [sample.first_request_s for sample in samples]
    p50, p90 = percentile(times, 50), percentile(times, 90)
    print(f"  POST -> first 200: p50 {ms(p50)}, p90 {ms(p90)}, "
          f"max {ms(max(times))}; POST itself p50 {ms(percentile([s.post_s for s in samples], 50))}")
    if steps:
        print("  create flow, median per step: " + ", ".join(
            f"{name} {ms(statistics.median(values))}" for name, values in steps.items()))
    return [Target(f"POST -> first request p50 ({len(samples)} runs)", p50 * 1000, "ms",
                   "< 300 ms", p50 < 0.3),
            Target(f"POST -> first request p90 ({len(samples)} runs)", p90 * 1000, "ms",
                   "< 500 ms", p90 < 0.5)]


def median_of(values: Any) -> float:
    return float(statistics.median(list(values)))


def report_throughput(rounds: list[Round], load: Load) -> Target:
    """Medians over the rounds, through the LB beside direct."""
    ratio = median_of(made.ratio for made in rounds)
    lbs = [made.through_lb for made in rounds]
    directs = [[made.direct[i] for made in rounds] for i in range(len(rounds[0].direct))]

    def row(label: str, through_lb: str, direct: str) -> None:
        print(f"  {label:<46}{through_lb:>10}   {direct}")

    def latency(pick: Callable[[WrkResult], float]) -> tuple[str, str]:
        return (f"{median_of(map(pick, lbs)):.2f} ms",
                " / ".join(f"{median_of(map(pick, results)):.2f} ms" for results in directs))

    row(f"median of {len(rounds)} rounds, wrk -t{load.threads} -c{load.connections} "
        f"-d{load.seconds:g}s", "through LB", "direct (backend-1 / backend-2)")
    row("requests/s", f"{median_of(r.rate for r in lbs):.0f}",
        f"{median_of(made.direct_rate for made in rounds):.0f} (sum)")
    row("latency p50", *latency(lambda r: r.p50_ms))
    row("latency p99", *latency(lambda r: r.p99_ms))
    row("ratio through LB / direct", f"{ratio:.2f}", "")
    row(f"CPU seconds per run ({os.cpu_count()} CPUs x {load.seconds:g} s):", "", "")
    for label, key in (("  client (wrk)", "client"), ("  amphora (haproxy)", "amphora"),
                       ("  backends (nginx)", "backends"),
                       ("  rest of the host (other work, kernel)", "rest"), ("  idle", "idle")):
        row(label, f"{median_of(getattr(made.lb_cpu, key) for made in rounds):.1f}",
            f"{median_of(getattr(made.direct_cpu, key) for made in rounds):.1f}")
    row("CPU per request (client + amphora + backends)",
        f"{median_of(made.lb_cpu.ours / made.through_lb.requests for made in rounds) * 1e6:.0f} us",
        f"{median_of(made.direct_cpu.ours / made.direct_requests for made in rounds) * 1e6:.0f} us")
    return Target("requests/s through LB / direct", ratio * 100, "%", ">= 90 %", ratio >= 0.9)


def report_memory(processes: list[Process]) -> Target:
    total = sum(process.rss_kib for process in processes) / 1024
    pss = sum(process.pss_kib for process in processes) / 1024
    for process in processes:
        print(f"  {process.role:<16} pid {process.pid:>7}  VmRSS {process.rss_kib / 1024:6.1f} MB"
              f"   Pss {process.pss_kib / 1024:6.1f} MB")
    print(f"  {'total':<28}  VmRSS {total:6.1f} MB   Pss {pss:6.1f} MB")
    return Target("amphora memory (agent + haproxy, RSS)", total, "MB", "< 40 MB", total < 40)


@dataclass(frozen=True)
class Environment:
    """What a data-plane benchmark runs against."""

    service: Service
    members: Network
    vips: Network
    backends: list[Backend]
    client_ns: str
    api: httpx.Client


def set_up(stack: contextlib.ExitStack, workdir: Path, save_log: Path | None,
           client_arp_retry_ms: int, extra_config: str = "", layout: Layout = DEFAULT_LAYOUT,
           launcher: list[str] | None = None) -> Environment:
    """``lbaas up`` (run by ``launcher``), the member and VIP networks, both nginx
    backends, the client namespace and an API client, at ``layout``'s addresses; each is
    removed when ``stack`` unwinds."""
    service = stack.enter_context(lbaas_up(workdir, save_log, extra_config, layout, launcher))
    print(f"lbaas up at {service.url}, files in {workdir}, amphorae in {service.base_path}")
    members = stack.enter_context(registry_network(service, f"{PREFIX}-members",
                                                   layout.member_cidr, layout.member_pool))
    vips = stack.enter_context(registry_network(service, f"{PREFIX}-vips", layout.vip_cidr,
                                                layout.vip_pool))
    backends = [stack.enter_context(nginx_backend(workdir, members, index, address))
                for index, address in enumerate(layout.backends, start=1)]
    client_ns = stack.enter_context(client_namespace(vips, members, client_arp_retry_ms, layout))
    return Environment(service, members, vips, backends, client_ns,
                       stack.enter_context(api_client(service)))


def run(args: argparse.Namespace, workdir: Path) -> list[Target]:
    load = Load(args.threads, args.connections, args.seconds)
    with Teardown() as stack:
        extra = f"[haproxy_amphora]\nagent_launcher = {args.agent_launcher}\n"
        if args.spares:
            extra += ("[house_keeping]\nspare_check_interval = 1\n"
                      f"spare_amphora_pool_size = {args.spares}\n")
        env = set_up(stack, workdir, args.save_log, args.client_arp_retry_ms, extra)
        service, members, vips, backends, client_ns, api = (
            env.service, env.members, env.vips, env.backends, env.client_ns, env.api)
        print(f"  agent launcher {args.agent_launcher}, spare pool {args.spares}")

        print(f"\n1. POST {COLLECTION} (HTTP listener, pool, 2 members) -> first 200 through the "
              f"VIP from the client, polled every {POLL_INTERVAL_S * 1000:.0f} ms "
              f"(client ARP retry {args.client_arp_retry_ms} ms)")
        script = workdir / "report.lua"
        script.write_text(WRK_REPORT)
        with busy_load_balancer(api, client_ns, script, args.busy, vips, members, backends):
            print(f"  load average before: {load_average()}")
            lb_id, samples = bench_first_request(
                api, client_ns, args.runs,
                lambda index, vip: lb_body(index, vip, vips, members, backends),
                lambda: wait_for_spares(api, args.spares))
        targets = report_first_request(samples, create_flow_steps(service.log))
        if args.first_request_only:
            print("\ncleaning up ...", flush=True)
            return targets

        vip = api.get(f"{COLLECTION}/{lb_id}").json()["loadbalancer"]["vip_address"]
        print(f"\n2. requests/s with wrk from the client namespace, {args.rounds} rounds "
              f"alternating through the LB and directly to both backends")
        print(f"  load average before: {load_average()}")
        place = Place(client_ns, only_amphora(service), backends)
        rounds = bench_throughput(place, script, vip, load, args.rounds, args.warmup)
        targets.append(report_throughput(rounds, load))

        print("\n3. memory of the amphora (after the load)")
        targets.append(report_memory(amphora_processes(place.amphora)))
        print("\ncleaning up ...", flush=True)
    return targets


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, choices=range(2, MAX_RUNS + 1),
                        metavar=f"2..{MAX_RUNS}",
                        help="load balancers created and timed (default 10)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads in all (default 2)")
    parser.add_argument("--connections", type=int, default=64,
                        help="wrk connections in all (default 64)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3,
                        help="wrk rounds (through the LB, then direct) (default 3)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of wrk before the rounds")
    parser.add_argument("--client-arp-retry-ms", type=int, default=10,
                        help="how often the client re-asks for an unanswered VIP's MAC "
                             "(kernel default 1000)")
    parser.add_argument("--agent-launcher", choices=("exec", "zygote", "host"), default="exec",
                        help="[haproxy_amphora] agent_launcher (default exec)")
    parser.add_argument("--spares", type=int, default=0, choices=range(0, 5), metavar="0..4",
                        help="[house_keeping] spare_amphora_pool_size; each create waits for "
                             "a full pool (default 0)")
    parser.add_argument("--first-request-only", action="store_true",
                        help="part 1 only (needed with --spares: parts 2 and 3 read the "
                             "load balancer's one amphora)")
    parser.add_argument("--busy", type=int, default=0, metavar="CONNECTIONS",
                        help="part 1 runs while another load balancer serves wrk with this "
                             "many connections (default 0: an idle machine)")
    parser.add_argument("--save-log", type=Path, metavar="FILE",
                        help="copy the service's log (with each flow step's duration) to FILE")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.connections < 2 * args.threads:
        parser.error("--connections must be at least twice --threads (>= 1): the direct runs "
                     "split both over the two backends")
    if args.spares and not args.first_request_only:
        parser.error("--spares needs --first-request-only")
    if args.busy < 0 or args.busy == 1:
        parser.error("--busy takes 0 or at least 2 connections")
    if args.rounds < 1 or args.seconds <= 0 or args.warmup <= 0:
        parser.error("--rounds, --seconds and --warmup must be positive")
    return args


def poll_main(argv: list[str]) -> int:
    """``_poll VIP``: the poller, run by the benchmark inside the client namespace."""
    parser = argparse.ArgumentParser(prog="dataplane_bench.py _poll")
    parser.add_argument("vip")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--deadline", type=float, default=FIRST_REQUEST_TIMEOUT_S)
    args = parser.parse_args(argv)
    return poll(args.vip, args.port, args.deadline)


def run_benchmark(run: Callable[[argparse.Namespace, Path], list[Target]],
                  args: argparse.Namespace) -> int:
    """Check the host, print the machine and date, ``run`` in a temporary directory and
    print its targets; the exit status: 0 all met, 1 one missed, 2 error, 130 interrupted."""
    signal.signal(signal.SIGTERM, interrupted)
    try:
        preflight()
        print(f"machine: {machine()}, kernel {os.uname().release}")
        print(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
        with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-") as tmp:
            targets = run(args, Path(tmp))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; everything it made is removed", file=sys.stderr)
        return 130
    print()
    for target in targets:
        print(target.line())
    return 0 if all(target.met for target in targets) else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_poll"]:
        return poll_main(argv[1:])
    return run_benchmark(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
