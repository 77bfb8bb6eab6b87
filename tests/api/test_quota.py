"""Quotas: effective limits, partial updates, reset, defaults, listing, and enforcement."""
from __future__ import annotations

import pytest

from lbaas import config
from tests.helpers import NOOP_DRIVERS, PROJECT, wait_for
from tests.helpers.api import SUBNET, create_lb, fault

QUOTAS = "/v2/lbaas/quotas"
OTHER = "8d2c8c3e5a6b4f0e9c1d2e3f4a5b6c7d"
LIMIT_NAMES = ("loadbalancer", "load_balancer", "listener", "pool", "healthmonitor",
               "health_monitor", "member", "l7policy", "l7rule")


@pytest.fixture
def settings(tmp_path):
    """Defaults that differ per resource, so a test sees which default filled which field."""
    return config.load(environ={
        "LBAAS__DEFAULT__state_path": str(tmp_path), **NOOP_DRIVERS,
        "LBAAS__quotas__default_load_balancer_quota": "10",
        "LBAAS__quotas__default_listener_quota": "20",
        "LBAAS__quotas__default_pool_quota": "30",
        "LBAAS__quotas__default_health_monitor_quota": "40",
        "LBAAS__quotas__default_member_quota": "-1",
        "LBAAS__quotas__default_l7policy_quota": "60",
        "LBAAS__quotas__default_l7rule_quota": "70",
    })


DEFAULTS = {"loadbalancer": 10, "load_balancer": 10, "listener": 20, "pool": 30,
            "healthmonitor": 40, "health_monitor": 40, "member": -1, "l7policy": 60, "l7rule": 70}


def put(client, project, **limits):
    response = client.put(f"{QUOTAS}/{project}", json={"quota": limits})
    assert response.status_code == 202, response.text
    return response.json()["quota"]


def test_project_without_quotas_gets_the_configured_defaults(client):
    quota = client.get(f"{QUOTAS}/{OTHER}").json()["quota"]
    assert quota == {"project_id": OTHER, "tenant_id": OTHER, **DEFAULTS}


def test_default_route_shows_config_defaults_even_when_project_has_its_own(client):
    put(client, OTHER, loadbalancer=3)
    assert client.get(f"{QUOTAS}/{OTHER}/default").json()["quota"] == {
        "project_id": OTHER, "tenant_id": OTHER, **DEFAULTS}
    assert client.get(f"{QUOTAS}/defaults").json()["quota"] == {
        "project_id": "defaults", "tenant_id": "defaults", **DEFAULTS}


def test_partial_update_changes_only_what_was_sent(client):
    quota = put(client, OTHER, listener=5, l7rule=0)
    assert quota == {**DEFAULTS, "project_id": OTHER, "tenant_id": OTHER, "listener": 5, "l7rule": 0}
    quota = put(client, OTHER, pool=7)
    assert quota["listener"] == 5 and quota["pool"] == 7 and quota["l7rule"] == 0
    assert client.get(f"{QUOTAS}/{OTHER}").json()["quota"] == quota


def test_null_resets_one_limit_to_its_default(client):
    put(client, OTHER, listener=5, pool=6)
    quota = put(client, OTHER, listener=None)
    assert quota["listener"] == DEFAULTS["listener"] and quota["pool"] == 6


def test_deprecated_names_are_accepted_and_mirrored(client):
    quota = put(client, OTHER, load_balancer=4, health_monitor=8)
    assert quota["loadbalancer"] == quota["load_balancer"] == 4
    assert quota["healthmonitor"] == quota["health_monitor"] == 8


def test_current_name_wins_over_deprecated_one(client):
    quota = put(client, OTHER, loadbalancer=4, load_balancer=9)
    assert quota["loadbalancer"] == 4


@pytest.mark.parametrize("value", [-2, 2_000_000_001, "many"])
def test_out_of_range_limit_is_rejected(client, value):
    text = fault(client.put(f"{QUOTAS}/{OTHER}", json={"quota": {"member": value}}), 400)
    assert "member" in text and str(value) in text


def test_unlimited_and_maximum_are_accepted(client):
    quota = put(client, OTHER, member=-1, pool=2_000_000_000)
    assert quota["member"] == -1 and quota["pool"] == 2_000_000_000


def test_unknown_quota_attribute_is_rejected(client):
    text = fault(client.put(f"{QUOTAS}/{OTHER}", json={"quota": {"amphora": 1}}), 400)
    assert "amphora" in text


def test_delete_resets_every_limit(client):
    put(client, OTHER, loadbalancer=1, listener=2, l7policy=3)
    response = client.delete(f"{QUOTAS}/{OTHER}")
    assert response.status_code == 202
    assert client.get(f"{QUOTAS}/{OTHER}").json()["quota"] == {"project_id": OTHER, "tenant_id": OTHER,
                                                               **DEFAULTS}


def test_list_shows_only_projects_with_their_own_limits(client):
    assert client.get(QUOTAS).json() == {"quotas": [], "quotas_links": []}
    put(client, OTHER, member=5)
    put(client, PROJECT, pool=None)  # every limit still the default: not listed
    quotas = client.get(QUOTAS).json()["quotas"]
    assert quotas == [{"project_id": OTHER, "tenant_id": OTHER, "member": 5,
                       **{name: None for name in LIMIT_NAMES if name != "member"}}]
    client.delete(f"{QUOTAS}/{OTHER}")
    assert client.get(QUOTAS).json()["quotas"] == []


def test_list_filters_sorts_pages_and_selects_fields(client):
    projects = [f"project-{i}" for i in range(3)]
    for i, project in enumerate(projects):
        put(client, project, loadbalancer=3 - i, member=i)
    by_lb = client.get(QUOTAS, params={"sort": "load_balancer:asc"}).json()["quotas"]
    assert [q["project_id"] for q in by_lb] == list(reversed(projects))
    assert [q["project_id"] for q in client.get(QUOTAS, params={"member": 1}).json()["quotas"]] == \
        ["project-1"]
    page = client.get(QUOTAS, params={"limit": 2}).json()
    assert [q["project_id"] for q in page["quotas"]] == projects[:2]
    assert [link["rel"] for link in page["quotas_links"]] == ["next"]
    rest = client.get(QUOTAS, params={"limit": 2, "marker": "project-1"}).json()
    assert [q["project_id"] for q in rest["quotas"]] == ["project-2"]
    assert client.get(QUOTAS, params={"fields": "project_id"}).json()["quotas"][0] == \
        {"project_id": "project-0"}
    fault(client.get(QUOTAS, params={"bogus": 1}), 400)


def test_quota_of_one_load_balancer_is_enforced_and_freed_by_delete(client):
    put(client, PROJECT, loadbalancer=1)
    lb = create_lb(client)
    text = fault(client.post("/v2/lbaas/loadbalancers",
                             json={"loadbalancer": {"vip_subnet_id": SUBNET}}), 403)
    assert text == "Quota has been met for resources: loadbalancer"
    assert client.delete(f"/v2/lbaas/loadbalancers/{lb['id']}").status_code == 204
    wait_for(lambda: {"code": client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").status_code},
             "code", 404)
    create_lb(client)


def test_quota_of_another_project_does_not_limit_this_one(client):
    put(client, OTHER, loadbalancer=0)
    create_lb(client)
