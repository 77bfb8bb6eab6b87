"""Pools: create on a load balancer or as a listener's default pool, show, list, update,
delete (with members and health monitor), and upstream's validation rules."""
from __future__ import annotations

import uuid

import pytest

from lbaas.db.models import HealthMonitor, Member
from tests.helpers import PROJECT, wait_for
from tests.helpers.api import (
    SUBNET,
    amphora_updates_held,
    create_lb,
    create_listener,
    create_member,
    create_pool,
    fault,
    store_tls_refs,
    wait_active,
    wait_gone,
    wait_lb_active,
)

POOLS = "/v2/lbaas/pools"


def post(client, protocol="HTTP", lb_algorithm="ROUND_ROBIN", **fields):
    body = {"protocol": protocol, "lb_algorithm": lb_algorithm, **fields}
    return client.post(POOLS, json={"pool": body})


def put(client, pool_id, **fields):
    return client.put(f"{POOLS}/{pool_id}", json={"pool": fields})


def get_listener(client, listener_id):
    return client.get(f"/v2/lbaas/listeners/{listener_id}").json()["listener"]


@pytest.fixture
def lb(client):
    return create_lb(client)


def test_create_pool_goes_pending_then_active(client, lb):
    response = post(client, loadbalancer_id=lb["id"], name="web", tags=["t"])
    assert response.status_code == 201, response.text
    pool = response.json()["pool"]
    assert (pool["provisioning_status"], pool["operating_status"]) == ("PENDING_CREATE", "OFFLINE")
    assert pool["project_id"] == PROJECT
    assert pool["loadbalancers"] == [{"id": lb["id"]}]
    assert (pool["listeners"], pool["members"]) == ([], [])
    assert "healthmonitor_id" not in pool  # as upstream's 201; a GET shows null
    assert pool["session_persistence"] is None
    assert (pool["tls_enabled"], pool["tls_versions"], pool["tls_ciphers"]) == (False, None, None)
    assert pool["tags"] == ["t"]
    wait_lb_active(client, lb["id"])
    shown = wait_active(client, f"{POOLS}/{pool['id']}", "pool")
    assert (shown["name"], shown["healthmonitor_id"]) == ("web", None)
    assert client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"]["pools"] == \
        [{"id": pool["id"]}]


def test_pool_created_for_a_listener_becomes_its_default_pool(client, lb, drivers):
    listener = create_listener(client, lb["id"])
    with amphora_updates_held(drivers):
        pool = post(client, listener_id=listener["id"]).json()["pool"]
        assert pool["listeners"] == [{"id": listener["id"]}]
        assert pool["loadbalancers"] == [{"id": lb["id"]}]
        locked = get_listener(client, listener["id"])
        assert (locked["provisioning_status"], locked["default_pool_id"]) == \
            ("PENDING_UPDATE", pool["id"])
    wait_lb_active(client, lb["id"])
    assert wait_active(client, f"{POOLS}/{pool['id']}", "pool")["listeners"] == \
        [{"id": listener["id"]}]
    assert get_listener(client, listener["id"])["provisioning_status"] == "ACTIVE"


def test_listener_with_a_default_pool_cannot_get_another(client, lb):
    listener = create_listener(client, lb["id"])
    create_pool(client, lb["id"], listener_id=listener["id"])
    assert fault(post(client, listener_id=listener["id"]), 409) == \
        "This listener already has a default pool"


def test_pool_needs_a_load_balancer_or_a_listener(client):
    assert fault(post(client), 400) == \
        "Validation failure: Must provide at least one of: loadbalancer_id, listener_id"


@pytest.mark.parametrize(("field", "resource"), [
    ("loadbalancer_id", "Load Balancer"), ("listener_id", "Listener")])
def test_pool_on_unknown_parent_is_rejected(client, field, resource):
    missing = str(uuid.uuid4())
    assert fault(post(client, **{field: missing}), 400) == f"{resource} {missing} not found."


def test_pool_and_listener_must_share_the_load_balancer(client, lb):
    listener = create_listener(client, lb["id"])
    other = create_lb(client)
    text = fault(post(client, loadbalancer_id=other["id"], listener_id=listener["id"]), 400)
    assert text.startswith(f"Validation failure: Listener {listener['id']} is not on load "
                           f"balancer {other['id']}")


