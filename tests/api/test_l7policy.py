"""L7 policies: actions and their fields, redirect pools, positions, locks, quotas, cascades."""
from __future__ import annotations

import uuid

import pytest

from tests.helpers import PROJECT, wait_for
from tests.helpers.api import (
    SUBNET,
    amphora_updates_held,
    create_lb,
    create_listener,
    create_pool,
    fault,
    wait_active,
    wait_gone,
    wait_lb_active,
)

POLICIES = "/v2/lbaas/l7policies"


@pytest.fixture
def lb(client):
    return create_lb(client)


@pytest.fixture
def listener(client, lb):
    return create_listener(client, lb["id"])


@pytest.fixture
def pool(client, lb):
    return create_pool(client, lb["id"], name="images")


def post_policy(client, listener_id: str, **body):
    return client.post(POLICIES, json={"l7policy": {"listener_id": listener_id, **body}})


def create_policy(client, listener_id: str, action: str = "REJECT", **body) -> dict:
    response = post_policy(client, listener_id, action=action, **body)
    assert response.status_code == 201, response.text
    return wait_active(client, f"{POLICIES}/{response.json()['l7policy']['id']}", "l7policy")


def put_policy(client, policy_id: str, **body):
    return client.put(f"{POLICIES}/{policy_id}", json={"l7policy": body})


def positions(client, listener_id: str) -> list[tuple[str, int]]:
    """The listener's policies as (name, position), in position order."""
    policies = client.get(f"{POLICIES}?listener_id={listener_id}&sort=position").json()["l7policies"]
    return [(policy["name"], policy["position"]) for policy in policies]


def test_create_policy_goes_pending_then_active_and_shows_on_the_listener(client, drivers, lb, listener):
    with amphora_updates_held(drivers):
        response = post_policy(client, listener["id"], action="REJECT", name="deny", tags=["waf"],
                               description="bad bots")
        assert response.status_code == 201
        policy = response.json()["l7policy"]
        assert policy["provisioning_status"] == "PENDING_CREATE"
        assert policy["operating_status"] == "OFFLINE"
        assert (policy["action"], policy["position"], policy["listener_id"]) == ("REJECT", 1, listener["id"])
        assert policy["redirect_pool_id"] is None and policy["redirect_url"] is None
        assert policy["redirect_prefix"] is None and policy["redirect_http_code"] is None
        assert policy["rules"] == [] and policy["tags"] == ["waf"]
        assert policy["admin_state_up"] is True and policy["project_id"] == PROJECT
        assert client.get(f"/v2/lbaas/listeners/{listener['id']}").json()["listener"][
            "provisioning_status"] == "PENDING_UPDATE"
    active = wait_active(client, f"{POLICIES}/{policy['id']}", "l7policy")
    assert active["operating_status"] == "ONLINE"
    assert wait_lb_active(client, lb["id"])["provisioning_status"] == "ACTIVE"
    shown = client.get(f"/v2/lbaas/listeners/{listener['id']}").json()["listener"]
    assert shown["l7policies"] == [{"id": policy["id"]}]
    assert shown["provisioning_status"] == "ACTIVE"


def test_policies_are_served_under_v2_0_too(client, listener):
    policy = create_policy(client, listener["id"])
    assert client.get(f"/v2.0/lbaas/l7policies/{policy['id']}").json()["l7policy"]["id"] == policy["id"]


def test_redirect_to_url_defaults_to_302(client, listener):
    policy = create_policy(client, listener["id"], "REDIRECT_TO_URL",
                           redirect_url="https://www.example.com/moved")
    assert policy["redirect_url"] == "https://www.example.com/moved"
    assert policy["redirect_http_code"] == 302


def test_redirect_prefix_keeps_the_code_it_was_given(client, listener):
    policy = create_policy(client, listener["id"], "REDIRECT_PREFIX",
                           redirect_prefix="https://secure.example.com", redirect_http_code=308)
    assert (policy["redirect_prefix"], policy["redirect_http_code"]) == \
        ("https://secure.example.com", 308)
    assert policy["redirect_url"] is None


