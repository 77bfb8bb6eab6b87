"""A worker killed for real (SIGKILL, at a crash point) at each step of the create,
member change, delete and failover flows, then another worker: the job is finished as if
the crash had not happened, exactly the amphorae the database names run, no namespace,
process, port or interface is left over, and one amphora answers for the VIP.

The API runs in the test process; the workers are ``lbaas worker`` processes on the same
database. ``LBAAS_CRASH_AT`` makes a worker kill itself when it reaches the named point
(``lbaas.crashpoint``). The points chosen are the steps after which a crash leaves a
state of its own (a row without an instance, a namespace without its interface or agent,
a port without its interface, a configuration not pushed, an old amphora not yet
removed or a VIP not yet taken, statuses not yet settled); the other steps leave one of
these states again.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lbaas import service
from lbaas.api.app import create_app
from lbaas.db.models import Job
from tests.dataplane.controllers import (
    CONVERGE,
    LBAAS,
    LBS,
    Controllers,
    active,
    amphorae_of,
    arp_answers,
    assert_converged,
    create,
    module_services,
    populated,
    reserve_second_host,
    serves,
    shared_topology,
)
from tests.helpers import PROJECT, wait_for
from tests.helpers.dataplane import Topology, dataplane_environ
from tests.helpers.openapi import checked

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def environ(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The module's settings, with room for a second controller host."""
    return reserve_second_host(dataplane_environ(tmp_path_factory.mktemp("crash")))


@pytest.fixture(scope="module")
def crash_services(environ: dict[str, str]) -> Iterator[service.Services]:
    with module_services(environ) as services:
        yield services


