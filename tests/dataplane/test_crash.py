"""A worker killed for real (SIGKILL, at a crash point) at each step of the create,
member change, delete and failover flows, then another worker: the job is finished as if
the crash had not happened, exactly the amphorae the database names run, no namespace,
process, port or interface is left over, and one amphora answers for the VIP.

The API runs in the test process; the workers are ``lbaas worker`` processes on the same
database. ``LBAAS_CRASH_AT`` makes a worker kill itself when it reaches the named point
(``lbaas.crashpoint``).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lbaas import config, constants, service
from lbaas.api.app import create_app
from lbaas.db.models import Amphora, LoadBalancer, Port
from lbaas.drivers.compute.netns import AGENT_MODULE, NetnsComputeDriver, _cmdline, namespaces
from lbaas.network import ports as registry_ports
from tests.conftest import PROJECT, wait_for
from tests.dataplane import netns
from tests.dataplane.conftest import (
    CLIENT_ADDRESS, MEMBER_CIDR, MEMBER_POOL, VIP_CIDR, VIP_POOL, BackendHosts, Topology, curl,
    dataplane_environ, new_network, remove_leftovers,
)

pytestmark = pytest.mark.root

LBAAS = Path(sys.executable).parent / "lbaas"
LBS = "/v2/lbaas/loadbalancers"
# How long a worker may take to finish a job it took over (a create is about a second).
CONVERGE = 30.0


class Controllers:
    """``lbaas worker`` processes on the test's database; all stopped at the end."""

    def __init__(self, environ: dict[str, str], workdir: Path) -> None:
        self.environ = environ
        self.workdir = workdir
        self.config_file = workdir / "lbaas.conf"
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text("")
        self.processes: list[subprocess.Popen[bytes]] = []

    def worker(self, crash_at: str | None = None, host: str | None = None
               ) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.environ,
               "LBAAS__controller_worker__job_poll_interval": "0.05"}
        if crash_at:
            env["LBAAS_CRASH_AT"] = crash_at
        if host:
            env["LBAAS__DEFAULT__host"] = host
        log = (self.workdir / f"worker-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen([str(LBAAS), "worker", "--config-file", str(self.config_file)],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def log(self, process: subprocess.Popen[bytes]) -> str:
        index = self.processes.index(process)
        return (self.workdir / f"worker-{index}.log").read_text(errors="replace")

    def crashed(self, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
        """Wait for the worker to kill itself at its crash point."""
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not reach its crash point:\n{self.log(process)}")
        assert code == -signal.SIGKILL, self.log(process)

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


@pytest.fixture(scope="module")
def environ(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return dataplane_environ(tmp_path_factory.mktemp("crash"))


@pytest.fixture(scope="module")
def crash_services(environ: dict[str, str]) -> Iterator[service.Services]:
    services = service.open_services(config.load(environ=environ))
    try:
        yield services
    finally:
        remove_leftovers(services)
        services.db.dispose()


@pytest.fixture(scope="module")
def topology(crash_services: service.Services,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    members = new_network(crash_services, "members", MEMBER_CIDR, MEMBER_POOL)
    vips = new_network(crash_services, "vips", VIP_CIDR, VIP_POOL)
    hosts = BackendHosts(tmp_path_factory.mktemp("backends"))
    client = netns.namespace(f"lbt-client-{netns.short_id()}", vips.bridge, f"{CLIENT_ADDRESS}/24")
    try:
        backends = [hosts.add(members, f"10.240.1.1{i}", f"backend-{i}") for i in (1, 2)]
        yield Topology(members, vips, backends, client.__enter__())
    finally:
        client.__exit__(None, None, None)
        hosts.close()


@pytest.fixture(scope="module")
def api(crash_services: service.Services) -> Iterator[TestClient]:
    with TestClient(create_app(crash_services.api_state),
                    headers={"X-Project-Id": PROJECT}) as client:
        yield client


@pytest.fixture
def controllers(environ: dict[str, str], api: TestClient, tmp_path: Path
                ) -> Iterator[Controllers]:
    """Workers for one test; afterwards a clean worker deletes what the test made."""
    made = Controllers(environ, tmp_path)
    try:
        yield made
    finally:
        made.stop()
        cleaner = Controllers(environ, tmp_path / "cleanup")
        cleaner.worker()
        try:
            for lb in api.get(LBS).json()["loadbalancers"]:
                lb_status = wait_for(lambda: api.get(f"{LBS}/{lb['id']}").json()["loadbalancer"],
                                     "provisioning_status", "ACTIVE", timeout=CONVERGE) \
                    if lb["provisioning_status"].startswith("PENDING") else lb
                assert lb_status["provisioning_status"] in ("ACTIVE", "ERROR")
                api.delete(f"{LBS}/{lb['id']}?cascade=true")
                wait_for(lambda: {"code": api.get(f"{LBS}/{lb['id']}").status_code}, "code",
                         404, timeout=CONVERGE)
        finally:
            cleaner.stop()


def populated(topology: Topology, members: bool = True) -> dict[str, Any]:
    """A fully populated load balancer: an HTTP listener, a pool, both backends."""
    pool: dict[str, Any] = {"name": "web", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}
    if members:
        pool["members"] = [{"address": backend.address, "protocol_port": 80,
                            "subnet_id": topology.members.subnet_id}
                           for backend in topology.backends]
    return {"vip_subnet_id": topology.vips.subnet_id,
            "listeners": [{"protocol": "HTTP", "protocol_port": 80, "default_pool": pool}]}


def create(api: TestClient, topology: Topology, members: bool = True) -> dict[str, Any]:
    response = api.post(LBS, json={"loadbalancer": populated(topology, members)})
    assert response.status_code == 201, response.text
    return response.json()["loadbalancer"]


def active(api: TestClient, lb_id: str) -> dict[str, Any]:
    return wait_for(lambda: api.get(f"{LBS}/{lb_id}").json()["loadbalancer"],
                    "provisioning_status", "ACTIVE", timeout=CONVERGE)


def arp_answers(topology: Topology, address: str) -> set[str]:
    """The MAC addresses that answer ARP for ``address`` on the client's network."""
    result = netns.in_namespace(topology.client, "arping", "-c", "3", "-w", "3", "-I", "eth0",
                                address)
    return {mac.lower() for mac in re.findall(r"\[([0-9A-Fa-f:]{17})\]", result.stdout)}


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
    assert compute.instances() == set(live)
    running = namespaces()
    for amphora in live.values():
        assert amphora.compute_id in running
        agents = [pid for pid in compute._namespace_pids(amphora.compute_id)
                  if AGENT_MODULE in _cmdline(pid)]
        assert len(agents) == 1, f"amphora {amphora.id} runs {len(agents)} agents"
    assert {port.device_id for port in held} <= set(live) | set(balancers)
    for amphora_id in live:
        subnets = [port.subnet_id for port in held if port.device_id == amphora_id]
        assert len(subnets) == len(set(subnets)), f"amphora {amphora_id} holds two ports on a subnet"
    bridges = (services.settings.networking.lb_network_bridge, topology.members.bridge,
               topology.vips.bridge)
    taps = {name for bridge in bridges for name in re.findall(
        r"^\d+: (tap[\w-]+)@", netns.ip("-o", "link", "show", "master", bridge).stdout, re.M)}
    assert taps == {f"tap{port.id[:11]}" for port in held if port.device_id in live}
    for lb in balancers.values():
        serving = [a for a in live.values() if a.load_balancer_id == lb.id
                   and a.status == constants.ALLOCATED]
        macs = {port.mac_address for port in held for a in serving if port.id == a.vrrp_port_id}
        answers = arp_answers(topology, lb.vip_address)
        assert len(answers) == 1 and answers <= macs, (lb.id, answers, macs)


def serves(topology: Topology, lb: dict[str, Any]) -> bool:
    return curl(topology.client, f"http://{lb['vip_address']}/") in ("backend-1", "backend-2")


def amphorae_of(services: service.Services, lb_id: str) -> list[Amphora]:
    with services.db.read() as session:
        return list(session.scalars(select(Amphora).where(
            Amphora.load_balancer_id == lb_id, Amphora.status != constants.DELETED)))


def recovered(api: TestClient, controllers: Controllers, services: service.Services,
              topology: Topology, lb_id: str) -> dict[str, Any]:
    """A new worker finishes the job: the load balancer ACTIVE, serving, converged."""
    controllers.worker()
    lb = active(api, lb_id)
    assert serves(topology, lb)
    assert_converged(services, topology)
    return lb


CREATE_POINTS = [
    "create_load_balancer:allocate-vip", "create_load_balancer:build-amphorae",
    "create_load_balancer:build-amphorae/port-allocated", "netns:namespace-added",
    "netns:management-plugged", "create_load_balancer:build-amphorae/instance-built",
    "create_load_balancer:plug-vip", "create_load_balancer:plug-vip/port-allocated",
    "create_load_balancer:plug-member-networks", "create_load_balancer:update-amphorae",
    "create_load_balancer:settle-tree",
]


@pytest.mark.parametrize("point", CREATE_POINTS)
def test_create_finishes_after_the_worker_is_killed(point, api, controllers, topology,
                                                    crash_services):
    crashing = controllers.worker(crash_at=point)
    lb = create(api, topology)
    controllers.crashed(crashing)
    assert api.get(f"{LBS}/{lb['id']}").json()["loadbalancer"]["provisioning_status"] \
        == "PENDING_CREATE"
    recovered(api, controllers, crash_services, topology, lb["id"])


CHANGE_POINTS = [
    "change:plug-member-networks", "change:plug-member-networks/port-allocated",
    "change:update-amphorae", "change:settle",
]


@pytest.mark.parametrize("point", CHANGE_POINTS)
def test_member_change_finishes_after_the_worker_is_killed(point, api, controllers, topology,
                                                           crash_services):
    """The first member on a new subnet: the amphora is plugged into it, then serves it."""
    crashing = controllers.worker(crash_at=point)
    lb = active(api, create(api, topology, members=False)["id"])
    pool_id = lb["pools"][0]["id"]
    response = api.post(f"/v2/lbaas/pools/{pool_id}/members", json={"member": {
        "address": topology.backends[0].address, "protocol_port": 80,
        "subnet_id": topology.members.subnet_id}})
    assert response.status_code == 201, response.text
    controllers.crashed(crashing)
    recovered(api, controllers, crash_services, topology, lb["id"])
    member = api.get(f"/v2/lbaas/pools/{pool_id}/members/{response.json()['member']['id']}")
    assert member.json()["member"]["provisioning_status"] == "ACTIVE"


DELETE_POINTS = [
    "delete_load_balancer:delete-children", "delete_load_balancer:delete-amphorae",
    "delete_load_balancer:release-vip", "delete_load_balancer:mark-lb-deleted",
]


@pytest.mark.parametrize("point", DELETE_POINTS)
def test_delete_finishes_after_the_worker_is_killed(point, api, controllers, topology,
                                                    crash_services):
    crashing = controllers.worker(crash_at=point)
    lb = active(api, create(api, topology)["id"])
    assert api.delete(f"{LBS}/{lb['id']}?cascade=true").status_code == 204
    controllers.crashed(crashing)
    controllers.worker()
    wait_for(lambda: {"code": api.get(f"{LBS}/{lb['id']}").status_code}, "code", 404,
             timeout=CONVERGE)
    assert amphorae_of(crash_services, lb["id"]) == []
    assert_converged(crash_services, topology)
    assert arp_answers(topology, lb["vip_address"]) == set()


LB_FAILOVER_POINTS = [
    "failover_load_balancer:replace-amphorae", "failover-amphora-*:retire-amphora",
    "failover-amphora-*:build-amphorae", "failover-amphora-*:build-amphorae/instance-built",
    "failover-amphora-*:plug-vip", "failover-amphora-*:update-amphorae",
    "failover-amphora-*:remove-retired-amphorae", "failover-amphora-*:take-vip",
    "failover_load_balancer:build-amphorae", "failover_load_balancer:settle",
]


@pytest.mark.parametrize("point", LB_FAILOVER_POINTS)
def test_load_balancer_failover_finishes_after_the_worker_is_killed(
        point, api, controllers, topology, crash_services):
    crashing = controllers.worker(crash_at=point)
    lb = active(api, create(api, topology)["id"])
    (old,) = amphorae_of(crash_services, lb["id"])
    assert api.put(f"{LBS}/{lb['id']}/failover").status_code == 202
    controllers.crashed(crashing)
    recovered(api, controllers, crash_services, topology, lb["id"])
    (new,) = amphorae_of(crash_services, lb["id"])
    assert new.id != old.id


AMPHORA_FAILOVER_POINTS = [
    "failover_amphora:retire-amphora", "failover_amphora:build-amphorae",
    "failover_amphora:plug-vip/port-allocated", "failover_amphora:plug-member-networks",
    "failover_amphora:update-amphorae", "failover_amphora:remove-retired-amphorae",
    "failover_amphora:take-vip", "failover_amphora:settle",
]


@pytest.mark.parametrize("point", AMPHORA_FAILOVER_POINTS)
def test_amphora_failover_finishes_after_the_worker_is_killed(
        point, api, controllers, topology, crash_services):
    crashing = controllers.worker(crash_at=point)
    lb = active(api, create(api, topology)["id"])
    (old,) = amphorae_of(crash_services, lb["id"])
    assert api.put(f"/v2/octavia/amphorae/{old.id}/failover").status_code == 202
    controllers.crashed(crashing)
    recovered(api, controllers, crash_services, topology, lb["id"])
    (new,) = amphorae_of(crash_services, lb["id"])
    assert new.id != old.id
