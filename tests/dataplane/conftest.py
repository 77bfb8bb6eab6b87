"""A service with the real drivers, and test hosts (namespaces) on its networks.

Every fixture removes what it made — namespaces, bridges, processes, firewall rules and
files — also when the test fails.
"""
from __future__ import annotations

import contextlib
import random
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lbaas import config, host, service
from lbaas.api.app import create_app
from lbaas.db.models import Amphora, Network
from lbaas.drivers import Drivers
from lbaas.drivers.compute.netns import NetnsComputeDriver
from lbaas.network import registry, segments
from lbaas.network.bridge import Bridges
from tests.conftest import PROJECT
from tests.dataplane import netns


def _unused_management_cidr() -> str:
    """A /24 for a test's management network that no route of the host uses yet (another
    test run, on the same host, may have a management network of its own)."""
    routes = netns.ip("-4", "route", "show").stdout
    while True:
        cidr = f"172.29.{random.randrange(128, 250)}.0/24"
        if cidr not in routes:
            return cidr


def dataplane_environ(state_path: Path) -> dict[str, str]:
    """The settings of a service with the real drivers (the defaults), as environment
    variables that a controller process started by a test can be given too."""
    return {
        "LBAAS__DEFAULT__state_path": str(state_path),
        "LBAAS__haproxy_amphora__base_path": f"/run/lbaas-test/{uuid.uuid4().hex[:8]}",
        # A management network of its own, so a test never meets another run's amphorae.
        "LBAAS__networking__lb_network_cidr": _unused_management_cidr(),
        "LBAAS__networking__lb_network_bridge": f"lbm{uuid.uuid4().hex[:8]}",
        "LBAAS__health_manager__bind_port": "15556",
    }


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[config.Settings]:
    settings = config.load(environ=dataplane_environ(tmp_path))
    yield settings
    shutil.rmtree(settings.haproxy_amphora.base_path, ignore_errors=True)


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


@pytest.fixture
def dataplane(services: service.Services, drivers: Drivers) -> Iterator[TestClient]:
    """The API with a worker driving real amphorae; all load balancers deleted afterwards.

    ``drivers`` are the real drivers the worker uses: a test may break one of their
    methods to make a flow fail.
    """
    try:
        with service.running_worker(services, drivers):
            with TestClient(create_app(services.api_state),
                            headers={"X-Project-Id": PROJECT}) as client:
                try:
                    yield client
                finally:
                    _delete_all_load_balancers(client)
    finally:
        remove_leftovers(services)


def _delete_all_load_balancers(client: TestClient) -> None:
    from tests.conftest import wait_for
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


@pytest.fixture
def make_network(services: service.Services):
    """Create a registry network + subnet (and its bridge); removed with the test."""
    yield lambda name, cidr, pool: new_network(services, name, cidr, pool)


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


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[BackendHosts]:
    hosts = BackendHosts(tmp_path)
    try:
        yield hosts
    finally:
        hosts.close()


@pytest.fixture
def client_host():
    """A namespace standing for a client on a network; yields a function running commands there."""
    contexts = []

    def make(network: TestNetwork, address: str) -> str:
        prefix = network.cidr.split("/")[1]
        context = netns.namespace(f"lbt-client-{netns.short_id()}", network.bridge,
                                  f"{address}/{prefix}")
        contexts.append(context)
        return context.__enter__()

    try:
        yield make
    finally:
        for context in reversed(contexts):
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


@pytest.fixture
def topology(make_network, backends, client_host) -> Topology:
    members = make_network("members", MEMBER_CIDR, MEMBER_POOL)
    vips = make_network("vips", VIP_CIDR, VIP_POOL)
    started = [backends.add(members, f"10.240.1.1{i}", f"backend-{i}") for i in (1, 2)]
    return Topology(members, vips, started, client_host(vips, CLIENT_ADDRESS))


def curl(namespace: str, url: str, *options: str) -> str:
    """The body curl gets from ``url`` inside ``namespace``, or ``failed (<exit code>)``."""
    result = netns.in_namespace(namespace, "curl", "-s", "--max-time", "3", *options, url)
    return result.stdout.strip() if result.returncode == 0 else f"failed ({result.returncode})"
