"""Controller processes for data-plane tests, and the checks that a deployment converged.

Tests that kill controllers for real run them as ``lbaas ...`` processes on the test's
database (``Controllers``); ``assert_converged`` then checks the invariants a crash must
never break: exactly the amphorae the database names run, nothing leaks, and one amphora
answers for each VIP.
"""
from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from sqlalchemy import select

from lbaas import config, constants, service
from lbaas.db.models import Amphora, LoadBalancer, Port
from lbaas.drivers.compute.launcher import HostAgentLauncher
from lbaas.drivers.compute.netns import AGENT_MODULE, NetnsComputeDriver, _cmdline, namespaces
from lbaas.network import ports as registry_ports
from tests.dataplane import netns
from tests.helpers import wait_for
from tests.helpers.dataplane import (
    CLIENT_ADDRESS,
    MEMBER_CIDR,
    MEMBER_POOL,
    VIP_CIDR,
    VIP_POOL,
    BackendHosts,
    Topology,
    curl,
    new_network,
    remove_amphorae_directories,
    remove_leftovers,
)

LBAAS = Path(sys.executable).parent / "lbaas"
LBS = "/v2/lbaas/loadbalancers"
# How long a controller may take to finish a job it took over (a create is about a second).
CONVERGE = 30.0


class Client(Protocol):
    """The API, in the test process (TestClient) or in another one (httpx.Client)."""

    def get(self, url: str, **kwargs: Any) -> Any: ...
    def post(self, url: str, **kwargs: Any) -> Any: ...