def test_redirect_to_pool_has_no_code_and_puts_the_pool_in_the_status_tree(client, lb, listener,
                                                                           pool):
    policy = create_policy(client, listener["id"], "REDIRECT_TO_POOL", redirect_pool_id=pool["id"],
                           redirect_http_code=301)
    assert policy["redirect_pool_id"] == pool["id"] and policy["redirect_http_code"] is None
    tree = client.get(f"/v2/lbaas/loadbalancers/{lb['id']}/status").json()["statuses"]
    (listed,) = tree["loadbalancer"]["listeners"]
    assert [p["id"] for p in listed["pools"]] == [pool["id"]]


def test_fields_of_other_actions_are_dropped(client, listener, pool):
    policy = create_policy(client, listener["id"], "REJECT", redirect_url="http://example.com",
                           redirect_http_code=301)
    assert policy["redirect_url"] is None and policy["redirect_http_code"] is None
    policy = create_policy(client, listener["id"], "REDIRECT_TO_URL", redirect_url="http://a.example",
                           redirect_prefix="http://b.example")
    assert policy["redirect_prefix"] is None


@pytest.mark.parametrize(("body", "expected"), [
    ({"action": "REDIRECT_TO_URL"}, "Invalid L7 Policy arguments: redirect_url must not be None"),
    ({"action": "REDIRECT_PREFIX"},
     "Invalid L7 Policy arguments: redirect_prefix must not be None"),
    ({"action": "REDIRECT_TO_POOL"},
     "Invalid L7 Policy arguments: redirect_pool_id or redirect_pool must not be None"),
    ({"action": "REDIRECT_TO_POOL", "redirect_pool_id": "{pool}", "redirect_url": "http://a.b"},
     "Invalid L7 Policy arguments: Cannot specify redirect_pool_id and redirect_url or "
     "redirect_prefix at the same time"),
    ({"action": "REDIRECT_TO_URL", "redirect_url": "ftp://example.com/x"},
     "Invalid input for field/attribute redirect_url. Value: 'ftp://example.com/x'. "
     "Not a valid URL: ftp://example.com/x."),
    ({"action": "REDIRECT_PREFIX", "redirect_prefix": "example.com"},
     "Invalid input for field/attribute redirect_prefix. Value: 'example.com'. "
     "Not a valid URL: example.com."),
    ({"action": "REDIRECT_TO_URL", "redirect_url": "http://a.b", "redirect_http_code": 305},
     "Invalid input for field/attribute redirect_http_code. Value: '305'. "
     "Value should be one of: 301, 302, 303, 307, 308."),
    ({"action": "FORWARD"}, "Invalid input for field/attribute action. Value: 'FORWARD'. "
     "Value should be one of: REJECT, REDIRECT_TO_URL, REDIRECT_TO_POOL, REDIRECT_PREFIX."),
    ({}, "Invalid input for field/attribute action. Value: 'None'. Mandatory field missing."),
    ({"action": "REJECT", "position": 0},
     "Invalid input for field/attribute position. Value: '0'. "
     "Input should be greater than or equal to 1."),
])
def test_invalid_policies_are_rejected(client, listener, pool, body, expected):
    if body.get("redirect_pool_id") == "{pool}":
        body = {**body, "redirect_pool_id": pool["id"]}
    assert fault(post_policy(client, listener["id"], **body), 400) == expected
    assert client.get(POLICIES).json()["l7policies"] == []


def test_policies_only_on_http_and_terminated_https_listeners(client, lb):
    tcp = create_listener(client, lb["id"], protocol="TCP", protocol_port=5000)
    text = fault(post_policy(client, tcp["id"], action="REJECT"), 400)
    assert text == ("Validation failure: L7 policies are only supported on HTTP and "
                    "TERMINATED_HTTPS listeners, not on TCP listeners.")
    prometheus = create_listener(client, lb["id"], protocol="PROMETHEUS", protocol_port=9100)
    text = fault(post_policy(client, prometheus["id"], action="REJECT"), 400)
    assert text == "Protocol PROMETHEUS listeners cannot have child objects."


def test_unknown_listener_is_404(client):
    missing = str(uuid.uuid4())
    assert fault(post_policy(client, missing, action="REJECT"), 404) == \
        f"Listener {missing} not found."


