"""The API refuses (400) every value the configuration builder could not render, and what
it accepts renders: each push here goes through ``haproxy -c``."""
from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.api import (
    create_lb,
    create_listener,
    create_pool,
    fault,
    haproxy_checked_pushes,
    wait_active,
    wait_lb_active,
)

RULE = {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/a"}


@pytest.fixture
def http_tree(client) -> dict[str, Any]:
    lb = create_lb(client)
    listener = create_listener(client, lb["id"], "HTTP", 80)
    pool = create_pool(client, lb["id"], listener_id=listener["id"])
    return {"lb": lb, "listener": listener, "pool": pool}


@pytest.mark.parametrize("rule", [
    {"type": "PATH", "compare_type": "REGEX", "value": "^/api\n"},
    {"type": "PATH", "compare_type": "REGEX", "value": r"^/caf\u00e9"},
    {"type": "HOST_NAME", "compare_type": "REGEX", "value": "(?a)example"},
    {"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X-A,B", "value": "v"},
    {"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X-A\n", "value": "v"},
    {"type": "COOKIE", "compare_type": "EQUAL_TO", "key": "it's", "value": "v"},
    {"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X-A", "value": '"a\tb"'},
    {"type": "SSL_DN_FIELD", "compare_type": "EQUAL_TO", "key": "CN", "value": "a\x01b"},
], ids=["regex-newline", "regex-pcre2-escape", "regex-python-flag", "header-comma",
        "header-key-newline", "cookie-quote", "quoted-tab", "dn-control"])
def test_l7_rule_values_haproxy_cannot_take_are_refused(client, http_tree, rule):
    response = client.post("/v2/lbaas/l7policies", json={"l7policy": {
        "listener_id": http_tree["listener"]["id"], "action": "REJECT", "rules": [rule]}})
    fault(response, 400)


@pytest.mark.parametrize(("field", "value"), [
    ("url_path", "/health\n"), ("url_path", "/a b"), ("url_path", "/a#b"),
    ("url_path", "/caf\u00e9"), ("expected_codes", "200\n"), ("expected_codes", "200,\n201"),
    ("expected_codes", "2\u0660\u0660"), ("domain_name", "example.com\n"), ("delay", 0),
    ("delay", 2_147_484), ("timeout", 2_147_484),
])
def test_health_monitor_values_haproxy_cannot_take_are_refused(client, http_tree, field, value):
    body = {"pool_id": http_tree["pool"]["id"], "type": "HTTP", "delay": 5, "timeout": 3,
            "max_retries": 3, "http_version": 1.1, field: value}
    fault(client.post("/v2/lbaas/healthmonitors", json={"healthmonitor": body}), 400)


@pytest.mark.parametrize("fields", [
    {"action": "REDIRECT_TO_URL", "redirect_url": "http://example.com/\n"},
    {"action": "REDIRECT_PREFIX", "redirect_prefix": "http://example.com\n"},
])
def test_redirect_targets_haproxy_cannot_take_are_refused(client, http_tree, fields):
    body = {"listener_id": http_tree["listener"]["id"], "rules": [RULE], **fields}
    fault(client.post("/v2/lbaas/l7policies", json={"l7policy": body}), 400)


def test_app_cookie_name_haproxy_cannot_take_is_refused(client, http_tree):
    text = fault(client.post("/v2/lbaas/pools", json={"pool": {
        "loadbalancer_id": http_tree["lb"]["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
        "session_persistence": {"type": "APP_COOKIE", "cookie_name": "it's"}}}), 400)
    assert text == 'Validation failure: Supplied "cookie_name" is invalid.'


def test_values_at_the_edge_are_accepted_and_render(client, drivers, http_tree):
    """What the checks let through, haproxy takes: escaped '#', quoted values with spaces,
    upstream's expected-code lists, the longest timers."""
    with haproxy_checked_pushes(drivers) as pushed:
        response = client.post("/v2/lbaas/l7policies", json={"l7policy": {
            "listener_id": http_tree["listener"]["id"], "action": "REJECT", "rules": [
                {"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X-Tag#1",
                 "value": '"two words"'},
                {"type": "COOKIE", "compare_type": "CONTAINS", "key": "~sid|x", "value": "a,b"},
                {"type": "PATH", "compare_type": "REGEX", "value": r"^/v\d+/(a|b) c#$"}]}})
        assert response.status_code == 201, response.text
        wait_lb_active(client, http_tree["lb"]["id"])
        monitor = client.post("/v2/lbaas/healthmonitors", json={"healthmonitor": {
            "pool_id": http_tree["pool"]["id"], "type": "HTTP", "delay": 2_147_483,
            "timeout": 2_147_483, "max_retries": 3, "url_path": "/health?full=1&x=[1]",
            "expected_codes": "200 , 202", "http_version": 1.1,
            "domain_name": "app.example.com"}})
        assert monitor.status_code == 201, monitor.text
        wait_lb_active(client, http_tree["lb"]["id"])
        wait_active(client, f"/v2/lbaas/l7policies/{response.json()['l7policy']['id']}",
                    "l7policy")
        assert "req.hdr(X-Tag\\#1) -m str two\\ words" in pushed[-1]


def test_a_prometheus_listener_is_served(client, drivers, http_tree):
    with haproxy_checked_pushes(drivers) as pushed:
        listener = create_listener(client, http_tree["lb"]["id"], "PROMETHEUS", 9100)
    assert listener["provisioning_status"] == "ACTIVE"
    assert "http-request use-service prometheus-exporter if { path /metrics }" in pushed[-1]
