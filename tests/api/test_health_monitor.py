"""Health monitors: create with the type matrix and defaults, show, list, update, delete."""
from __future__ import annotations

import uuid

import pytest

from tests.helpers import PROJECT, wait_for
from tests.helpers.api import (
    amphora_updates_held,
    create_lb,
    create_member,
    create_pool,
    fault,
    wait_active,
    wait_gone,
    wait_lb_active,
)

HMS = "/v2/lbaas/healthmonitors"


@pytest.fixture
def lb(client):
    return create_lb(client)


@pytest.fixture
def pool(client, lb):
    return create_pool(client, lb["id"])


def post_hm(client, pool_id: str, hm_type: str = "HTTP", /, **fields):
    """POST a monitor with small valid timings; ``fields`` add to or override the body."""
    body = {"pool_id": pool_id, "type": hm_type, "delay": 5, "timeout": 3, "max_retries": 2,
            **fields}
    return client.post(HMS, json={"healthmonitor": body})


def create_hm(client, pool_id: str, hm_type: str = "HTTP", /, **fields) -> dict:
    response = post_hm(client, pool_id, hm_type, **fields)
    assert response.status_code == 201, response.text
    return wait_active(client, f"{HMS}/{response.json()['healthmonitor']['id']}", "healthmonitor")


def test_http_monitor_gets_upstream_defaults_and_goes_online(client, lb, pool):
    response = post_hm(client, pool["id"], name="web-check", tags=["t"])
    assert response.status_code == 201
    hm = response.json()["healthmonitor"]
    assert (hm["provisioning_status"], hm["operating_status"]) == ("PENDING_CREATE", "OFFLINE")
    assert (hm["http_method"], hm["url_path"], hm["expected_codes"]) == ("GET", "/", "200")
    assert (hm["delay"], hm["timeout"], hm["max_retries"], hm["max_retries_down"]) == (5, 3, 2, 3)
    assert hm["pools"] == [{"id": pool["id"]}]
    assert hm["project_id"] == PROJECT
    assert (hm["name"], hm["tags"], hm["admin_state_up"]) == ("web-check", ["t"], True)
    assert hm["http_version"] is None and hm["domain_name"] is None
    active = wait_active(client, f"{HMS}/{hm['id']}", "healthmonitor")
    assert active["operating_status"] == "ONLINE"
    wait_lb_active(client, lb["id"])
    assert client.get(f"/v2/lbaas/pools/{pool['id']}").json()["pool"]["healthmonitor_id"] \
        == hm["id"]


def test_a_disabled_monitor_is_offline_once_active(client, lb, pool):
    """As upstream's MarkHealthMonitorActiveInDB: ONLINE only while admin_state_up."""
    hm = create_hm(client, pool["id"], admin_state_up=False)
    assert (hm["admin_state_up"], hm["operating_status"]) == (False, "OFFLINE")
    path = f"{HMS}/{hm['id']}"
    for enabled, operating in ((True, "ONLINE"), (False, "OFFLINE")):
        response = client.put(path, json={"healthmonitor": {"admin_state_up": enabled}})
        assert response.status_code == 200, response.text
        wait_lb_active(client, lb["id"])
        assert wait_active(client, path, "healthmonitor")["operating_status"] == operating


def test_a_disabled_monitor_of_a_fully_populated_create_is_offline(client):
    response = client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "vip_subnet_id": "8c1a4e5c-9b1f-4d5c-8f5e-0a6f3e2b9c10", "pools": [{
            "name": "app", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
            "healthmonitor": {"type": "TCP", "delay": 5, "timeout": 3, "max_retries": 2,
                              "admin_state_up": False}}]}})
    assert response.status_code == 201, response.text
    hm_id = response.json()["loadbalancer"]["pools"][0]["healthmonitor"]["id"]
    wait_lb_active(client, response.json()["loadbalancer"]["id"])
    assert client.get(f"{HMS}/{hm_id}").json()["healthmonitor"]["operating_status"] == "OFFLINE"


def test_tcp_monitor_has_no_http_fields(client, pool):
    hm = create_hm(client, pool["id"], "TCP", max_retries_down=10)
    assert (hm["http_method"], hm["url_path"], hm["expected_codes"]) == (None, None, None)
    assert hm["max_retries_down"] == 10


@pytest.mark.parametrize("field, value", [
    ("http_method", "GET"), ("url_path", "/health"), ("expected_codes", "200")])