def test_redirect_pool_must_exist_be_on_the_same_lb_and_fit_the_listener(client, listener, lb):
    missing = str(uuid.uuid4())
    text = fault(post_policy(client, listener["id"], action="REDIRECT_TO_POOL",
                             redirect_pool_id=missing), 404)
    assert text == f"Pool {missing} not found."
    other_lb = create_lb(client)
    elsewhere = create_pool(client, other_lb["id"])
    text = fault(post_policy(client, listener["id"], action="REDIRECT_TO_POOL",
                             redirect_pool_id=elsewhere["id"]), 404)
    assert text == f"Pool {elsewhere['id']} not found."
    tcp_pool = create_pool(client, lb["id"], protocol="TCP")
    text = fault(post_policy(client, listener["id"], action="REDIRECT_TO_POOL",
                             redirect_pool_id=tcp_pool["id"]), 400)
    assert text == ("Validation failure: The pool protocol 'TCP' is invalid while the listener "
                    "protocol is 'HTTP'.")


def test_positions_stay_contiguous_on_insert_move_and_delete(client, lb, listener):
    for name in ("a", "b", "c"):
        create_policy(client, listener["id"], name=name)
    assert positions(client, listener["id"]) == [("a", 1), ("b", 2), ("c", 3)]
    first = create_policy(client, listener["id"], name="first", position=1)
    assert positions(client, listener["id"]) == [("first", 1), ("a", 2), ("b", 3), ("c", 4)]
    create_policy(client, listener["id"], name="middle", position=3)
    assert positions(client, listener["id"]) == [
        ("first", 1), ("a", 2), ("middle", 3), ("b", 4), ("c", 5)]
    create_policy(client, listener["id"], name="far", position=99)
    assert positions(client, listener["id"])[-1] == ("far", 6)

    response = put_policy(client, first["id"], position=4)
    assert response.status_code == 200 and response.json()["l7policy"]["position"] == 4
    wait_lb_active(client, lb["id"])
    assert positions(client, listener["id"]) == [
        ("a", 1), ("middle", 2), ("b", 3), ("first", 4), ("c", 5), ("far", 6)]

    assert client.delete(f"{POLICIES}/{first['id']}").status_code == 204
    wait_gone(client, f"{POLICIES}/{first['id']}")
    assert positions(client, listener["id"]) == [
        ("a", 1), ("middle", 2), ("b", 3), ("c", 4), ("far", 5)]


def test_update_switches_action_and_clears_what_no_longer_applies(client, lb, listener, pool):
    policy = create_policy(client, listener["id"], "REDIRECT_TO_URL", redirect_url="http://a.example",
                           redirect_http_code=301)
    response = put_policy(client, policy["id"], redirect_pool_id=pool["id"])
    assert response.status_code == 200
    updated = response.json()["l7policy"]
    assert updated["provisioning_status"] == "PENDING_UPDATE"
    assert (updated["action"], updated["redirect_pool_id"]) == ("REDIRECT_TO_POOL", pool["id"])
    assert updated["redirect_url"] is None and updated["redirect_http_code"] is None
    wait_active(client, f"{POLICIES}/{policy['id']}", "l7policy")
    wait_lb_active(client, lb["id"])

    updated = put_policy(client, policy["id"], redirect_prefix="https://b.example").json()["l7policy"]
    assert (updated["action"], updated["redirect_prefix"], updated["redirect_http_code"]) == \
        ("REDIRECT_PREFIX", "https://b.example", 302)
    assert updated["redirect_pool_id"] is None
    wait_lb_active(client, lb["id"])

    updated = put_policy(client, policy["id"], action="REJECT", name="now-reject",
                         admin_state_up=False).json()["l7policy"]
    assert (updated["action"], updated["redirect_prefix"], updated["name"]) == \
        ("REJECT", None, "now-reject")
    active = wait_active(client, f"{POLICIES}/{policy['id']}", "l7policy")
    assert active["admin_state_up"] is False and active["operating_status"] == "OFFLINE"


