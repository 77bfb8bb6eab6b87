"""Data-plane tests' building blocks: settings with the real drivers, test networks,
backends and clients in namespaces, and the removal of what a failed test left."""
from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from lbaas import config, host, service
from lbaas.db.models import Amphora, Network, Port
from lbaas.drivers.compute.container import Runc
from lbaas.drivers.compute.launcher import LAUNCHERS
from lbaas.drivers.compute.netns import NetnsComputeDriver, host_ifname, namespace_of
from lbaas.network import registry, segments
from lbaas.network.bridge import Bridges
from tests.dataplane import netns
from tests.helpers import wait_for
from tests.helpers.api import (
    create_lb,
    create_listener,
    create_member,
    create_pool,
    wait_lb_active,
)

# Every data-plane test's amphorae live in a directory of their own under this one (on
# /run, a tmpfs: haproxy's stats socket path must stay short); the run removes it at
# its end (tests/conftest.py), once the last test removed its own.
AMPHORAE_ROOT = Path("/run/lbaas-test")


def free_subnet(prefix: str, low: int, high: int) -> str:
    """``prefix.N`` (a /24's first three octets, ``low <= N < high``) that no route of this
    machine uses yet: another test run on the same machine may have networks of its own.
    Each worker of a parallel run (pytest-xdist) draws N from its own share of the range,
    so that two workers never pick the same /24 before either has routed it."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    share = range(low, high)[worker::workers]
    routes = netns.ip("-4", "route", "show").stdout
    while True:
        candidate = f"{prefix}.{random.choice(share)}"
        if f"{candidate}.0/24" not in routes:
            return candidate


def dataplane_environ(state_path: Path) -> dict[str, str]:
    """The settings of a service with the real drivers (the defaults), as environment
    variables that a controller process started by a test can be given too."""
    return {
        "LBAAS__DEFAULT__state_path": str(state_path),
        "LBAAS__haproxy_amphora__base_path": str(AMPHORAE_ROOT / uuid.uuid4().hex[:8]),
        # A management network of its own, so a test never meets another run's amphorae.
        "LBAAS__networking__lb_network_cidr": f"{free_subnet('172.29', 128, 250)}.0/24",
        "LBAAS__networking__lb_network_bridge": f"lbm{uuid.uuid4().hex[:8]}",
        "LBAAS__health_manager__bind_port": "15556",
    }


def remove_leftovers(services: service.Services) -> None:
    """Whatever a failed test left: amphora namespaces, bridges (and the VXLAN devices on
    them), firewall rules."""
    with services.db.read() as session:
        compute_ids = [a.compute_id for a in session.scalars(select(Amphora)) if a.compute_id]
        networks = [registry.segment_of(network) for network in session.scalars(select(Network))]
    compute = NetnsComputeDriver(services.settings.haproxy_amphora.base_path)
    for compute_id in compute_ids:
        if compute_id.startswith("amphora-"):
            compute.delete(compute_id)
    for segment in networks:
        segments.Host().remove(segment)
    Bridges().remove(services.settings.networking.lb_network_bridge)
    host.down(services.settings)


def remove_amphorae_directories(settings: config.Settings) -> None:
    """The amphorae's directory and what lives beside it (runc's state, the agent zygote
    and the host agent, which are stopped), once the amphorae are gone."""
    base = settings.haproxy_amphora.base_path
    for launcher in LAUNCHERS.values():
        process = launcher(base, sys.executable)
        process.stop()
        shutil.rmtree(process.socket_path.parent, ignore_errors=True)
    for path in (base, Runc.beside(base).root):
        shutil.rmtree(path, ignore_errors=True)


def delete_all_load_balancers(client: TestClient) -> None:
    for lb in client.get("/v2/lbaas/loadbalancers").json()["loadbalancers"]:
        path = f"/v2/lbaas/loadbalancers/{lb['id']}"
        wait_for(lambda path=path: client.get(path).json()["loadbalancer"], "provisioning_status",
                 lb["provisioning_status"] if lb["provisioning_status"] in ("ACTIVE", "ERROR")
                 else "ACTIVE", timeout=60)
        client.delete(f"{path}?cascade=true")
        wait_for(lambda path=path: {"code": client.get(path).status_code}, "code", 404,
                 timeout=60)


@dataclass
class TestNetwork:
    network_id: str
    subnet_id: str
    bridge: str
    cidr: str


def new_network(services: service.Services, name: str, cidr: str, pool: str) -> TestNetwork:
    """A registry network + subnet and its bridge (``remove_leftovers`` removes the bridge)."""
    with services.db.write() as session:
        network = registry.create_network(session, f"{name}-{netns.short_id()}")
        subnet = registry.create_subnet(session, f"{network.name}-subnet", network, cidr,
                                        pools=[pool])
        made = TestNetwork(network.id, subnet.id, network.bridge, cidr)
    Bridges().ensure(made.bridge)
    return made


@dataclass
class Backend:
    name: str
    address: str
    namespace: str
    root: Path
    process: subprocess.Popen | None = None


class BackendHosts:
    """HTTP servers, each in its own namespace, answering with their own name."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.hosts: dict[str, Backend] = {}
        self._namespaces: list[contextlib.AbstractContextManager[str]] = []

    def add(self, network: TestNetwork, address: str, name: str,
            host: str | None = None) -> Backend:
        """A backend on ``network``'s bridge (of the namespace ``host``, else the root's)."""
        root = self.workdir / name
        root.mkdir()
        (root / "index.html").write_text(name)
        prefix = network.cidr.split("/")[1]
        context = netns.namespace(f"lbt-{name}-{netns.short_id()}", network.bridge,
                                  f"{address}/{prefix}", host=host)
        backend = Backend(name, address, context.__enter__(), root)
        self._namespaces.append(context)
        self.hosts[name] = backend
        self.start(name)
        return backend

    def start(self, name: str) -> None:
        backend = self.hosts[name]
        backend.process = subprocess.Popen(
            ["ip", "netns", "exec", backend.namespace, sys.executable, "-m", "http.server", "80",
             "--bind", backend.address, "--directory", str(backend.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = f"import socket; socket.create_connection(('{backend.address}', 80), 0.2)"
        for _ in range(100):
            if netns.in_namespace(backend.namespace, sys.executable, "-c", probe).returncode == 0:
                return
        raise RuntimeError(f"backend {name} did not start")

    def stop(self, name: str) -> None:
        process = self.hosts[name].process
        if process is not None:
            process.kill()
            process.wait()
            self.hosts[name].process = None

    def close(self) -> None:
        for name in self.hosts:
            self.stop(name)
        for context in reversed(self._namespaces):
            context.__exit__(None, None, None)


MEMBER_CIDR, MEMBER_POOL = "10.240.1.0/24", "10.240.1.100-10.240.1.200"
VIP_CIDR, VIP_POOL = "10.240.2.0/24", "10.240.2.100-10.240.2.200"


CLIENT_ADDRESS = "10.240.2.50"


@dataclass
class Topology:
    """Two backends on a member network, a client on the VIP network."""

    members: TestNetwork
    vips: TestNetwork
    backends: list[Backend]
    client: str


def curl(namespace: str, url: str, *options: str) -> str:
    """The body curl gets from ``url`` inside ``namespace``, or ``failed (<exit code>)``."""
    result = netns.in_namespace(namespace, "curl", "-s", "--max-time", "3", *options, url)
    return result.stdout.strip() if result.returncode == 0 else f"failed ({result.returncode})"


def build(client, topology: Topology, protocol: str = "HTTP", port: int = 80,
          listener: dict | None = None, pool: dict | None = None) -> dict:
    """A load balancer with one listener, one pool and both backends as members."""
    lb = create_lb(client, vip_subnet_id=topology.vips.subnet_id)
    made_listener = create_listener(client, lb["id"], protocol, port, **(listener or {}))
    made_pool = create_pool(client, lb["id"], protocol, listener_id=made_listener["id"],
                            **(pool or {}))
    members = [create_member(client, made_pool["id"], backend.address,
                             subnet_id=topology.members.subnet_id)
               for backend in topology.backends]
    return {"lb": lb, "listener": made_listener, "pool": made_pool, "members": members,
            "url": f"http://{lb['vip_address']}:{port}/"}


def monitor(client, made: dict, monitor_type: str = "HTTP", **fields) -> None:
    """A health monitor checking every second (one failure takes a member out) on the
    pool ``build`` made; returns once the load balancer is ACTIVE again."""
    response = client.post("/v2/lbaas/healthmonitors", json={"healthmonitor": {
        "pool_id": made["pool"]["id"], "type": monitor_type, "delay": 1, "timeout": 1,
        "max_retries": 1, "max_retries_down": 1, **fields}})
    assert response.status_code == 201, response.text
    wait_lb_active(client, made["lb"]["id"])


def wait_until(condition, timeout: float = 20.0) -> None:
    """Poll ``condition`` (the data plane converging) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the data plane did not converge"
        time.sleep(0.5)


def balanced(topology: Topology, url: str, requests: int = 10, *options: str) -> collections.Counter:
    return collections.Counter(curl(topology.client, url, *options) for _ in range(requests))


def put_and_wait(client, path: str, root: str, lb_id: str, **body) -> None:
    response = client.put(path, json={root: body})
    assert response.status_code == 200, response.text
    wait_lb_active(client, lb_id)


def assert_nothing_left(services, amphora_ids: list[str], port_ids: list[str]) -> None:
    """No namespace, directory, interface or address of these amphorae and ports remains."""
    namespaces = netns.ip("netns", "list").stdout
    links = netns.ip("link", "show").stdout
    for amphora_id in amphora_ids:
        assert f"amphora-{amphora_id}" not in namespaces
        assert not (services.settings.haproxy_amphora.base_path / amphora_id).exists()
    for port_id in port_ids:
        assert host_ifname(port_id) not in links
    with services.db.read() as session:
        owners = {port.device_owner for port in session.scalars(select(Port))}
    assert owners <= {"network:controller"}


def crash(amphora: Amphora) -> None:
    """The amphora dies: every process in it killed at once, its namespace gone. Killed
    in one call, and again until none is left: keepalived's parent restarts a child it
    saw die, and one killed after the other could leave a fresh VRRP child running."""
    namespace = namespace_of(amphora.id)
    deadline = time.monotonic() + 10
    while pids := netns.ip("netns", "pids", namespace, check=False).stdout.split():
        assert time.monotonic() < deadline, f"processes of {namespace} survive: {pids}"
        subprocess.run(["kill", "-9", *pids], check=False, capture_output=True)
        time.sleep(0.05)
    netns.ip("netns", "del", namespace)


def fail_over(client, lb_id: str) -> None:
    """API failover, waited for (a dead amphora costs a couple of seconds of timeouts)."""
    path = f"/v2/lbaas/loadbalancers/{lb_id}"
    assert client.put(f"{path}/failover").status_code == 202
    wait_for(lambda: client.get(path).json()["loadbalancer"], "provisioning_status", "ACTIVE",
             timeout=60)


def live_amphorae(services, lb_id: str) -> list[Amphora]:
    with services.db.read() as session:
        return list(session.scalars(select(Amphora).where(
            Amphora.load_balancer_id == lb_id, Amphora.status == "ALLOCATED")))


def vip_holders(services, drivers, lb: dict) -> list[Amphora]:
    """The amphorae that have the VIP now (asked through their agents)."""
    return [amphora for amphora in live_amphorae(services, lb["id"])
            if drivers.amphora.holds_address(amphora, lb["vip_address"])]


# Clients through the VIP until stdin closes (``traffic``): "new" threads open a connection per request,
# "keepalive" threads reuse one. A keep-alive request refused on a connection the server
# had closed while it was idle (the stale-connection case HTTP clients retry, RFC 9112
# 9.3.1) is sent again once on a new connection and counted apart; any other failure, or
# a failed retry, counts as failed.
LOAD = """
import http.client, json, sys, threading
host, stop, lock = sys.argv[1], threading.Event(), threading.Lock()
counts = {"ok": 0, "failed": 0, "stale_retried": 0, "errors": []}
def get(connection):
    connection.request("GET", "/")
    response = connection.getresponse()
    response.read()
    return response.status == 200
def run(keepalive):
    connection = None
    while not stop.is_set():
        fresh = connection is None
        connection = connection or http.client.HTTPConnection(host, 80, timeout=5)
        outcome, error = "failed", None
        try:
            outcome = "ok" if get(connection) else "failed"
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
            connection.close()
            connection, error = None, repr(exc)
            if keepalive and not fresh:
                try:
                    connection = http.client.HTTPConnection(host, 80, timeout=5)
                    outcome = "stale_retried" if get(connection) else "failed"
                except OSError as again:
                    connection, error = None, repr(again)
        except OSError as exc:
            connection, error = None, repr(exc)
        if not keepalive and connection is not None:
            connection.close()
            connection = None
        with lock:
            counts[outcome] += 1
            if outcome == "failed" and len(counts["errors"]) < 5:
                counts["errors"].append(error)
threads = [threading.Thread(target=run, args=(index % 2 == 1,)) for index in range(4)]
for thread in threads: thread.start()
sys.stdin.read()
stop.set()
for thread in threads: thread.join()
print(json.dumps(counts))
"""


@contextlib.contextmanager
def traffic(topology: Topology, vip: str) -> Iterator[dict[str, Any]]:
    """Clients through ``vip`` (port 80) from the client namespace while the block runs;
    the dict yielded holds their counts once it ends (LOAD)."""
    counts: dict[str, Any] = {}
    load = subprocess.Popen(["ip", "netns", "exec", topology.client, sys.executable, "-c", LOAD,
                             vip], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        yield counts
    finally:
        counts.update(json.loads(load.communicate("", timeout=60)[0]))