def test_http_fields_on_other_types_are_rejected(client, pool, field, value):
    text = fault(post_hm(client, pool["id"], "TLS-HELLO", **{field: value}), 400)
    assert text == f"{field} is not a valid option for health monitors of type TLS-HELLO"


def test_http_fields_are_kept_when_given(client, pool):
    hm = create_hm(client, pool["id"], "HTTPS", http_method="HEAD", url_path="/healthz?full=1",
                   expected_codes="200-204")
    assert (hm["http_method"], hm["url_path"], hm["expected_codes"]) == \
        ("HEAD", "/healthz?full=1", "200-204")


@pytest.mark.parametrize("field, value", [
    ("type", "ICMP"), ("delay", -1), ("delay", 2**31), ("timeout", -1), ("max_retries", 0), ("max_retries", 11),
    ("max_retries_down", 0), ("max_retries_down", 11), ("http_method", "FETCH"),
    ("url_path", "health"), ("url_path", "http://example.com/health"),
    ("expected_codes", "abc"), ("expected_codes", "200-"), ("http_version", 2.0),
    ("domain_name", "-bad-.example.com"), ("domain_name", ""), ("pool_id", "nope"),
])
def test_invalid_fields_are_rejected(client, pool, field, value):
    text = fault(post_hm(client, pool["id"], **{field: value}), 400)
    assert field in text


def test_url_path_error_says_what_is_wrong(client, pool):
    text = fault(post_hm(client, pool["id"], url_path="health"), 400)
    assert "Value must be a valid URL Path string" in text


def test_expected_codes_accept_lists_and_ranges(client, lb, pool):
    hm = create_hm(client, pool["id"], expected_codes="200, 202,204")
    assert hm["expected_codes"] == "200, 202,204"


def test_domain_name_requires_http_version(client, pool):
    text = fault(post_hm(client, pool["id"], domain_name="example.com"), 400)
    assert text == ("Validation failure: 'http_version' must be specified when 'domain_name' "
                    "is provided.")
    text = fault(post_hm(client, pool["id"], domain_name="example.com", http_version=1.0), 400)
    assert text == ("http_version 1.0 is not a valid option for health monitors HTTP 1.1 domain "
                    "name health check")
    hm = create_hm(client, pool["id"], domain_name="example.com", http_version=1.1)
    assert (hm["domain_name"], hm["http_version"]) == ("example.com", 1.1)


def test_second_monitor_on_a_pool_is_a_conflict(client, pool):
    create_hm(client, pool["id"])
    assert fault(post_hm(client, pool["id"], "TCP"), 409) == \
        "This pool already has a health monitor"


def test_monitor_on_unknown_pool_is_404(client):
    missing = str(uuid.uuid4())
    assert fault(post_hm(client, missing), 404) == f"Pool {missing} not found."


@pytest.mark.parametrize("protocol", ["UDP", "SCTP"])
def test_datagram_pools_accept_only_their_monitor_types(client, lb, protocol):
    pool = create_pool(client, lb["id"], protocol, lb_algorithm="SOURCE_IP")
    for hm_type in ("HTTPS", "TLS-HELLO"):
        text = fault(post_hm(client, pool["id"], hm_type), 400)
        assert text == (f"Validation failure: The associated pool protocol is {protocol}, so "
                        "only a UDP-CONNECT/SCTP/TCP/HTTP/PING health monitor is supported.")
    hm = create_hm(client, pool["id"], "SCTP" if protocol == "SCTP" else "UDP-CONNECT")
    assert hm["pools"] == [{"id": pool["id"]}]


def test_udp_connect_delay_has_a_configured_minimum(client, settings, lb):
    pool = create_pool(client, lb["id"], "UDP", lb_algorithm="SOURCE_IP")
    text = fault(post_hm(client, pool["id"], "UDP-CONNECT", delay=2), 400)
    assert text == ("Validation failure: The request delay value 2 should be larger than 3 for "
                    "UDP-CONNECT health monitor type.")
    settings.api_settings.udp_connect_min_interval_health_monitor = 1
    hm = create_hm(client, pool["id"], "UDP-CONNECT", delay=2)
    settings.api_settings.udp_connect_min_interval_health_monitor = 3
    text = fault(client.put(f"{HMS}/{hm['id']}", json={"healthmonitor": {"delay": 1}}), 400)
    assert "The request delay value 1 should be larger than 3" in text