@pytest.fixture(scope="module")
def topology(crash_services: service.Services,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    with shared_topology(crash_services, tmp_path_factory.mktemp("backends")) as made:
        yield made


@pytest.fixture(scope="module")
def api(crash_services: service.Services) -> Iterator[TestClient]:
    with checked(TestClient(create_app(crash_services.api_state),
                            headers={"X-Project-Id": PROJECT})) as client:
        yield client


@pytest.fixture
def controllers(environ: dict[str, str], api: TestClient, tmp_path: Path
                ) -> Iterator[Controllers]:
    """Workers for one test; afterwards a live one (the test's last, else a new one)
    deletes what the test made."""
    made = Controllers(environ, tmp_path)
    try:
        yield made
    finally:
        try:
            if not made.processes or made.processes[-1].poll() is not None:
                made.worker()
            for lb in api.get(LBS).json()["loadbalancers"]:
                if lb["provisioning_status"].startswith("PENDING"):
                    lb = wait_for(lambda lb=lb: api.get(f"{LBS}/{lb['id']}").json()["loadbalancer"],
                                  "provisioning_status", "ACTIVE", timeout=CONVERGE)
                api.delete(f"{LBS}/{lb['id']}?cascade=true")
                wait_for(lambda lb=lb: {"code": api.get(f"{LBS}/{lb['id']}").status_code}, "code",
                         404, timeout=CONVERGE)
        finally:
            made.stop()


def recovered(api: TestClient, controllers: Controllers, services: service.Services,
              topology: Topology, lb_id: str) -> dict[str, Any]:
    """A new worker finishes the job: the load balancer ACTIVE, serving, converged."""
    controllers.worker()
    lb = active(api, lb_id)
    assert serves(topology, lb)
    assert_converged(services, topology)
    return lb


CREATE_POINTS = [
    "create_load_balancer:build-amphorae", "create_load_balancer:build-amphorae/port-allocated",
    "netns:namespace-added", "netns:management-plugged",
    "create_load_balancer:build-amphorae/instance-built", "create_load_balancer:plug-vip",
    "create_load_balancer:plug-vip/port-allocated", "create_load_balancer:update-amphorae",
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
    "change:plug-member-networks/port-allocated", "change:update-amphorae", "change:settle",
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
    "delete_load_balancer:mark-lb-deleted",
]


@pytest.mark.parametrize("point", DELETE_POINTS)
def test_delete_finishes_after_the_worker_is_killed(point, api, controllers, topology,
                                                    crash_services):
    crashing = controllers.worker(crash_at=point)
    lb = active(api, create(api, topology)["id"])
    assert api.delete(f"{LBS}/{lb['id']}?cascade=true").status_code == 204
    controllers.crashed(crashing)
    controllers.worker()
    wait_for(lambda lb=lb: {"code": api.get(f"{LBS}/{lb['id']}").status_code}, "code", 404,
             timeout=CONVERGE)
    assert amphorae_of(crash_services, lb["id"]) == []
    assert_converged(crash_services, topology)
    assert arp_answers(topology, lb["vip_address"]) == set()


FAILOVER_POINTS = [
    *(("loadbalancer", point) for point in (
        "failover-amphora-*:build-amphorae", "failover-amphora-*:build-amphorae/instance-built",
        "failover-amphora-*:plug-vip", "failover-amphora-*:update-amphorae",
        "failover-amphora-*:remove-retired-amphorae", "failover-amphora-*:take-vip",
        "failover_load_balancer:settle")),
    *(("amphora", point) for point in (
        "failover_amphora:build-amphorae", "failover_amphora:plug-vip/port-allocated",
        "failover_amphora:plug-member-networks", "failover_amphora:remove-retired-amphorae",
        "failover_amphora:take-vip")),
]


@pytest.mark.parametrize(("kind", "point"), FAILOVER_POINTS)
def test_failover_finishes_after_the_worker_is_killed(kind, point, api, controllers, topology,
                                                      crash_services):
    """The load balancer's failover (``PUT .../loadbalancers/{id}/failover``) and one
    amphora's (``PUT /v2/octavia/amphorae/{id}/failover``, as the health manager asks)."""
    crashing = controllers.worker(crash_at=point)
    lb = active(api, create(api, topology)["id"])
    (old,) = amphorae_of(crash_services, lb["id"])
    path = (f"{LBS}/{lb['id']}/failover" if kind == "loadbalancer"
            else f"/v2/octavia/amphorae/{old.id}/failover")
    assert api.put(path).status_code == 202
    controllers.crashed(crashing)
    recovered(api, controllers, crash_services, topology, lb["id"])
    (new,) = amphorae_of(crash_services, lb["id"])
    assert new.id != old.id


@pytest.fixture(scope="module")
def active_standby(api: TestClient) -> str:
    """A flavor whose load balancers are ACTIVE_STANDBY pairs."""
    profile = api.post("/v2/lbaas/flavorprofiles", json={"flavorprofile": {
        "name": "pair", "provider_name": "amphora",
        "flavor_data": '{"loadbalancer_topology": "ACTIVE_STANDBY"}'}})
    assert profile.status_code == 201, profile.text
    flavor = api.post("/v2/lbaas/flavors", json={"flavor": {
        "name": "pair", "flavor_profile_id": profile.json()["flavorprofile"]["id"]}})
    assert flavor.status_code == 201, flavor.text
    return flavor.json()["flavor"]["id"]


PAIR_POINTS = [
    "create_load_balancer:configure-vrrp", "failover-amphora-*:hand-over-vip",
    "failover-amphora-*:stop-retired-vrrp", "failover-amphora-*:remove-retired-amphorae",
    "failover-amphora-*:configure-vrrp",
]


@pytest.mark.parametrize("point", PAIR_POINTS)
def test_active_standby_create_and_failover_finish_after_the_worker_is_killed(
        point, api, controllers, topology, crash_services, active_standby):
    """A pair: after the crash both amphorae run and exactly one (the MASTER) answers."""
    crashing = controllers.worker(crash_at=point)
    body = {**populated(topology), "flavor_id": active_standby}
    response = api.post(LBS, json={"loadbalancer": body})
    assert response.status_code == 201, response.text
    lb_id = response.json()["loadbalancer"]["id"]
    if point.startswith("failover"):
        active(api, lb_id)
        assert api.put(f"{LBS}/{lb_id}/failover").status_code == 202
    controllers.crashed(crashing)
    recovered(api, controllers, crash_services, topology, lb_id)
    assert len(amphorae_of(crash_services, lb_id)) == 2


def test_a_live_worker_on_another_host_takes_a_killed_workers_job_over(
        api, controllers, topology, crash_services):
    """Not a restart: a second controller's worker, alive all along, takes the job over
    once the dead worker's lease runs out (seconds, not minutes)."""
    crashing = controllers.worker(crash_at="create_load_balancer:plug-vip")
    lb = create(api, topology)
    wait_for(lambda: {"owner": _job_owner(crash_services)}, "owner",
             crash_services.settings.DEFAULT.host, timeout=CONVERGE)
    controllers.worker(host="ctl-b")
    controllers.crashed(crashing)
    lb = active(api, lb["id"])
    assert serves(topology, lb)
    assert_converged(crash_services, topology)


def _job_owner(services: service.Services) -> str | None:
    with services.db.read() as session:
        owner = session.scalar(select(Job.lease_owner))
    return owner and owner.split(":")[0]


def test_all_in_one_service_killed_mid_create_finishes_it_after_a_restart(
        api, environ, tmp_path, topology, crash_services):
    """``lbaas up`` (API, worker, health manager, housekeeping in one process) killed while
    it builds an amphora, started again: the load balancer is ACTIVE at once, not after a
    lease: the new process takes back the jobs of the dead one on its host."""
    port = _free_port()
    env = {**os.environ, **environ, "LBAAS__api_settings__bind_port": str(port)}
    config_file = tmp_path / "lbaas.conf"
    config_file.write_text("")
    command = [str(LBAAS), "up", "--config-file", str(config_file)]
    log = (tmp_path / "up.log").open("wb")
    crashing = subprocess.Popen(command, env={**env, "LBAAS_CRASH_AT": "netns:management-plugged"},
                                stdout=log, stderr=subprocess.STDOUT)
    restarted = None
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_listening(url)
        with httpx.Client(base_url=url, headers={"X-Project-Id": PROJECT}) as client:
            response = client.post(LBS, json={"loadbalancer": populated(topology)})
            assert response.status_code == 201, response.text
            lb_id = response.json()["loadbalancer"]["id"]
            assert crashing.wait(CONVERGE) == -signal.SIGKILL
            restarted = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            _wait_listening(url)
            started = time.monotonic()
            lb = active(api, lb_id)
            assert time.monotonic() - started < crash_services.settings.controller_worker \
                .job_lease_seconds + CONVERGE
            assert serves(topology, lb)
            assert_converged(crash_services, topology)
            client.delete(f"{LBS}/{lb_id}?cascade=true")
            wait_for(lambda: {"code": api.get(f"{LBS}/{lb_id}").status_code}, "code", 404,
                     timeout=CONVERGE)
    finally:
        for process in (crashing, restarted):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_listening(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            assert time.monotonic() < deadline, f"nothing listens on {url}"
            time.sleep(0.1)
