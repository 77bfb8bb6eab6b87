"""The health manager on real amphorae: operating status follows the backends, stats follow
the traffic, a dead amphora is replaced without any API call, and a storm stops failover."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from lbaas import config, service
from lbaas.db.models import Amphora, Job
from lbaas.drivers.compute.netns import NetnsComputeDriver
from lbaas.health import failover
from lbaas.health.manager import HealthManager
from tests.helpers import wait_for
from tests.helpers.api import wait_lb_active
from tests.helpers.dataplane import build, curl, monitor, wait_until

pytestmark = pytest.mark.root
INTERVAL = 0.5


@pytest.fixture
def settings(settings: config.Settings) -> config.Settings:
    options = settings.health_manager
    options.heartbeat_interval = INTERVAL
    options.heartbeat_timeout = 3
    options.health_check_interval = 0.5
    options.failover_grace_period = 0
    options.failover_threshold = 1
    return settings


@pytest.fixture
def health_manager(dataplane, services: service.Services) -> Iterator[HealthManager]:
    """A health manager next to the worker of ``dataplane`` (as `lbaas up` runs them)."""
    with service.running_health_manager(services) as manager:
        yield manager


def _statuses(client, lb_id: str) -> dict[str, str]:
    lb = client.get(f"/v2/lbaas/loadbalancers/{lb_id}/status").json()["statuses"]["loadbalancer"]
    pool = lb["listeners"][0]["pools"][0]
    return {"lb": lb["operating_status"], "pool": pool["operating_status"],
            **{member["address"]: member["operating_status"] for member in pool["members"]}}


def _amphorae(services, lb_id: str) -> dict[str, str]:
    with services.db.read() as session:
        return {a.id: a.status for a in session.scalars(
            select(Amphora).where(Amphora.load_balancer_id == lb_id))}


def _kill(*amphora_ids: str) -> None:
    """The amphorae die together: every process in their namespaces killed, namespaces gone."""
    namespaces = [f"amphora-{amphora_id}" for amphora_id in amphora_ids]
    pids = [pid for namespace in namespaces for pid in subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True).stdout.split()]
    subprocess.run(["kill", "-9", *pids], check=True)
    for namespace in namespaces:
        NetnsComputeDriver._kill_all(namespace)  # gone already; waits until they are reaped
        subprocess.run(["ip", "netns", "del", namespace], check=True)


def test_operating_status_follows_a_backend_going_down_and_back(
        dataplane, topology, backends, health_manager):
    made = build(dataplane, topology)
    monitor(dataplane, made, url_path="/")
    lb_id = made["lb"]["id"]
    first, second = (backend.address for backend in topology.backends)
    all_online = {"lb": "ONLINE", "pool": "ONLINE", first: "ONLINE", second: "ONLINE"}
    wait_for(lambda: {"s": _statuses(dataplane, lb_id)}, "s", all_online, timeout=20)
    backends.stop("backend-1")
    wait_for(lambda: {"s": _statuses(dataplane, lb_id)}, "s",
             {"lb": "DEGRADED", "pool": "DEGRADED", first: "ERROR", second: "ONLINE"}, timeout=20)
    backends.start("backend-1")
    wait_for(lambda: {"s": _statuses(dataplane, lb_id)}, "s", all_online, timeout=20)


def test_stats_grow_with_traffic(dataplane, topology, health_manager):
    made = build(dataplane, topology)
    path = f"/v2/lbaas/loadbalancers/{made['lb']['id']}/stats"
    wait_for(lambda: {"up": dataplane.get(path).json()["stats"]["total_connections"] == 0},
             "up", True)
    for _ in range(5):
        assert curl(topology.client, made["url"]).startswith("backend-")
    wait_until(lambda: dataplane.get(path).json()["stats"]["total_connections"] >= 5)
    stats = dataplane.get(path).json()["stats"]
    assert stats["bytes_in"] > 0 and stats["bytes_out"] > 0
    for _ in range(3):
        curl(topology.client, made["url"])
    wait_until(lambda: dataplane.get(path).json()["stats"]["total_connections"] >= 8)


def test_a_dead_amphora_is_replaced_and_traffic_resumes_without_any_api_call(
        dataplane, services, topology, health_manager):
    made = build(dataplane, topology)
    lb_id = made["lb"]["id"]
    (old,) = _amphorae(services, lb_id)
    wait_until(lambda: health_manager.counters.snapshot().get("accepted", 0) > 0)
    _kill(old)
    assert curl(topology.client, made["url"]).startswith("failed")
    wait_until(lambda: _amphorae(services, lb_id).get(old) == "DELETED", timeout=60)
    wait_lb_active(dataplane, lb_id)
    wait_until(lambda: curl(topology.client, made["url"]).startswith("backend-"))
    (new,) = (a for a, s in _amphorae(services, lb_id).items() if s == "ALLOCATED")
    assert new != old


def test_a_storm_of_dead_amphorae_stops_failover_until_the_operator_resumes(
        dataplane, services, topology, health_manager):
    made = [build(dataplane, topology, port=port) for port in (80, 81)]
    olds = [next(iter(_amphorae(services, m["lb"]["id"]))) for m in made]
    wait_until(lambda: health_manager.counters.snapshot().get("accepted", 0) >= 2)
    _kill(*olds)
    # Two stale at once is more than failover_threshold (1): nothing is rebuilt.
    wait_until(lambda: all(_amphorae(services, m["lb"]["id"])[a] == "FAILOVER_STOPPED"
                           for m, a in zip(made, olds, strict=True)), timeout=30)
    health_manager.checker.run_once()
    with services.db.read() as session:
        assert session.scalars(select(Job)).all() == []
    assert all(len(_amphorae(services, m["lb"]["id"])) == 1 for m in made)
    resumed = failover.resume(services.db, services.settings)
    assert sorted(resumed.started) == sorted(olds)
    for m, old in zip(made, olds, strict=True):
        wait_until(lambda m=m, old=old: _amphorae(services, m["lb"]["id"]).get(old) == "DELETED",
                   timeout=60)
        wait_lb_active(dataplane, m["lb"]["id"])
        wait_until(lambda m=m: curl(topology.client, m["url"]).startswith("backend-"))