def reserve_second_host(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` keeping the management network's second address for a second
    controller host (its first is the first host's)."""
    cidr = ipaddress.ip_network(environ["LBAAS__networking__lb_network_cidr"])
    return {**environ, "LBAAS__networking__used_ips": str(cidr[2])}


def second_host(environ: dict[str, str], host: str) -> dict[str, str]:
    """The settings of a second controller host: its name and its own management address
    (both hosts' addresses live on the test's one management bridge)."""
    cidr = ipaddress.ip_network(environ["LBAAS__networking__lb_network_cidr"])
    return {"LBAAS__DEFAULT__host": host, "LBAAS__networking__controller_ip": str(cidr[2]),
            "LBAAS__networking__used_ips": str(cidr[1])}


class Controllers:
    """Controller processes (``lbaas worker``, ``api``, ...) on the test's database, each
    logging to its own file; all stopped at the end."""

    def __init__(self, environ: dict[str, str], workdir: Path) -> None:
        self.environ = environ
        self.workdir = workdir
        self.config_file = workdir / "lbaas.conf"
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text("")
        self.processes: list[subprocess.Popen[bytes]] = []
        self.commands: list[str] = []

    def start(self, command: str, crash_at: str | None = None, host: str | None = None,
              **options: str) -> subprocess.Popen[bytes]:
        """``lbaas <command>``; on ``host``, a second controller host (see
        ``second_host``); ``options`` are more ``LBAAS__...`` settings."""
        env = {**os.environ, "LBAAS__controller_worker__job_poll_interval": "0.05",
               **self.environ, **options}
        if crash_at:
            env["LBAAS_CRASH_AT"] = crash_at
        if host:
            env.update(second_host(self.environ, host))
        log = (self.workdir / f"{command}-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen([str(LBAAS), command, "--config-file", str(self.config_file)],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        self.commands.append(command)
        return process

    def worker(self, crash_at: str | None = None, host: str | None = None
               ) -> subprocess.Popen[bytes]:
        return self.start("worker", crash_at, host)

    def log(self, process: subprocess.Popen[bytes]) -> str:
        index = self.processes.index(process)
        return (self.workdir / f"{self.commands[index]}-{index}.log").read_text(errors="replace")

    def crashed(self, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
        """Wait for the worker to kill itself at its crash point."""
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not reach its crash point:\n{self.log(process)}")
        assert code == -signal.SIGKILL, self.log(process)

    def kill(self, processes: list[subprocess.Popen[bytes]]) -> None:
        """SIGKILL: the controller dies as its host would."""
        for process in processes:
            process.kill()
        for process in processes:
            process.wait()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def populated(topology: Topology, members: bool = True) -> dict[str, Any]:
    """A fully populated load balancer: an HTTP listener, a pool, both backends."""
    pool: dict[str, Any] = {"name": "web", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}
    if members:
        pool["members"] = [{"address": backend.address, "protocol_port": 80,
                            "subnet_id": topology.members.subnet_id}
                           for backend in topology.backends]
    return {"vip_subnet_id": topology.vips.subnet_id,
            "listeners": [{"protocol": "HTTP", "protocol_port": 80, "default_pool": pool}]}


def create(api: Client, topology: Topology, members: bool = True) -> dict[str, Any]:
    response = api.post(LBS, json={"loadbalancer": populated(topology, members)})
    assert response.status_code == 201, response.text
    return response.json()["loadbalancer"]


def active(api: Client, lb_id: str) -> dict[str, Any]:
    return wait_for(lambda: api.get(f"{LBS}/{lb_id}").json()["loadbalancer"],
                    "provisioning_status", "ACTIVE", timeout=CONVERGE)


def arp_answers(topology: Topology, address: str) -> set[str]:
    """The MAC addresses that answer ARP for ``address`` on the client's network within a
    second (``-b``: every probe is broadcast, not only the first, so that every holder of
    the address answers every probe)."""
    result = netns.in_namespace(topology.client, "arping", "-b", "-c", "2", "-w", "1",
                                "-I", "eth0", address)
    return {mac.lower() for mac in re.findall(r"\[([0-9A-Fa-f:]{17})\]", result.stdout)}


def vip_answers(topology: Topology, address: str, timeout: float = 10.0) -> set[str]:
    """``arp_answers``, once someone answers (a new ACTIVE_STANDBY pair's MASTER takes the
    VIP a moment after the load balancer is ACTIVE)."""
    deadline = time.monotonic() + timeout
    while not (answers := arp_answers(topology, address)) and time.monotonic() < deadline:
        pass
    return answers


def host_agent_namespaces(base_path: Path) -> set[int]:
    """The namespaces (inodes) that a thread of this host's host agent is in."""
    supervisor = HostAgentLauncher(base_path, sys.executable)._pid()
    if supervisor is None:
        return set()
    found = set()
    for task in Path(f"/proc/{supervisor}/task").iterdir():
        for child in (task / "children").read_text().split():
            for thread in Path(f"/proc/{child}/task").iterdir():
                with contextlib.suppress(OSError):  # a thread that ended meanwhile
                    found.add(os.stat(thread / "ns" / "net").st_ino)
    return found


def assert_converged(services: service.Services, topology: Topology) -> None:
    """Exactly the amphorae the database names run (a namespace and one agent each),
    every port is held by a live amphora or load balancer, no interface of a released
    port remains, and each live VIP is answered by the one amphora serving it."""
    compute = NetnsComputeDriver(services.settings.haproxy_amphora.base_path)
    with services.db.read() as session:
        live = {a.id: a for a in session.scalars(select(Amphora).where(
            Amphora.status != constants.DELETED))}
        balancers = {lb.id: lb for lb in session.scalars(select(LoadBalancer).where(
            LoadBalancer.provisioning_status != constants.DELETED))}
        held = list(session.scalars(select(Port).where(
            Port.device_owner != registry_ports.OWNER_CONTROLLER)))
    assert compute.instances() == {amphora_id: True for amphora_id in live}
    running = namespaces()
    served = host_agent_namespaces(services.settings.haproxy_amphora.base_path)
    for amphora in live.values():
        assert amphora.compute_id in running
        agents = [pid for pid in compute._namespace_pids(amphora.compute_id)
                  if AGENT_MODULE in _cmdline(pid)]
        if os.stat(f"/run/netns/{amphora.compute_id}").st_ino in served:
            agents.append(-1)  # served by the host agent
        assert len(agents) == 1, f"amphora {amphora.id} runs {len(agents)} agents"
    assert {port.device_id for port in held} <= set(live) | set(balancers)
    for amphora_id in live:
        subnets = [port.subnet_id for port in held if port.device_id == amphora_id]
        assert len(subnets) == len(set(subnets)), f"{amphora_id} holds two ports on a subnet"
    bridges = (services.settings.networking.lb_network_bridge, topology.members.bridge,
               topology.vips.bridge)
    taps = {name for bridge in bridges for name in re.findall(
        r"^\d+: (tap[\w-]+)@", netns.ip("-o", "link", "show", "master", bridge).stdout, re.M)}
    assert taps == {f"tap{port.id[:11]}" for port in held if port.device_id in live}
    for lb in balancers.values():
        serving = [a for a in live.values() if a.load_balancer_id == lb.id
                   and a.status == constants.ALLOCATED]
        macs = {port.mac_address for port in held for a in serving if port.id == a.vrrp_port_id}
        answers = vip_answers(topology, lb.vip_address)
        assert len(answers) == 1 and answers <= macs, (lb.id, answers, macs)


def serves(topology: Topology, lb: dict[str, Any]) -> bool:
    return curl(topology.client, f"http://{lb['vip_address']}/") in ("backend-1", "backend-2")


def amphorae_of(services: service.Services, lb_id: str) -> list[Amphora]:
    with services.db.read() as session:
        return list(session.scalars(select(Amphora).where(
            Amphora.load_balancer_id == lb_id, Amphora.status != constants.DELETED)))


@contextlib.contextmanager
def shared_topology(services: service.Services, workdir: Path) -> Iterator[Topology]:
    """Two backends on a member network and a client on a VIP network, for a whole module
    of tests (each test deletes its own load balancers)."""
    members = new_network(services, "members", MEMBER_CIDR, MEMBER_POOL)
    vips = new_network(services, "vips", VIP_CIDR, VIP_POOL)
    hosts = BackendHosts(workdir)
    client = netns.namespace(f"lbt-client-{netns.short_id()}", vips.bridge, f"{CLIENT_ADDRESS}/24")
    try:
        backends = [hosts.add(members, f"10.240.1.1{i}", f"backend-{i}") for i in (1, 2)]
        yield Topology(members, vips, backends, client.__enter__())
    finally:
        client.__exit__(None, None, None)
        hosts.close()


@contextlib.contextmanager
def module_services(environ: dict[str, str]) -> Iterator[service.Services]:
    """The service on ``environ``'s settings (its schema migrated), for a module of tests;
    whatever they left on the host is removed at the end."""
    services = service.open_services(config.load(environ=environ))
    try:
        yield services
    finally:
        remove_leftovers(services)
        services.db.dispose()
        remove_amphorae_directories(services.settings)