@pytest.mark.parametrize(("listener_protocol", "pool_protocol", "ok"), [
    ("HTTP", "HTTP", True), ("HTTP", "PROXYV2", True), ("HTTP", "TCP", False),
    ("HTTP", "HTTPS", False), ("TCP", "HTTP", True), ("HTTPS", "TCP", True),
    ("HTTPS", "HTTP", False), ("UDP", "UDP", True), ("UDP", "TCP", False),
    ("SCTP", "SCTP", True), ("SCTP", "UDP", False), ("TCP", "UDP", False),
])
def test_listener_and_pool_protocols_must_fit(client, lb, listener_protocol, pool_protocol, ok):
    listener = create_listener(client, lb["id"], listener_protocol, 443)
    response = post(client, pool_protocol, listener_id=listener["id"])
    if ok:
        assert response.status_code == 201, response.text
    else:
        assert fault(response, 400) == (
            f"Validation failure: The pool protocol '{pool_protocol}' is invalid while the "
            f"listener protocol is '{listener_protocol}'.")


def test_prometheus_listener_cannot_get_a_pool(client, lb):
    listener = create_listener(client, lb["id"], "PROMETHEUS", 9100)
    assert fault(post(client, listener_id=listener["id"]), 400) == \
        "Protocol PROMETHEUS listeners cannot have child objects."


def test_source_ip_port_is_not_supported_by_the_amphora_provider(client, lb):
    text = fault(post(client, lb_algorithm="SOURCE_IP_PORT", loadbalancer_id=lb["id"]), 501)
    assert text == ("Provider 'amphora' does not support a requested option: Amphora provider "
                    "does not support SOURCE_IP_PORT algorithm.")
    pool = create_pool(client, lb["id"])
    fault(put(client, pool["id"], lb_algorithm="SOURCE_IP_PORT"), 501)


@pytest.mark.parametrize(("field", "value"), [
    ("protocol", "TERMINATED_HTTPS"), ("lb_algorithm", "RANDOM"), ("tls_ciphers", "A B"),
    ("alpn_protocols", ["h3"]), ("tls_container_ref", "x" * 256),
])
def test_invalid_field_is_rejected_naming_it(client, lb, field, value):
    body = {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "loadbalancer_id": lb["id"],
            field: value}
    text = fault(client.post(POOLS, json={"pool": body}), 400)
    assert text.startswith(f"Invalid input for field/attribute {field}.")


@pytest.mark.parametrize(("protocol", "persistence", "message"), [
    ("HTTP", {"type": "APP_COOKIE"},
     'Field "cookie_name" must be specified when using the "APP_COOKIE" session persistence '
     'type.'),
    ("HTTP", {"type": "HTTP_COOKIE", "cookie_name": "sid"},
     'Field "cookie_name" can only be specified with session persistence of type '
     '"APP_COOKIE".'),
    ("HTTP", {"type": "APP_COOKIE", "cookie_name": "bad name"},
     'Supplied "cookie_name" is invalid.'),
    ("HTTP", {"type": "SOURCE_IP", "persistence_timeout": 60},
     "persistence_timeout and persistence_granularity is only for UDP and SCTP protocol pools."),
    ("UDP", {"type": "HTTP_COOKIE"},
     "Session persistence of type HTTP_COOKIE is not supported for UDP/SCTP protocol pools."),
    ("SCTP", {"type": "APP_COOKIE", "cookie_name": "sid"},
     "Cookie names are not supported for UDP/SCTP pools."),
    ("UDP", {"type": "SOURCE_IP", "cookie_name": "sid"},
     "session_persistence SOURCE_IP type for UDP and SCTP protocols only accepts: type, "
     "persistence_timeout, persistence_granularity."),
])
def test_session_persistence_rules(client, lb, protocol, persistence, message):
    response = post(client, protocol, loadbalancer_id=lb["id"], session_persistence=persistence)
    assert fault(response, 400) == f"Validation failure: {message}"


def test_valid_session_persistence_is_stored(client, lb):
    cookie = create_pool(client, lb["id"], session_persistence={"type": "APP_COOKIE",
                                                                "cookie_name": "JSESSIONID"})
    assert cookie["session_persistence"] == {"type": "APP_COOKIE", "cookie_name": "JSESSIONID",
                                             "persistence_timeout": None,
                                             "persistence_granularity": None}
    udp = create_pool(client, lb["id"], "UDP", session_persistence={
        "type": "SOURCE_IP", "persistence_timeout": 60,
        "persistence_granularity": "255.255.255.0"})
    assert udp["session_persistence"]["persistence_timeout"] == 60


def test_tls_enabled_pool_with_readable_references_goes_active(client, lb, services):
    refs = store_tls_refs(services.api_state.cert_manager, PROJECT)
    response = post(client, "HTTP", loadbalancer_id=lb["id"], tls_enabled=True,
                    tls_container_ref=refs["client"], ca_tls_container_ref=refs["ca"],
                    crl_container_ref=refs["crl"])
    assert response.status_code == 201, response.text
    pool = wait_active(client, f"/v2/lbaas/pools/{response.json()['pool']['id']}", "pool")
    assert (pool["tls_enabled"], pool["tls_versions"]) == (True, ["TLSv1.2", "TLSv1.3"])
    plain = create_pool(client, lb["id"], "HTTP")
    assert put(client, plain["id"], tls_enabled=True).status_code == 200
    assert wait_active(client, f"/v2/lbaas/pools/{plain['id']}", "pool")["tls_enabled"]
    assert fault(put(client, plain["id"], ca_tls_container_ref=refs["default"],
                     crl_container_ref=refs["other-crl"]), 400) == (
        "Validation failure: The CRL specified is not valid for pool certificate authority "
        "reference supplied.")
    assert fault(put(client, plain["id"], tls_container_ref="nope"), 400) == (
        "Could not retrieve certificate: nope (secret nope not found)")