@pytest.mark.parametrize(("body", "expected"), [
    ({"action": None}, "Invalid L7 Policy action specified: None"),
    ({"redirect_pool_id": None},
     "Invalid L7 Policy arguments: redirect_pool_id or redirect_pool must not be None"),
    ({"action": "REDIRECT_TO_URL"}, "Invalid L7 Policy arguments: redirect_url must not be None"),
    ({"listener_id": str(uuid.UUID(int=1))}, "Invalid input for field/attribute l7policy. "
     "Value: '00000000-0000-0000-0000-000000000001'. Unknown attribute for argument l7policy: "
     "listener_id"),
])
def test_invalid_updates_are_rejected(client, listener, pool, body, expected):
    policy = create_policy(client, listener["id"], "REDIRECT_TO_POOL", redirect_pool_id=pool["id"])
    assert fault(put_policy(client, policy["id"], **body), 400) == expected
    assert client.get(f"{POLICIES}/{policy['id']}").json()["l7policy"]["provisioning_status"] \
        == "ACTIVE"


def test_changes_while_the_load_balancer_is_busy_get_409(client, drivers, lb, listener):
    policy = create_policy(client, listener["id"])
    with amphora_updates_held(drivers):
        assert put_policy(client, policy["id"], name="x").status_code == 200
        expected = f"Load Balancer {lb['id']} is immutable and cannot be updated."
        assert fault(post_policy(client, listener["id"], action="REJECT"), 409) == expected
        assert fault(put_policy(client, policy["id"], name="y"), 409) == expected
        assert fault(client.delete(f"{POLICIES}/{policy['id']}"), 409) == expected
    wait_lb_active(client, lb["id"])


def test_unknown_policy_is_404_everywhere(client):
    missing = str(uuid.uuid4())
    expected = f"L7Policy {missing} not found."
    assert fault(client.get(f"{POLICIES}/{missing}"), 404) == expected
    assert fault(put_policy(client, missing, name="x"), 404) == expected
    assert fault(client.delete(f"{POLICIES}/{missing}"), 404) == expected
    assert fault(client.get(f"{POLICIES}/{missing}/rules"), 404) == expected


def test_list_filters_sorts_pages_and_trims_fields(client, lb, listener):
    other = create_listener(client, lb["id"], protocol_port=8080)
    for name in ("a", "b", "c"):
        create_policy(client, listener["id"], name=name, tags=[name])
    create_policy(client, other["id"], name="other")
    assert [p["name"] for p in client.get(f"{POLICIES}?sort=name:desc").json()["l7policies"]] \
        == ["other", "c", "b", "a"]
    assert [p["name"] for p in client.get(f"{POLICIES}?listener_id={other['id']}")
            .json()["l7policies"]] == ["other"]
    assert [p["name"] for p in client.get(f"{POLICIES}?tags=b").json()["l7policies"]] == ["b"]
    page = client.get(f"{POLICIES}?limit=2&sort=name").json()
    assert [p["name"] for p in page["l7policies"]] == ["a", "b"]
    assert page["l7policies_links"][0]["rel"] == "next"
    trimmed = client.get(f"{POLICIES}?fields=id&fields=position&action=REJECT").json()["l7policies"]
    assert all(set(p) == {"id", "position"} for p in trimmed) and len(trimmed) == 4
    fault(client.get(f"{POLICIES}?colour=blue"), 400)
    assert fault(client.get(f"{POLICIES}?position={2**63}"), 400) == \
        "One or more arguments are either duplicate or invalid."


def test_policy_quota_is_enforced(client, listener):
    client.put(f"/v2/lbaas/quotas/{PROJECT}", json={"quota": {"l7policy": 1}})
    create_policy(client, listener["id"])
    text = fault(post_policy(client, listener["id"], action="REJECT"), 403)
    assert text == "Quota has been met for resources: l7policy"


def test_nested_rules_are_created_with_the_policy_and_count_against_the_rule_quota(client,
                                                                                   listener):
    rules = [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"},
             {"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X-Env", "value": "beta"}]
    response = post_policy(client, listener["id"], action="REJECT", rules=rules)
    assert response.status_code == 201
    policy = response.json()["l7policy"]
    assert len(policy["rules"]) == 2
    listed = client.get(f"{POLICIES}/{policy['id']}/rules").json()["rules"]
    assert {rule["id"] for rule in listed} == {rule["id"] for rule in policy["rules"]}
    for rule in listed:
        wait_active(client, f"{POLICIES}/{policy['id']}/rules/{rule['id']}", "rule")
    client.put(f"/v2/lbaas/quotas/{PROJECT}", json={"quota": {"l7rule": 3}})
    text = fault(post_policy(client, listener["id"], action="REJECT", rules=rules), 403)
    assert text == "Quota has been met for resources: l7rule"
    bad = [{"type": "HEADER", "compare_type": "EQUAL_TO", "value": "beta"}]
    text = fault(post_policy(client, listener["id"], action="REJECT", rules=bad), 400)
    assert text == "Error parsing L7Rule: Invalid L7 Rule: L7 rule type requires a key"