@pytest.mark.parametrize("hm_type", ["UDP-CONNECT", "SCTP"])
def test_stream_pools_reject_datagram_monitor_types(client, pool, hm_type):
    text = fault(post_hm(client, pool["id"], hm_type), 400)
    assert text == (f"Validation failure: The {hm_type} type is only supported for pools of "
                    "type UDP/SCTP.")


def test_ping_monitors_can_be_disabled(client, settings, pool):
    settings.api_settings.allow_ping_health_monitors = False
    assert fault(post_hm(client, pool["id"], "PING"), 400) == \
        "The selected type is not allowed in this deployment: PING"
    settings.api_settings.allow_ping_health_monitors = True
    create_hm(client, pool["id"], "PING")


def test_members_are_monitored_while_the_pool_has_a_monitor(client, lb, pool):
    def status_of(member):
        path = f"/v2/lbaas/pools/{pool['id']}/members/{member['id']}"
        return client.get(path).json()["member"]["operating_status"]

    before = create_member(client, pool["id"], "192.0.2.1")
    assert status_of(before) == "NO_MONITOR"
    hm = create_hm(client, pool["id"])
    wait_lb_active(client, lb["id"])
    assert status_of(before) == "OFFLINE"
    during = create_member(client, pool["id"], "192.0.2.2")
    assert during["operating_status"] == "OFFLINE"
    assert client.delete(f"{HMS}/{hm['id']}").status_code == 204
    wait_gone(client, f"{HMS}/{hm['id']}")
    assert (status_of(before), status_of(during)) == ("NO_MONITOR", "NO_MONITOR")


def test_update_monitor_returns_new_values_and_settles(client, pool):
    hm = create_hm(client, pool["id"])
    response = client.put(f"{HMS}/{hm['id']}", json={"healthmonitor": {
        "delay": 10, "timeout": 4, "max_retries": 5, "max_retries_down": 6, "name": "n",
        "http_method": "POST", "url_path": "/ready", "expected_codes": "201",
        "admin_state_up": False, "tags": ["a"], "http_version": 1.1,
        "domain_name": "example.com"}})
    assert response.status_code == 200
    body = response.json()["healthmonitor"]
    assert body["provisioning_status"] == "PENDING_UPDATE"
    assert (body["delay"], body["timeout"], body["max_retries"], body["max_retries_down"]) == \
        (10, 4, 5, 6)
    assert (body["http_method"], body["url_path"], body["expected_codes"]) == \
        ("POST", "/ready", "201")
    assert (body["name"], body["admin_state_up"], body["tags"]) == ("n", False, ["a"])
    assert wait_active(client, f"{HMS}/{hm['id']}", "healthmonitor")["delay"] == 10


def test_update_null_resets_to_default(client, pool):
    hm = create_hm(client, pool["id"], http_method="HEAD", url_path="/x", expected_codes="204",
                   max_retries_down=7, name="n")
    body = client.put(f"{HMS}/{hm['id']}", json={"healthmonitor": {
        "http_method": None, "url_path": None, "expected_codes": None,
        "max_retries_down": None, "name": None}}).json()["healthmonitor"]
    assert (body["http_method"], body["url_path"], body["expected_codes"]) == ("GET", "/", "200")
    assert (body["max_retries_down"], body["name"]) == (3, "")


@pytest.mark.parametrize("field", ["delay", "timeout", "max_retries"])
def test_update_cannot_clear_required_fields(client, pool, field):
    hm = create_hm(client, pool["id"])
    text = fault(client.put(f"{HMS}/{hm['id']}", json={"healthmonitor": {field: None}}), 400)
    assert text == f"None is not a valid option for {field}"


def test_update_checks_http_fields_and_domain_against_the_stored_monitor(client, pool):
    hm = create_hm(client, pool["id"], "TCP")
    path = f"{HMS}/{hm['id']}"
    text = fault(client.put(path, json={"healthmonitor": {"url_path": "/x"}}), 400)
    assert text == "url_path is not a valid option for health monitors of type TCP"
    text = fault(client.put(path, json={"healthmonitor": {"domain_name": "example.com"}}), 400)
    assert "'http_version' must be specified" in text
    for field in ("type", "pool_id"):
        assert field in fault(client.put(path, json={"healthmonitor": {field: "TCP"}}), 400)