@pytest.mark.parametrize("protocol", ["UDP", "SCTP"])
def test_datagram_pool_rejects_tls(client, lb, protocol):
    """keepalived's LVS serves these pools: it cannot re-encrypt, so no tls_enabled."""
    assert fault(post(client, protocol, loadbalancer_id=lb["id"], tls_enabled=True), 400) == \
        f"Validation failure: {protocol} protocol pool does not support TLS."
    pool = create_pool(client, lb["id"], protocol)
    assert fault(put(client, pool["id"], tls_enabled=True), 400) == \
        f"Validation failure: {protocol} protocol pool does not support TLS."


@pytest.mark.parametrize(("fields", "message"), [
    ({"crl_container_ref": "crl"},
     "A CA certificate reference is required to specify a revocation list."),
    ({"tls_enabled": True, "tls_versions": []},
     "Empty TLS version list. Either specify at least one TLS version or remove this "
     "parameter to use the default."),
    ({"tls_enabled": True, "tls_versions": ["SSLv2"]}, "Invalid TLS versions: SSLv2"),
    ({"tls_enabled": True, "alpn_protocols": []},
     "Empty ALPN protocol list. Either specify at least one ALPN protocol or remove this "
     "parameter to use the default."),
])
def test_pool_tls_rules(client, lb, fields, message):
    assert fault(post(client, "HTTPS", loadbalancer_id=lb["id"], **fields), 400) == \
        f"Validation failure: {message}"


def test_update_returns_new_values_and_locks_the_listeners(client, lb, drivers):
    listener = create_listener(client, lb["id"])
    pool = create_pool(client, lb["id"], listener_id=listener["id"])
    with amphora_updates_held(drivers):
        response = put(client, pool["id"], name="renamed", lb_algorithm="LEAST_CONNECTIONS",
                       admin_state_up=False)
        assert response.status_code == 200, response.text
        body = response.json()["pool"]
        assert (body["name"], body["lb_algorithm"], body["admin_state_up"]) == \
            ("renamed", "LEAST_CONNECTIONS", False)
        assert body["provisioning_status"] == "PENDING_UPDATE"
        assert get_listener(client, listener["id"])["provisioning_status"] == "PENDING_UPDATE"
        assert fault(put(client, pool["id"], name="again"), 409) == \
            f"Load Balancer {lb['id']} is immutable and cannot be updated."
    wait_lb_active(client, lb["id"])
    assert wait_active(client, f"{POOLS}/{pool['id']}", "pool")["name"] == "renamed"
    assert get_listener(client, listener["id"])["provisioning_status"] == "ACTIVE"


def test_update_null_resets_and_algorithm_cannot_be_nulled(client, lb):
    pool = create_pool(client, lb["id"], admin_state_up=False, tags=["a"], name="x",
                       session_persistence={"type": "SOURCE_IP"})
    body = put(client, pool["id"], admin_state_up=None, tags=None, name=None,
               session_persistence=None).json()["pool"]
    assert (body["admin_state_up"], body["tags"], body["name"]) == (True, [], "")
    assert body["session_persistence"] is None
    wait_lb_active(client, lb["id"])
    assert fault(put(client, pool["id"], lb_algorithm=None), 400).startswith(
        "Invalid input for field/attribute lb_algorithm. Value: 'None'.")


def test_update_merges_session_persistence(client, lb):
    pool = create_pool(client, lb["id"], session_persistence={"type": "APP_COOKIE",
                                                              "cookie_name": "a"})
    body = put(client, pool["id"], session_persistence={"cookie_name": "b"}).json()["pool"]
    assert body["session_persistence"]["type"] == "APP_COOKIE"
    assert body["session_persistence"]["cookie_name"] == "b"
    wait_lb_active(client, lb["id"])
    body = put(client, pool["id"], session_persistence={"type": "HTTP_COOKIE"}).json()["pool"]
    assert body["session_persistence"]["cookie_name"] is None


def test_update_persistence_without_a_type_needs_an_existing_one(client, lb):
    pool = create_pool(client, lb["id"])
    assert fault(put(client, pool["id"], session_persistence={"cookie_name": "a"}), 400) == \
        "Validation failure: Invalid session_persistence provided."