def test_a_pool_used_by_a_policy_cannot_be_deleted_until_the_policy_goes(client, lb, listener,
                                                                         pool):
    policy = create_policy(client, listener["id"], "REDIRECT_TO_POOL", redirect_pool_id=pool["id"])
    text = fault(client.delete(f"/v2/lbaas/pools/{pool['id']}"), 409)
    assert text == f"Pool {pool['id']} is in use by L7 policy {policy['id']}"
    assert client.delete(f"{POLICIES}/{policy['id']}").status_code == 204
    wait_gone(client, f"{POLICIES}/{policy['id']}")
    wait_lb_active(client, lb["id"])
    assert client.delete(f"/v2/lbaas/pools/{pool['id']}").status_code == 204
    wait_gone(client, f"/v2/lbaas/pools/{pool['id']}")


def test_deleting_the_listener_deletes_its_policies_and_rules(client, lb, listener):
    policy = create_policy(client, listener["id"], rules=[
        {"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "www.example.com"}])
    assert client.delete(f"/v2/lbaas/listeners/{listener['id']}").status_code == 204
    wait_gone(client, f"/v2/lbaas/listeners/{listener['id']}")
    assert fault(client.get(f"{POLICIES}/{policy['id']}"), 404)
    assert client.get(POLICIES).json()["l7policies"] == []


def test_cascade_delete_of_the_load_balancer_removes_policies_and_redirect_pools(client, lb,
                                                                                  listener, pool):
    create_policy(client, listener["id"], "REDIRECT_TO_POOL", redirect_pool_id=pool["id"],
                  rules=[{"type": "PATH", "compare_type": "REGEX", "value": "^/img/"}])
    assert client.delete(f"/v2/lbaas/loadbalancers/{lb['id']}?cascade=true").status_code == 204
    wait_gone(client, f"/v2/lbaas/loadbalancers/{lb['id']}")
    assert client.get(POLICIES).json()["l7policies"] == []
    assert client.get("/v2/lbaas/pools").json()["pools"] == []


def test_failed_push_leaves_the_policy_in_error_and_the_rest_active(client, drivers, lb, listener):
    def broken(*_args, **_kwargs):
        raise RuntimeError("amphora unreachable")
    drivers.amphora.update = broken
    policy = post_policy(client, listener["id"], action="REJECT").json()["l7policy"]
    wait_for(lambda: client.get(f"{POLICIES}/{policy['id']}").json()["l7policy"],
             "provisioning_status", "ERROR")
    assert wait_lb_active(client, lb["id"])["provisioning_status"] == "ACTIVE"
    assert client.get(f"/v2/lbaas/listeners/{listener['id']}").json()["listener"][
        "provisioning_status"] == "ACTIVE"


# --- Inside the fully-populated load balancer create --------------------------------------

def post_tree(client, listener: dict, pools: list | None = None):
    return client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "vip_subnet_id": SUBNET, "listeners": [listener], "pools": pools or []}})


def http_listener(*policies: dict) -> dict:
    return {"protocol": "HTTP", "protocol_port": 80, "l7policies": list(policies)}