def test_update_domain_name_with_stored_http_version(client, pool):
    hm = create_hm(client, pool["id"], http_version=1.1)
    response = client.put(f"{HMS}/{hm['id']}", json={"healthmonitor": {"domain_name": "a.org"}})
    assert response.status_code == 200
    text = fault(client.put(f"{HMS}/{hm['id']}", json={"healthmonitor": {"http_version": 1.0}}),
                 400)
    assert text == ("http_version 1.0 is not a valid option for health monitors HTTP 1.1 domain "
                    "name health check")


def test_delete_monitor_frees_the_pool(client, lb, pool):
    hm = create_hm(client, pool["id"])
    assert client.delete(f"{HMS}/{hm['id']}").status_code == 204
    wait_gone(client, f"{HMS}/{hm['id']}")
    wait_lb_active(client, lb["id"])
    assert client.get(f"/v2/lbaas/pools/{pool['id']}").json()["pool"]["healthmonitor_id"] is None
    create_hm(client, pool["id"], "TCP")


def test_unknown_monitor_is_404(client):
    missing = str(uuid.uuid4())
    assert fault(client.get(f"{HMS}/{missing}"), 404) == f"Health Monitor {missing} not found."
    fault(client.put(f"{HMS}/{missing}", json={"healthmonitor": {"name": "x"}}), 404)
    fault(client.delete(f"{HMS}/{missing}"), 404)


def test_monitor_change_while_load_balancer_busy_is_409(client, drivers, lb, pool):
    hm = create_hm(client, pool["id"])
    other = create_pool(client, lb["id"])
    with amphora_updates_held(drivers):
        client.put(f"/v2/lbaas/loadbalancers/{lb['id']}", json={"loadbalancer": {"name": "x"}})
        expected = f"Load Balancer {lb['id']} is immutable and cannot be updated."
        assert fault(post_hm(client, other["id"]), 409) == expected
        assert fault(client.put(f"{HMS}/{hm['id']}",
                                json={"healthmonitor": {"delay": 9}}), 409) == expected
        assert fault(client.delete(f"{HMS}/{hm['id']}"), 409) == expected
    wait_lb_active(client, lb["id"])
    assert client.get(f"{HMS}/{hm['id']}").json()["healthmonitor"]["delay"] == 5


def test_failed_monitor_create_leaves_it_error_and_parents_active(client, drivers, lb, pool):
    def broken(load_balancer, amphora):
        raise RuntimeError("amphora unreachable")

    drivers.amphora.update = broken
    hm = post_hm(client, pool["id"]).json()["healthmonitor"]
    wait_for(lambda: client.get(f"{HMS}/{hm['id']}").json()["healthmonitor"],
             "provisioning_status", "ERROR")
    assert wait_lb_active(client, lb["id"])["provisioning_status"] == "ACTIVE"
    assert client.get(f"/v2/lbaas/pools/{pool['id']}").json()["pool"]["provisioning_status"] \
        == "ACTIVE"


def test_health_monitor_quota_is_enforced(client, settings, pool):
    settings.quotas.default_health_monitor_quota = 0
    assert fault(post_hm(client, pool["id"]), 403) == \
        "Quota has been met for resources: healthmonitor"


def names(body: dict) -> list[str]:
    return [hm["name"] for hm in body["healthmonitors"]]


def test_list_sorts_filters_pages_and_selects_fields(client, lb):
    for name, hm_type in (("a", "HTTP"), ("b", "TCP"), ("c", "HTTP")):
        create_hm(client, create_pool(client, lb["id"])["id"], hm_type, name=name, tags=[hm_type])
    assert names(client.get(HMS, params={"sort": "name:desc"}).json()) == ["c", "b", "a"]
    assert names(client.get(HMS, params={"type": "HTTP", "sort": "name"}).json()) == ["a", "c"]
    assert names(client.get(HMS, params={"not-tags": "HTTP"}).json()) == ["b"]
    assert names(client.get(HMS, params={"max_retries": 2, "name": "b"}).json()) == ["b"]
    first = client.get(HMS, params={"limit": 2, "sort": "name"}).json()
    assert names(first) == ["a", "b"]
    assert [link["rel"] for link in first["healthmonitors_links"]] == ["next"]
    rest = client.get(HMS, params={"limit": 2, "sort": "name",
                                   "marker": first["healthmonitors"][-1]["id"]}).json()
    assert names(rest) == ["c"]
    fields = client.get(HMS, params={"fields": "id,pools"}).json()["healthmonitors"]
    assert all(set(hm) == {"id", "pools"} for hm in fields)
    assert fault(client.get(HMS, params={"bogus": "1"}), 400) == \
        "One or more arguments are either duplicate or invalid."