def test_delete_removes_members_and_health_monitor_and_clears_default_pool(client, lb,
                                                                          services):
    listener = create_listener(client, lb["id"])
    pool = create_pool(client, lb["id"], listener_id=listener["id"])
    member = create_member(client, pool["id"], "192.0.2.10")
    monitor = client.post("/v2/lbaas/healthmonitors", json={"healthmonitor": {
        "pool_id": pool["id"], "type": "TCP", "delay": 5, "timeout": 3, "max_retries": 2}})
    assert monitor.status_code == 201, monitor.text
    wait_lb_active(client, lb["id"])
    assert client.delete(f"{POOLS}/{pool['id']}").status_code == 204
    wait_gone(client, f"{POOLS}/{pool['id']}")
    wait_lb_active(client, lb["id"])
    assert get_listener(client, listener["id"])["default_pool_id"] is None
    monitor_id = monitor.json()["healthmonitor"]["id"]
    assert client.get(f"/v2/lbaas/healthmonitors/{monitor_id}").status_code == 404
    with services.db.read() as session:
        assert session.get(Member, member["id"]) is None
        assert session.get(HealthMonitor, monitor_id) is None


def test_pool_delete_while_load_balancer_busy_is_409(client, lb, drivers):
    pool = create_pool(client, lb["id"])
    with amphora_updates_held(drivers):
        assert put(client, pool["id"], name="busy").status_code == 200
        fault(client.delete(f"{POOLS}/{pool['id']}"), 409)
        fault(post(client, loadbalancer_id=lb["id"]), 409)
    wait_lb_active(client, lb["id"])


def test_pool_on_pending_load_balancer_is_409(api_only):
    lb = api_only.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "vip_subnet_id": SUBNET}}).json()["loadbalancer"]
    assert fault(post(api_only, loadbalancer_id=lb["id"]), 409) == \
        f"Load Balancer {lb['id']} is immutable and cannot be updated."


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_unknown_pool_is_404(client, method):
    missing = str(uuid.uuid4())
    kwargs = {"json": {"pool": {"name": "x"}}} if method == "put" else {}
    response = client.request(method.upper(), f"{POOLS}/{missing}", **kwargs)
    assert fault(response, 404) == f"Pool {missing} not found."


def test_failed_change_leaves_pool_in_error_and_listener_active(client, lb, drivers):
    listener = create_listener(client, lb["id"])

    def broken(*_args, **_kwargs):
        raise RuntimeError("amphora unreachable")
    drivers.amphora.update = broken
    pool = post(client, listener_id=listener["id"]).json()["pool"]
    wait_for(lambda: client.get(f"{POOLS}/{pool['id']}").json()["pool"],
             "provisioning_status", "ERROR")
    wait_lb_active(client, lb["id"])
    assert get_listener(client, listener["id"])["provisioning_status"] == "ACTIVE"


def test_pool_quota_is_enforced(client, lb):
    client.put(f"/v2/lbaas/quotas/{PROJECT}", json={"quota": {"pool": 1}})
    create_pool(client, lb["id"])
    assert fault(post(client, loadbalancer_id=lb["id"]), 403).startswith(
        "Quota has been met for resources:")


def test_list_filters_sorts_pages_and_selects_fields(client, lb):
    other = create_lb(client)
    made = [create_pool(client, lb["id"], protocol, name=name, lb_algorithm=algorithm,
                        tags=[name])
            for protocol, name, algorithm in (("HTTP", "a", "ROUND_ROBIN"),
                                              ("TCP", "b", "SOURCE_IP"),
                                              ("UDP", "c", "ROUND_ROBIN"))]
    create_pool(client, other["id"], name="elsewhere")

    def names(query):
        response = client.get(f"{POOLS}?{query}")
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()["pools"]]

    assert names(f"loadbalancer_id={lb['id']}&sort=name:desc") == ["c", "b", "a"]
    assert names(f"loadbalancer_id={lb['id']}&lb_algorithm=ROUND_ROBIN&sort=name") == ["a", "c"]
    assert names("protocol=TCP") == ["b"]
    assert names(f"loadbalancer_id={lb['id']}&tags-any=a,c&sort=name") == ["a", "c"]
    page = client.get(f"{POOLS}?loadbalancer_id={lb['id']}&sort=name&limit=2").json()
    assert [item["id"] for item in page["pools"]] == [made[0]["id"], made[1]["id"]]
    rest = client.get(page["pools_links"][0]["href"]).json()
    assert [item["name"] for item in rest["pools"]] == ["c"]
    assert client.get(f"{POOLS}/{made[1]['id']}?fields=protocol").json() == \
        {"pool": {"protocol": "TCP"}}
    assert fault(client.get(f"{POOLS}?sort=bogus"), 400) == \
        "Supplied sort key 'bogus' is not valid."
