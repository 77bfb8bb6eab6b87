"""The fully-populated load balancer create: a whole tree in one POST, ACTIVE together."""
from __future__ import annotations

import pytest

from tests.helpers import PROJECT, wait_for
from tests.helpers.api import SUBNET, fault, wait_lb_active

LBS = "/v2/lbaas/loadbalancers"


def web_pool(**fields):
    return {"name": "web", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
            "healthmonitor": {"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 2},
            "members": [{"address": "10.0.0.11", "protocol_port": 8080},
                        {"address": "10.0.0.12", "protocol_port": 8080, "weight": 5}],
            **fields}


def post(client, **fields):
    return client.post(LBS, json={"loadbalancer": {"vip_subnet_id": SUBNET, **fields}})


def create_tree(client, **fields):
    response = post(client, **fields)
    assert response.status_code == 201, response.text
    return response.json()["loadbalancer"]


def assert_nothing_created(client):
    assert client.get(LBS).json()["loadbalancers"] == []
    for collection in ("listeners", "pools", "healthmonitors"):
        assert client.get(f"/v2/lbaas/{collection}").json()[collection] == []


def test_whole_tree_is_created_pending_and_becomes_active_together(client):
    lb = create_tree(client, name="shop", listeners=[
        {"name": "http", "protocol": "HTTP", "protocol_port": 80, "default_pool": web_pool()},
        {"name": "tcp", "protocol": "TCP", "protocol_port": 8443, "default_pool": {"name": "raw"}},
    ], pools=[{"name": "raw", "protocol": "TCP", "lb_algorithm": "SOURCE_IP"}])

    assert lb["provisioning_status"] == "PENDING_CREATE"
    http, tcp = lb["listeners"]
    raw, web = lb["pools"]
    assert (http["name"], http["protocol_port"], http["default_pool_id"]) == ("http", 80, web["id"])
    assert tcp["default_pool_id"] == raw["id"]
    assert "loadbalancers" not in http and http["l7policies"] == []
    assert web["healthmonitor"]["type"] == "HTTP" and web["healthmonitor"]["url_path"] == "/"
    assert [m["address"] for m in web["members"]] == ["10.0.0.11", "10.0.0.12"]
    assert web["members"][1]["weight"] == 5
    assert "healthmonitor" not in raw and raw["members"] == []
    assert "loadbalancers" not in web and "healthmonitor_id" not in web
    children = [http, tcp, raw, web, web["healthmonitor"], *web["members"]]
    assert {child["provisioning_status"] for child in children} == {"PENDING_CREATE"}
    assert {child["project_id"] for child in children} == {PROJECT}

    wait_lb_active(client, lb["id"])
    for path, root in ((f"/v2/lbaas/listeners/{http['id']}", "listener"),
                       (f"/v2/lbaas/listeners/{tcp['id']}", "listener"),
                       (f"/v2/lbaas/pools/{web['id']}", "pool"),
                       (f"/v2/lbaas/pools/{raw['id']}", "pool"),
                       (f"/v2/lbaas/healthmonitors/{web['healthmonitor']['id']}", "healthmonitor"),
                       (f"/v2/lbaas/pools/{web['id']}/members/{web['members'][0]['id']}", "member")):
        assert client.get(path).json()[root]["provisioning_status"] == "ACTIVE", path
    shown = client.get(f"{LBS}/{lb['id']}").json()["loadbalancer"]
    assert sorted(shown["listeners"], key=str) == sorted(({"id": http["id"]}, {"id": tcp["id"]}), key=str)
    pool = client.get(f"/v2/lbaas/pools/{web['id']}").json()["pool"]
    assert pool["healthmonitor_id"] == web["healthmonitor"]["id"]
    assert pool["listeners"] == [{"id": http["id"]}]


def test_members_of_a_monitored_pool_start_offline_others_no_monitor(client):
    lb = create_tree(client, pools=[
        web_pool(),
        {"name": "plain", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
         "members": [{"address": "10.0.0.21", "protocol_port": 80}]}])
    web, plain = sorted(lb["pools"], key=lambda pool: pool["name"] != "web")
    assert {m["operating_status"] for m in web["members"]} == {"OFFLINE"}
    assert plain["members"][0]["operating_status"] == "NO_MONITOR"


def test_one_pool_can_be_the_default_of_two_listeners_by_name(client):
    lb = create_tree(client, listeners=[
        {"protocol": "HTTP", "protocol_port": 80, "default_pool": {"name": "web"}},
        {"protocol": "TCP", "protocol_port": 81, "default_pool": {"name": "web", "tls_enabled": False}},
    ], pools=[web_pool()])
    (web,) = lb["pools"]
    assert [listener["default_pool_id"] for listener in lb["listeners"]] == [web["id"], web["id"]]
    wait_lb_active(client, lb["id"])
    assert len(client.get(f"/v2/lbaas/pools/{web['id']}").json()["pool"]["listeners"]) == 2


def test_create_without_children_answers_empty_full_lists(client):
    lb = create_tree(client)
    assert lb["listeners"] == [] and lb["pools"] == []


def test_default_pool_without_a_name_is_rejected(client):
    text = fault(post(client, listeners=[{"protocol": "HTTP", "protocol_port": 80,
                                          "default_pool": web_pool(name=None)}]), 400)
    assert text == ("Validation failure: Pools must be named when creating a fully populated "
                    "loadbalancer.")
    assert_nothing_created(client)


def test_pool_names_must_be_unique(client):
    text = fault(post(client, listeners=[{"protocol": "HTTP", "protocol_port": 80,
                                          "default_pool": web_pool()}],
                      pools=[web_pool()]), 400)
    assert text == ("Validation failure: Pool names must be unique when creating a fully "
                    "populated loadbalancer.")


def test_reference_to_a_pool_that_is_not_defined_is_rejected(client):
    text = fault(post(client, listeners=[{"protocol": "HTTP", "protocol_port": 80,
                                          "default_pool": {"name": "ghost"}}]), 400)
    assert text == "Validation failure: Pool 'ghost' was referenced but no full definition was found."


def test_name_with_only_always_present_fields_is_still_a_reference(client):
    reference = {"name": "ghost", "admin_state_up": False, "tls_enabled": False}
    text = fault(post(client, listeners=[{"protocol": "HTTP", "protocol_port": 80,
                                          "default_pool": reference}]), 400)
    assert "'ghost' was referenced" in text


@pytest.mark.parametrize("missing", ["protocol", "lb_algorithm"])
def test_pool_definition_missing_protocol_or_algorithm_is_rejected(client, missing):
    pool = web_pool()
    del pool[missing]
    text = fault(post(client, listeners=[{"protocol": "HTTP", "protocol_port": 80,
                                          "default_pool": pool}]), 400)
    assert text == f"Validation failure: Pool definition for 'web' missing required attribute: {missing}"
    text = fault(post(client, pools=[pool]), 400)
    assert text.endswith(f"missing required attribute: {missing}")


@pytest.mark.parametrize(("change", "code", "expected"), [
    ({"listeners": [{"protocol": "UDP", "protocol_port": 53, "default_pool": {"name": "web"}}]},
     400, "The pool protocol 'HTTP' is invalid while the listener protocol is 'UDP'."),
    ({"listeners": [{"protocol": "HTTP", "protocol_port": 80},
                    {"protocol": "TCP", "protocol_port": 80}]},
     409, "already using protocol HTTP and protocol_port 80"),
    ({"pools": [web_pool(members=[{"address": "169.254.169.254", "protocol_port": 80}])]},
     400, "169.254.169.254"),
    ({"pools": [web_pool(members=[{"address": "10.0.0.1", "protocol_port": 80},
                                  {"address": "10.0.0.1", "protocol_port": 80}])]},
     409, "10.0.0.1"),
    ({"pools": [web_pool(healthmonitor={"type": "UDP-CONNECT", "delay": 5, "timeout": 3,
                                        "max_retries": 2})]},
     400, "UDP-CONNECT"),
    ({"pools": [web_pool(lb_algorithm="SOURCE_IP_PORT")]}, 501, "SOURCE_IP_PORT"),
])
def test_nested_objects_follow_their_own_rules_and_nothing_is_created(client, change, code, expected):
    body = {"pools": [web_pool()], **change}
    text = fault(post(client, **body), code)
    assert expected in text
    assert_nothing_created(client)


def test_unknown_attribute_in_a_nested_pool_is_rejected(client):
    text = fault(post(client, pools=[web_pool(loadbalancer_id=SUBNET)]), 400)
    assert "loadbalancer_id" in text


def test_quotas_count_every_nested_object(client):
    response = client.put(f"/v2/lbaas/quotas/{PROJECT}", json={"quota": {"member": 1, "pool": 5}})
    assert response.status_code == 202
    text = fault(post(client, pools=[web_pool()]), 403)
    assert text == "Quota has been met for resources: member"
    assert_nothing_created(client)
    client.put(f"/v2/lbaas/quotas/{PROJECT}", json={"quota": {"member": 2, "pool": 1}})
    text = fault(post(client, pools=[web_pool(), {**web_pool(name="two"), "members": []}]), 403)
    assert text == "Quota has been met for resources: pool"
    create_tree(client, pools=[web_pool()])


def test_failed_create_leaves_the_tree_in_error_not_pending(client, drivers):
    def broken(*_args, **_kwargs):
        raise RuntimeError("compute is down")
    drivers.compute.build = broken
    lb = create_tree(client, listeners=[{"protocol": "HTTP", "protocol_port": 80,
                                         "default_pool": web_pool()}])
    wait_for(lambda: client.get(f"{LBS}/{lb['id']}").json()["loadbalancer"],
             "provisioning_status", "ERROR")
    (listener,) = lb["listeners"]
    (pool,) = lb["pools"]
    assert client.get(f"/v2/lbaas/listeners/{listener['id']}").json()["listener"][
        "provisioning_status"] == "ERROR"
    assert client.get(f"/v2/lbaas/pools/{pool['id']}").json()["pool"]["provisioning_status"] == "ERROR"
    assert client.delete(f"{LBS}/{lb['id']}?cascade=true").status_code == 204
