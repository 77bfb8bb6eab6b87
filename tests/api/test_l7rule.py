"""L7 rules: every rule and compare type, upstream's validation, the 50-rule limit, locks."""
from __future__ import annotations

import uuid

import pytest

from tests.helpers import PROJECT
from tests.helpers.api import (
    amphora_updates_held,
    create_lb,
    create_listener,
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
def policy(client, listener):
    response = client.post(POLICIES, json={"l7policy": {"listener_id": listener["id"],
                                                        "action": "REJECT"}})
    assert response.status_code == 201, response.text
    return wait_active(client, f"{POLICIES}/{response.json()['l7policy']['id']}", "l7policy")


def rules_path(policy_id: str) -> str:
    return f"{POLICIES}/{policy_id}/rules"


def post_rule(client, policy_id: str, **body):
    return client.post(rules_path(policy_id), json={"rule": body})


def create_rule(client, policy_id: str, **body) -> dict:
    response = post_rule(client, policy_id, **body)
    assert response.status_code == 201, response.text
    return wait_active(client, f"{rules_path(policy_id)}/{response.json()['rule']['id']}", "rule")


def test_create_rule_locks_policy_listener_and_lb_until_active(client, drivers, lb, listener, policy):
    with amphora_updates_held(drivers):
        response = post_rule(client, policy["id"], type="HOST_NAME", compare_type="EQUAL_TO",
                             value="www.example.com", tags=["edge"])
        assert response.status_code == 201
        rule = response.json()["rule"]
        assert rule["provisioning_status"] == "PENDING_CREATE" and rule["operating_status"] == "OFFLINE"
        assert (rule["type"], rule["compare_type"], rule["key"], rule["value"]) == \
            ("HOST_NAME", "EQUAL_TO", None, "www.example.com")
        assert rule["invert"] is False and rule["admin_state_up"] is True
        assert rule["project_id"] == PROJECT and rule["tags"] == ["edge"]
        assert "l7policy_id" not in rule
        for path, root in ((f"{POLICIES}/{policy['id']}", "l7policy"),
                           (f"/v2/lbaas/listeners/{listener['id']}", "listener")):
            assert client.get(path).json()[root]["provisioning_status"] == "PENDING_UPDATE"
    active = wait_active(client, f"{rules_path(policy['id'])}/{rule['id']}", "rule")
    assert active["operating_status"] == "ONLINE"
    wait_lb_active(client, lb["id"])
    for path, root in ((f"{POLICIES}/{policy['id']}", "l7policy"),
                       (f"/v2/lbaas/listeners/{listener['id']}", "listener")):
        assert client.get(path).json()[root]["provisioning_status"] == "ACTIVE"
    assert client.get(f"{POLICIES}/{policy['id']}").json()["l7policy"]["rules"] == \
        [{"id": rule["id"]}]
    assert client.get(f"/v2.0/lbaas/l7policies/{policy['id']}/rules/{rule['id']}").json()[
        "rule"]["id"] == rule["id"]


VALID = [
    {"type": "HOST_NAME", "compare_type": "ENDS_WITH", "value": ".example.com"},
    {"type": "HOST_NAME", "compare_type": "REGEX", "value": r"^(www|api)\.example\.com$"},
    {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api", "invert": True},
    {"type": "PATH", "compare_type": "CONTAINS", "value": '"/with space"'},
    {"type": "FILE_TYPE", "compare_type": "EQUAL_TO", "value": "png"},
    {"type": "FILE_TYPE", "compare_type": "REGEX", "value": "^(jpe?g|png)$"},
    {"type": "HEADER", "compare_type": "CONTAINS", "key": "User-Agent", "value": "curl"},
    {"type": "HEADER", "compare_type": "REGEX", "key": "X-Env", "value": "^be(ta)?$"},
    {"type": "COOKIE", "compare_type": "EQUAL_TO", "key": "session", "value": "abc=="},
    {"type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "value": "TRUE"},
    {"type": "SSL_VERIFY_RESULT", "compare_type": "EQUAL_TO", "value": "0"},
    {"type": "SSL_DN_FIELD", "compare_type": "STARTS_WITH", "key": "OU", "value": "ops"},
    {"type": "SSL_DN_FIELD", "compare_type": "REGEX", "key": "CN", "value": "^web-[0-9]+$"},
]


@pytest.mark.parametrize("body", VALID, ids=lambda body: f"{body['type']}-{body['compare_type']}")
def test_every_rule_type_is_accepted_with_its_compare_types(client, policy, body):
    rule = create_rule(client, policy["id"], **body)
    assert {key: rule[key] for key in body} == body


PARSE = "Error parsing L7Rule: "


@pytest.mark.parametrize(("body", "expected"), [
    ({"type": "HEADER", "compare_type": "EQUAL_TO", "value": "x"},
     PARSE + "Invalid L7 Rule: L7 rule type requires a key"),
    ({"type": "COOKIE", "compare_type": "EQUAL_TO", "value": "x"},
     PARSE + "Invalid L7 Rule: L7 rule type requires a key"),
    ({"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X Env", "value": "x"},
     PARSE + "Invalid characters in key"),
    ({"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X-Env", "value": "two words"},
     PARSE + "Invalid characters in header value"),
    ({"type": "COOKIE", "compare_type": "EQUAL_TO", "key": "s", "value": "a;b"},
     PARSE + "Invalid characters in cookie value"),
    ({"type": "COOKIE", "compare_type": "REGEX", "key": "s", "value": "(unclosed"},
     PARSE + "Unable to parse regular expression: missing ), unterminated subpattern at "
     "position 0"),
    ({"type": "PATH", "compare_type": "EQUAL_TO", "value": "/a b"},
     PARSE + "Invalid characters in comparison value"),
    ({"type": "PATH", "compare_type": "REGEX", "value": "*"},
     PARSE + "Unable to parse regular expression: nothing to repeat at position 0"),
    ({"type": "FILE_TYPE", "compare_type": "STARTS_WITH", "value": "png"},
     PARSE + "Invalid L7 Rule: invalid comparison type for rule type"),
    ({"type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "value": "yes"},
     PARSE + "Invalid L7 Rule: L7rule value yes is not a boolean True string."),
    ({"type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "key": "k", "value": "true"},
     PARSE + 'Invalid L7 Rule: L7rule type SSL_CONN_HAS_CERT does not use the "key" field.'),
    ({"type": "SSL_CONN_HAS_CERT", "compare_type": "CONTAINS", "value": "true"},
     PARSE + "Invalid L7 Rule: L7rule type SSL_CONN_HAS_CERT only supports the EQUAL_TO "
     "compare type."),
    ({"type": "SSL_VERIFY_RESULT", "compare_type": "EQUAL_TO", "value": "-1"},
     PARSE + "Invalid L7 Rule: L7rule type SSL_VERIFY_RESULT needs a int value, which is >= 0"),
    ({"type": "SSL_VERIFY_RESULT", "compare_type": "REGEX", "value": "1"},
     PARSE + "Invalid L7 Rule: L7rule type SSL_VERIFY_RESULT only supports the EQUAL_TO "
     "compare type."),
    ({"type": "SSL_DN_FIELD", "compare_type": "EQUAL_TO", "value": "ops"},
     PARSE + "Invalid L7 Rule: L7rule type SSL_DN_FIELD needs to specify a key and a value."),
    ({"type": "SSL_DN_FIELD", "compare_type": "EQUAL_TO", "key": "1OU", "value": "ops"},
     PARSE + "Invalid L7 Rule: Invalid L7rule distinguished name field."),
    ({"type": "PATH", "compare_type": "EQUAL_TO", "value": ""},
     PARSE + "Invalid L7 Rule: L7 rule type requires a value"),
    ({"type": "PATH", "compare_type": "EQUAL_TO", "value": "/a\r\nX-Injected: 1"},
     "Invalid input for field/attribute value. Value: '/a\r\nX-Injected: 1'. "
     "Invalid characters in value."),
    ({"type": "PATH", "compare_type": "LIKE", "value": "/a"},
     "Invalid input for field/attribute compare_type. Value: 'LIKE'. Value should be one of: "
     "REGEX, STARTS_WITH, ENDS_WITH, CONTAINS, EQUAL_TO."),
    ({"type": "QUERY", "compare_type": "EQUAL_TO", "value": "/a"},
     "Invalid input for field/attribute type. Value: 'QUERY'. Value should be one of: "
     "HOST_NAME, PATH, FILE_TYPE, HEADER, COOKIE, SSL_CONN_HAS_CERT, SSL_VERIFY_RESULT, "
     "SSL_DN_FIELD."),
    ({"type": "PATH", "compare_type": "EQUAL_TO"},
     "Invalid input for field/attribute value. Value: 'None'. Mandatory field missing."),
    ({"type": "PATH", "compare_type": "EQUAL_TO", "value": "x" * 256},
     f"Invalid input for field/attribute value. Value: '{'x' * 256}'. "
     "String should have at most 255 characters."),
])
def test_invalid_rules_are_rejected_in_upstreams_words(client, policy, body, expected):
    assert fault(post_rule(client, policy["id"], **body), 400) == expected
    assert client.get(rules_path(policy["id"])).json()["rules"] == []


def test_a_policy_takes_at_most_50_rules(client, listener):
    rules = [{"type": "PATH", "compare_type": "EQUAL_TO", "value": f"/{n}"} for n in range(51)]
    response = client.post(POLICIES, json={"l7policy": {"listener_id": listener["id"],
                                                        "action": "REJECT", "rules": rules}})
    assert fault(response, 409).startswith("Too many rules on L7 policy ")
    response = client.post(POLICIES, json={"l7policy": {"listener_id": listener["id"],
                                                        "action": "REJECT", "rules": rules[:50]}})
    assert response.status_code == 201
    policy = wait_active(client, f"{POLICIES}/{response.json()['l7policy']['id']}", "l7policy")
    text = fault(post_rule(client, policy["id"], type="PATH", compare_type="EQUAL_TO", value="/x"),
                 409)
    assert text == f"Too many rules on L7 policy {policy['id']}"


def test_update_is_checked_against_the_rule_it_makes(client, lb, policy):
    rule = create_rule(client, policy["id"], type="PATH", compare_type="STARTS_WITH", value="/a",
                       invert=True)
    path = f"{rules_path(policy['id'])}/{rule['id']}"
    text = fault(client.put(path, json={"rule": {"type": "HEADER"}}), 400)
    assert text == PARSE + "Invalid L7 Rule: L7 rule type requires a key"
    text = fault(client.put(path, json={"rule": {"compare_type": None}}), 400)
    assert text == PARSE + "Invalid L7 Rule: invalid comparison type for rule type"
    response = client.put(path, json={"rule": {"type": "HEADER", "key": "X-Env", "value": "beta",
                                               "invert": None, "tags": ["t"]}})
    assert response.status_code == 200
    updated = response.json()["rule"]
    assert updated["provisioning_status"] == "PENDING_UPDATE"
    assert (updated["type"], updated["key"], updated["value"], updated["invert"]) == \
        ("HEADER", "X-Env", "beta", False)
    assert updated["compare_type"] == "STARTS_WITH" and updated["tags"] == ["t"]
    wait_active(client, path, "rule")
    response = client.put(path, json={"rule": {"admin_state_up": False}})
    assert response.status_code == 200
    assert wait_active(client, path, "rule")["operating_status"] == "OFFLINE"
    wait_lb_active(client, lb["id"])


def test_delete_rule_removes_it_from_the_policy(client, lb, policy):
    rule = create_rule(client, policy["id"], type="PATH", compare_type="EQUAL_TO", value="/a")
    path = f"{rules_path(policy['id'])}/{rule['id']}"
    assert client.delete(path).status_code == 204
    wait_gone(client, path)
    assert client.get(f"{POLICIES}/{policy['id']}").json()["l7policy"]["rules"] == []
    assert wait_lb_active(client, lb["id"])["provisioning_status"] == "ACTIVE"


def test_rule_of_another_policy_or_unknown_is_404(client, listener, policy):
    other = client.post(POLICIES, json={"l7policy": {"listener_id": listener["id"],
                                                     "action": "REJECT"}}).json()["l7policy"]
    wait_active(client, f"{POLICIES}/{other['id']}", "l7policy")
    rule = create_rule(client, policy["id"], type="PATH", compare_type="EQUAL_TO", value="/a")
    expected = f"L7Rule {rule['id']} not found."
    assert fault(client.get(f"{rules_path(other['id'])}/{rule['id']}"), 404) == expected
    assert fault(client.delete(f"{rules_path(other['id'])}/{rule['id']}"), 404) == expected
    missing = str(uuid.uuid4())
    assert fault(post_rule(client, missing, type="PATH", compare_type="EQUAL_TO", value="/a"),
                 404) == f"L7Policy {missing} not found."


def test_rule_changes_need_an_active_policy_and_an_idle_load_balancer(client, drivers, lb, policy):
    rule = create_rule(client, policy["id"], type="PATH", compare_type="EQUAL_TO", value="/a")
    path = f"{rules_path(policy['id'])}/{rule['id']}"
    with amphora_updates_held(drivers):
        assert client.put(path, json={"rule": {"value": "/b"}}).status_code == 200
        expected = f"L7Policy {policy['id']} is immutable and cannot be updated."
        assert fault(post_rule(client, policy["id"], type="PATH", compare_type="EQUAL_TO",
                               value="/c"), 409) == expected
        assert fault(client.delete(path), 409) == expected
    wait_lb_active(client, lb["id"])
    with amphora_updates_held(drivers):
        client.put(f"/v2/lbaas/loadbalancers/{lb['id']}", json={"loadbalancer": {"name": "x"}})
        assert fault(client.delete(path), 409) == \
            f"Load Balancer {lb['id']} is immutable and cannot be updated."
    wait_lb_active(client, lb["id"])


def test_list_filters_and_fields(client, policy):
    create_rule(client, policy["id"], type="PATH", compare_type="EQUAL_TO", value="/a")
    create_rule(client, policy["id"], type="HOST_NAME", compare_type="EQUAL_TO", value="a.example",
                invert=True)
    listed = client.get(f"{rules_path(policy['id'])}?type=HOST_NAME").json()
    assert [rule["value"] for rule in listed["rules"]] == ["a.example"]
    assert listed["rules_links"] == []
    assert [rule["value"] for rule in client.get(f"{rules_path(policy['id'])}?invert=false")
            .json()["rules"]] == ["/a"]
    trimmed = client.get(f"{rules_path(policy['id'])}?fields=value&sort=value:desc").json()["rules"]
    assert trimmed == [{"value": "a.example"}, {"value": "/a"}]


def test_rule_quota_is_enforced(client, policy):
    client.put(f"/v2/lbaas/quotas/{PROJECT}", json={"quota": {"l7rule": 1}})
    create_rule(client, policy["id"], type="PATH", compare_type="EQUAL_TO", value="/a")
    text = fault(post_rule(client, policy["id"], type="PATH", compare_type="EQUAL_TO", value="/b"),
                 403)
    assert text == "Quota has been met for resources: l7rule"