def test_single_create_builds_policies_rules_and_redirect_pools(client):
    static = {"name": "static", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
              "members": [{"address": "10.0.0.21", "protocol_port": 80}]}
    response = post_tree(client, http_listener(
        {"name": "to-static", "action": "REDIRECT_TO_POOL", "redirect_pool": {"name": "static"},
         "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/static"}]},
        {"name": "to-api", "action": "REDIRECT_TO_POOL",
         "redirect_pool": {"name": "api", "protocol": "HTTP", "lb_algorithm": "LEAST_CONNECTIONS"},
         "rules": [{"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "api.example.com"}]},
        {"name": "deny", "action": "REJECT", "position": 1,
         "rules": [{"type": "HEADER", "compare_type": "CONTAINS", "key": "User-Agent",
                    "value": "badbot"}]},
    ), pools=[static])
    assert response.status_code == 201, response.text
    lb = response.json()["loadbalancer"]
    (listener,) = lb["listeners"]
    pools = {pool["name"]: pool for pool in lb["pools"]}
    assert set(pools) == {"static", "api"}
    policies = {policy["name"]: policy for policy in listener["l7policies"]}
    assert policies["to-static"]["redirect_pool_id"] == pools["static"]["id"]
    assert policies["to-api"]["redirect_pool_id"] == pools["api"]["id"]
    assert {name: policy["position"] for name, policy in policies.items()} == \
        {"deny": 1, "to-static": 2, "to-api": 3}
    (rule,) = policies["deny"]["rules"]
    assert (rule["type"], rule["key"], rule["provisioning_status"]) == \
        ("HEADER", "User-Agent", "PENDING_CREATE")

    wait_lb_active(client, lb["id"])
    for policy in policies.values():
        shown = client.get(f"{POLICIES}/{policy['id']}").json()["l7policy"]
        assert shown["provisioning_status"] == "ACTIVE" and len(shown["rules"]) == 1
        rule_id = shown["rules"][0]["id"]
        assert client.get(f"{POLICIES}/{policy['id']}/rules/{rule_id}").json()["rule"][
            "provisioning_status"] == "ACTIVE"
    assert positions(client, listener["id"]) == [("deny", 1), ("to-static", 2), ("to-api", 3)]
    tree = client.get(f"/v2/lbaas/loadbalancers/{lb['id']}/status").json()["statuses"]
    assert {pool["id"] for pool in tree["loadbalancer"]["listeners"][0]["pools"]} == \
        {pools["static"]["id"], pools["api"]["id"]}


@pytest.mark.parametrize(("listener", "pools", "code", "expected"), [
    (http_listener({"action": "REDIRECT_TO_POOL", "redirect_pool": {"protocol": "HTTP"}}), [],
     400, "Validation failure: Pools must be named when creating a fully populated loadbalancer."),
    (http_listener({"action": "REDIRECT_TO_POOL", "redirect_pool": {"name": "nowhere"}}), [],
     400, "Validation failure: Pool 'nowhere' was referenced but no full definition was found."),
    (http_listener({"action": "REDIRECT_TO_POOL"}), [],
     400, "Invalid L7 Policy arguments: redirect_pool_id or redirect_pool must not be None"),
    ({"protocol": "TCP", "protocol_port": 80, "l7policies": [{"action": "REJECT"}]}, [],
     400, "Validation failure: L7 policies are only supported on HTTP and TERMINATED_HTTPS "
          "listeners, not on TCP listeners."),
    (http_listener({"action": "REDIRECT_TO_POOL", "redirect_pool": {"name": "raw"}}),
     [{"name": "raw", "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}],
     400, "Validation failure: The pool protocol 'TCP' is invalid while the listener protocol "
          "is 'HTTP'."),
    (http_listener({"action": "REJECT", "rules": [
        {"type": "FILE_TYPE", "compare_type": "CONTAINS", "value": "png"}]}), [],
     400, "Error parsing L7Rule: Invalid L7 Rule: invalid comparison type for rule type"),
])
def test_single_create_checks_policies_and_creates_nothing_when_wrong(client, listener, pools,
                                                                     code, expected):
    assert fault(post_tree(client, listener, pools), code) == expected
    assert client.get("/v2/lbaas/loadbalancers").json()["loadbalancers"] == []
    assert client.get(POLICIES).json()["l7policies"] == []


def test_single_create_counts_policies_and_rules_against_quotas(client):
    client.put(f"/v2/lbaas/quotas/{PROJECT}", json={"quota": {"l7policy": 1}})
    two = http_listener({"action": "REJECT"}, {"action": "REJECT"})
    assert fault(post_tree(client, two), 403) == "Quota has been met for resources: l7policy"
    client.put(f"/v2/lbaas/quotas/{PROJECT}", json={"quota": {"l7policy": 2, "l7rule": 1}})
    rule = {"type": "PATH", "compare_type": "EQUAL_TO", "value": "/a"}
    two_rules = http_listener({"action": "REJECT", "rules": [rule, rule]})
    assert fault(post_tree(client, two_rules), 403) == "Quota has been met for resources: l7rule"
    assert post_tree(client, two).status_code == 201
