"""ACTIVE_STANDBY, anti-affinity and failover flows with the no-op drivers."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from lbaas import config
from lbaas.db.models import Amphora
from tests.helpers import NOOP_DRIVERS, wait_for
from tests.helpers.api import SUBNET, create_lb, wait_lb_active


@pytest.fixture
def settings(tmp_path, request) -> config.Settings:
    extra = getattr(request, "param", {})
    return config.load(environ={
        "LBAAS__DEFAULT__state_path": str(tmp_path), **NOOP_DRIVERS,
        "LBAAS__controller_worker__loadbalancer_topology": "ACTIVE_STANDBY", **extra})


def amphorae(services, lb_id: str, *statuses: str) -> list[Amphora]:
    with services.db.read() as session:
        rows = session.scalars(select(Amphora).where(Amphora.load_balancer_id == lb_id)
                               .order_by(Amphora.role.desc())).all()
    return [row for row in rows if not statuses or row.status in statuses]


def test_pair_is_a_master_and_a_backup_with_vrrp_fields(client, services):
    lb = create_lb(client)
    master, backup = amphorae(services, lb["id"])
    assert (master.role, master.vrrp_priority, backup.role, backup.vrrp_priority) == \
        ("MASTER", 100, "BACKUP", 90)
    assert master.vrrp_interface and master.vrrp_id == 1 and master.vrrp_ip != backup.vrrp_ip
    assert master.ha_ip == backup.ha_ip == lb["vip_address"]


def create_failing(client) -> str:
    """POST a load balancer whose create flow is to fail; its id once it is ERROR."""
    response = client.post("/v2/lbaas/loadbalancers",
                           json={"loadbalancer": {"vip_subnet_id": SUBNET}})
    lb_id = response.json()["loadbalancer"]["id"]
    wait_for(lambda: client.get(f"/v2/lbaas/loadbalancers/{lb_id}").json()["loadbalancer"],
             "provisioning_status", "ERROR")
    return lb_id


def broken(*_args, **_kwargs):
    raise RuntimeError("compute is down")


ONE_HOST = {"LBAAS__nova__enable_anti_affinity": "true", "LBAAS__compute__hosts": "h1"}
TWO_HOSTS = {"LBAAS__nova__enable_anti_affinity": "true", "LBAAS__compute__hosts": "h1, h2"}


@pytest.mark.parametrize("settings", [ONE_HOST], indirect=True)
def test_anti_affinity_on_one_host_fails_the_create_and_leaves_nothing(client, services, caplog):
    lb_id = create_failing(client)
    assert amphorae(services, lb_id) == []
    assert "List another host in [compute] hosts" in caplog.text


@pytest.mark.parametrize("settings", [TWO_HOSTS], indirect=True)
def test_anti_affinity_puts_the_pair_on_two_hosts_also_after_failover(client, services):
    lb = create_lb(client)
    assert sorted(a.cached_zone for a in amphorae(services, lb["id"])) == ["h1", "h2"]
    assert client.put(f"/v2/lbaas/loadbalancers/{lb['id']}/failover").status_code == 202
    wait_lb_active(client, lb["id"])
    live = amphorae(services, lb["id"], "ALLOCATED")
    assert sorted(a.cached_zone for a in live) == ["h1", "h2"]


@pytest.mark.parametrize("settings", [TWO_HOSTS], indirect=True)
def test_the_amphora_api_shows_the_pairs_vrrp_id_and_zones(client):
    """vrrp_id is a number for both amphorae of a pair; with [compute] hosts listed, each
    amphora's failure domain is its cached_zone."""
    lb = create_lb(client)
    pair = client.get("/v2/octavia/amphorae", params={"loadbalancer_id": lb["id"]}).json()["amphorae"]
    assert sorted((a["role"], a["vrrp_id"], a["vrrp_priority"]) for a in pair) == [
        ("BACKUP", 1, 90), ("MASTER", 1, 100)]
    assert sorted(a["cached_zone"] for a in pair) == ["h1", "h2"]


def test_without_failure_domains_no_zone_applies(client):
    lb = create_lb(client)
    pair = client.get("/v2/octavia/amphorae", params={"loadbalancer_id": lb["id"]}).json()["amphorae"]
    assert [a["cached_zone"] for a in pair] == [None, None]
    shown = client.get(f"/v2/octavia/amphorae/{pair[0]['id']}").json()["amphora"]
    assert shown["cached_zone"] is None and shown["vrrp_id"] == 1


def test_load_balancer_failover_replaces_both_backup_first(client, services, drivers):
    lb = create_lb(client)
    old = {a.role: a.id for a in amphorae(services, lb["id"])}
    removed: list[str] = []  # the no-op compute driver's instance ids are the amphora ids
    delete = drivers.compute.delete
    drivers.compute.delete = lambda compute_id, host=None: (removed.append(compute_id),
                                                            delete(compute_id, host))
    assert client.put(f"/v2/lbaas/loadbalancers/{lb['id']}/failover").status_code == 202
    wait_lb_active(client, lb["id"])
    assert removed == [old["BACKUP"], old["MASTER"]]
    live = amphorae(services, lb["id"], "ALLOCATED")
    assert sorted(a.role for a in live) == ["BACKUP", "MASTER"]
    assert not {a.id for a in live} & set(old.values())


def test_failed_failover_leaves_error_and_the_old_amphora_in_place(client, services, drivers,
                                                                     caplog):
    lb = create_lb(client)
    before = {a.id for a in amphorae(services, lb["id"], "ALLOCATED")}
    drivers.compute.build = broken
    assert client.put(f"/v2/lbaas/loadbalancers/{lb['id']}/failover").status_code == 202
    wait_for(lambda: client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"],
             "provisioning_status", "ERROR")
    assert {a.id for a in amphorae(services, lb["id"], "ALLOCATED")} == before
    assert len(amphorae(services, lb["id"])) == 2  # the failed replacement's row is gone
    assert "compute is down" in caplog.text


def test_amphora_failover_job_replaces_only_that_amphora(client, services):
    from lbaas.controller import jobs
    from lbaas.db import status
    lb = create_lb(client)
    master, backup = amphorae(services, lb["id"])
    with services.db.write() as session:
        assert status.test_and_set(session, lb["id"], "PENDING_UPDATE")
        jobs.enqueue(session, "failover_amphora", lb_id=lb["id"], amphora_id=master.id)
    services.wakeup.notify()
    wait_lb_active(client, lb["id"])
    live = amphorae(services, lb["id"], "ALLOCATED")
    assert backup.id in {a.id for a in live} and master.id not in {a.id for a in live}
    assert sorted(a.role for a in live) == ["BACKUP", "MASTER"]


def test_failover_of_a_load_balancer_left_in_error_builds_its_pair(client, services, drivers):
    build = drivers.compute.build
    drivers.compute.build = broken
    lb_id = create_failing(client)
    assert amphorae(services, lb_id) == []
    drivers.compute.build = build
    assert client.put(f"/v2/lbaas/loadbalancers/{lb_id}/failover").status_code == 202
    wait_lb_active(client, lb_id)
    assert sorted(a.role for a in amphorae(services, lb_id, "ALLOCATED")) == ["BACKUP", "MASTER"]
