"""ACTIVE_STANDBY on real amphorae: keepalived moves the VIP, failovers rebuild amphorae."""
from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from lbaas import config
from lbaas.db.models import Port
from lbaas.drivers.compute.netns import namespace_of
from tests.dataplane import netns
from tests.helpers import wait_for
from tests.helpers.dataplane import (
    assert_nothing_left,
    balanced,
    build,
    crash,
    curl,
    fail_over,
    live_amphorae,
    vip_holders,
    wait_until,
)

pytestmark = pytest.mark.root

ANSWERS = ("backend-1", "backend-2")


@pytest.fixture
def settings(settings: config.Settings, request) -> config.Settings:
    """The data-plane settings with ACTIVE_STANDBY (or the topology a test passes) and the
    test's [compute] / [nova] options."""
    options = {"topology": "ACTIVE_STANDBY", **getattr(request, "param", {})}
    settings.controller_worker.loadbalancer_topology = options.pop("topology")
    for (section, option), value in options.items():
        setattr(getattr(settings, section), option, value)
    return settings










def serves(topology, url: str) -> bool:
    return curl(topology.client, url, "--max-time", "1") in ANSWERS


def test_pair_serves_through_the_vip_held_by_the_master(dataplane, topology, services, drivers):
    made = build(dataplane, topology)
    assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}
    wait_until(lambda: len(vip_holders(services, drivers, made["lb"])) == 1)
    assert [a.role for a in vip_holders(services, drivers, made["lb"])] == ["MASTER"]


def test_master_crash_moves_vip_to_backup_and_failover_restores_the_pair(
        dataplane, topology, services, drivers):
    made = build(dataplane, topology)
    # On a busy machine the BACKUP's down timer may run out first, and the MASTER takes
    # the VIP from it a moment later (it preempts): crash the MASTER once it holds it.
    wait_until(lambda: [a.role for a in vip_holders(services, drivers, made["lb"])]
               == ["MASTER"])
    master = vip_holders(services, drivers, made["lb"])[0]
    crash(master)
    wait_until(lambda: serves(topology, made["url"]), timeout=10)
    assert [a.role for a in vip_holders(services, drivers, made["lb"])] == ["BACKUP"]
    assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}

    fail_over(dataplane, made["lb"]["id"])
    live = live_amphorae(services, made["lb"]["id"])
    assert sorted(a.role for a in live) == ["BACKUP", "MASTER"] and master.id not in {a.id for a in live}
    assert len(vip_holders(services, drivers, made["lb"])) == 1
    assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}
    _assert_nothing_left_of(services, master.id)


def _assert_nothing_left_of(services, amphora_id: str) -> None:
    """The replaced amphora's namespace, directory and ports are gone."""
    assert namespace_of(amphora_id) not in netns.ip("netns", "list").stdout
    assert not (services.settings.haproxy_amphora.base_path / amphora_id).exists()
    with services.db.read() as session:
        assert not session.scalars(select(Port).where(Port.device_id == amphora_id)).all()


def test_haproxy_stopping_on_the_master_moves_the_vip(dataplane, topology, services, drivers):
    services.settings.keepalived_vrrp.vrrp_check_interval = 1
    made = build(dataplane, topology)
    wait_until(lambda: len(vip_holders(services, drivers, made["lb"])) == 1)
    master = vip_holders(services, drivers, made["lb"])[0]
    for pid in netns.ip("netns", "pids", namespace_of(master.id)).stdout.split():
        with contextlib.suppress(FileNotFoundError):  # a process that was over at once
            if Path(f"/proc/{pid}/comm").read_text().strip() == "haproxy":
                subprocess.run(["kill", "-9", pid], check=False)
    wait_until(lambda: [a.role for a in vip_holders(services, drivers, made["lb"])] == ["BACKUP"],
               timeout=15)
    assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}


@pytest.mark.parametrize("settings", [{("nova", "enable_anti_affinity"): True}], indirect=True)
def test_anti_affinity_with_one_host_fails_the_create_cleanly(dataplane, topology, services,
                                                              drivers):
    built: list[str] = []
    build_amphora = drivers.compute.build

    def recording_build(amphora_id, **kwargs):
        built.append(amphora_id)
        return build_amphora(amphora_id, **kwargs)
    drivers.compute.build = recording_build
    response = dataplane.post("/v2/lbaas/loadbalancers", json={
        "loadbalancer": {"vip_subnet_id": topology.vips.subnet_id}})
    lb_path = f"/v2/lbaas/loadbalancers/{response.json()['loadbalancer']['id']}"
    wait_for(lambda: dataplane.get(lb_path).json()["loadbalancer"], "provisioning_status", "ERROR")
    assert len(built) == 1  # the MASTER was built, then removed; no BACKUP could be placed
    assert_nothing_left(services, built, [])


@pytest.mark.parametrize("settings", [{("nova", "enable_anti_affinity"): True,
                                       ("compute", "hosts"): ["rack-1", "rack-2"]}], indirect=True)
def test_anti_affinity_with_two_hosts_places_the_pair_apart(dataplane, topology, services):
    made = build(dataplane, topology)
    assert sorted(a.cached_zone for a in live_amphorae(services, made["lb"]["id"])) == \
        ["rack-1", "rack-2"]
    assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}


@pytest.mark.parametrize("settings", [{"topology": "SINGLE"}], indirect=True)
def test_single_failover_replaces_the_amphora_and_traffic_resumes(dataplane, topology, services):
    made = build(dataplane, topology)
    [old] = live_amphorae(services, made["lb"]["id"])
    fail_over(dataplane, made["lb"]["id"])
    [new] = live_amphorae(services, made["lb"]["id"])
    assert new.id != old.id and new.role == "STANDALONE"
    wait_until(lambda: serves(topology, made["url"]))
    assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}
    _assert_nothing_left_of(services, old.id)


def test_failed_failover_leaves_error_and_the_pair_serving(dataplane, topology, services, drivers):
    made = build(dataplane, topology)
    before = {a.id for a in live_amphorae(services, made["lb"]["id"])}

    def broken(*_args, **_kwargs):
        raise RuntimeError("compute is down")
    drivers.compute.build = broken
    path = f"/v2/lbaas/loadbalancers/{made['lb']['id']}"
    assert dataplane.put(f"{path}/failover").status_code == 202
    wait_for(lambda: dataplane.get(path).json()["loadbalancer"], "provisioning_status", "ERROR")
    assert {a.id for a in live_amphorae(services, made["lb"]["id"])} == before
    assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}
