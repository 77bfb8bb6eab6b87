"""Upstream's roles against ``lbaas up`` with real Keystone tokens: who may do what.

Users hold one role each in project alpha or beta (see conftest). Another project's
objects answer 404 to its members and observers; a rule that refuses answers upstream's
403 fault.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import re

import httpx
import pytest

from tests.clients.conftest import SUBNET
from tests.clients.test_openstack_cli import LB_PATH, create_lb, wait_status
from tests.rbac.conftest import Keystone, KeystoneService, user_name

FORBIDDEN = {"faultcode": "Client", "faultstring": "Policy does not allow this request to be performed.",
             "debuginfo": None}
UNAUTHORIZED = {"error": {"code": 401, "title": "Unauthorized",
                          "message": "The request you have made requires authentication."}}


def as_user(service: KeystoneService, role: str, project: str = "alpha") -> httpx.Client:
    """An HTTP client of the API carrying the token of ``<project>-<role>``."""
    assert service.keystone is not None
    token = service.keystone.token(user_name(project, role), project)
    return httpx.Client(base_url=service.url, headers={"X-Auth-Token": token}, timeout=30)


@pytest.fixture(scope="module")
def clients(lbaas_keystone: KeystoneService) -> Iterator[dict[str, httpx.Client]]:
    """One client per user, keyed ``<project>-<role>`` (and ``admin``, Keystone's admin)."""
    keystone = lbaas_keystone.keystone
    assert keystone is not None
    made = {user_name(project, role): as_user(lbaas_keystone, role, project)
            for project in ("alpha", "beta")
            for role in ("observer", "global_observer", "member", "quota_admin", "admin", "none")}
    made["admin"] = httpx.Client(base_url=lbaas_keystone.url, timeout=30, headers={
        "X-Auth-Token": keystone.admin_token})
    yield made
    for client in made.values():
        client.close()


@pytest.fixture(scope="module")
def lbs(clients: dict[str, httpx.Client]) -> dict[str, dict[str, Any]]:
    """An ACTIVE load balancer in each project, created by that project's member."""
    return {project: create_lb(clients[f"{project}-member"], f"lb-{project}") for project in ("alpha", "beta")}


def project_of(keystone: Keystone, project: str) -> str:
    return keystone.project_ids[project]


def test_a_request_without_a_valid_token_is_refused_with_keystones_401(lbaas_keystone):
    for headers in ({}, {"X-Auth-Token": "not-a-token"}):
        response = httpx.get(lbaas_keystone.url + LB_PATH, headers=headers, timeout=30)
        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED
        assert response.headers["www-authenticate"].startswith("Keystone uri=")


def test_version_discovery_needs_no_token(lbaas_keystone):
    assert httpx.get(lbaas_keystone.url + "/", timeout=30).status_code == 200


def test_identity_headers_from_the_client_are_not_trusted(clients, lbs, lbaas_keystone):
    """An observer who claims the admin role and another project still sees only its own."""
    response = clients["alpha-observer"].get(LB_PATH, headers={
        "X-Roles": "admin", "X-Project-Id": project_of(lbaas_keystone.keystone, "beta")})
    assert [lb["id"] for lb in response.json()["loadbalancers"]] == [lbs["alpha"]["id"]]


@pytest.mark.parametrize("user", ["alpha-observer", "alpha-member"])
def test_project_users_list_and_show_only_their_own_project(clients, lbs, user):
    client = clients[user]
    listed = client.get(LB_PATH).json()["loadbalancers"]
    assert [lb["id"] for lb in listed] == [lbs["alpha"]["id"]]
    assert client.get(f"{LB_PATH}/{lbs['alpha']['id']}").status_code == 200
    other = client.get(f"{LB_PATH}/{lbs['beta']['id']}")
    assert other.status_code == 404
    assert other.json()["faultstring"] == f"Load Balancer {lbs['beta']['id']} not found."
    assert client.get(f"{LB_PATH}/{lbs['beta']['id']}/status").status_code == 404


@pytest.mark.parametrize("user", ["alpha-observer", "alpha-member"])
def test_a_project_filter_on_another_project_needs_global_read(clients, lbs, lbaas_keystone, user):
    beta = project_of(lbaas_keystone.keystone, "beta")
    response = clients[user].get(LB_PATH, params={"project_id": beta})
    assert (response.status_code, response.json()) == (403, FORBIDDEN)
    alpha = project_of(lbaas_keystone.keystone, "alpha")
    assert clients[user].get(LB_PATH, params={"project_id": alpha}).status_code == 200


def test_a_member_cannot_change_another_projects_objects(clients, lbs):
    member, beta_lb = clients["alpha-member"], f"{LB_PATH}/{lbs['beta']['id']}"
    assert member.put(beta_lb, json={"loadbalancer": {"name": "taken"}}).status_code == 404
    assert member.delete(beta_lb).status_code == 404
    listener = member.post("/v2/lbaas/listeners", json={"listener": {
        "loadbalancer_id": lbs["beta"]["id"], "protocol": "HTTP", "protocol_port": 80}})
    assert listener.status_code == 400  # a referenced object of another project is "not found"
    assert clients["beta-admin"].get(beta_lb).json()["loadbalancer"]["name"] == "lb-beta"


def test_a_member_cannot_create_in_another_project(clients, lbaas_keystone):
    response = clients["alpha-member"].post(LB_PATH, json={"loadbalancer": {
        "vip_subnet_id": SUBNET, "project_id": project_of(lbaas_keystone.keystone, "beta")}})
    assert (response.status_code, response.json()) == (403, FORBIDDEN)


def test_a_member_changes_its_own_projects_objects(clients, lbs, lbaas_keystone):
    member, path = clients["alpha-member"], f"{LB_PATH}/{lbs['alpha']['id']}"
    response = member.put(path, json={"loadbalancer": {"description": "by alpha-member"}})
    assert response.status_code == 200, response.text
    assert wait_status(member, path)["description"] == "by alpha-member"
    assert response.json()["loadbalancer"]["project_id"] == project_of(lbaas_keystone.keystone, "alpha")


@pytest.mark.parametrize("user", ["alpha-observer", "alpha-global_observer", "alpha-quota_admin",
                                  "alpha-none"])
def test_users_without_write_access_cannot_change_anything(clients, lbs, user):
    client, path = clients[user], f"{LB_PATH}/{lbs['alpha']['id']}"
    for response in (client.post(LB_PATH, json={"loadbalancer": {"vip_subnet_id": SUBNET}}),
                     client.put(path, json={"loadbalancer": {"name": "nope"}}),
                     client.delete(path)):
        assert (response.status_code, response.json()) == (403, FORBIDDEN)


@pytest.mark.parametrize("user", ["alpha-quota_admin", "alpha-none"])
def test_users_without_a_read_role_cannot_read(clients, lbs, user):
    for path in (LB_PATH, f"{LB_PATH}/{lbs['alpha']['id']}", "/v2/lbaas/pools", "/v2/lbaas/providers"):
        response = clients[user].get(path)
        assert (response.status_code, response.json()) == (403, FORBIDDEN)


def test_global_observers_read_every_project_but_change_nothing(clients, lbs, lbaas_keystone):
    observer = clients["alpha-global_observer"]
    listed = {lb["id"] for lb in observer.get(LB_PATH).json()["loadbalancers"]}
    assert {lbs["alpha"]["id"], lbs["beta"]["id"]} <= listed
    assert observer.get(f"{LB_PATH}/{lbs['beta']['id']}").status_code == 200
    beta = project_of(lbaas_keystone.keystone, "beta")
    filtered = observer.get(LB_PATH, params={"project_id": beta}).json()["loadbalancers"]
    assert [lb["id"] for lb in filtered] == [lbs["beta"]["id"]]
    response = observer.put(f"{LB_PATH}/{lbs['beta']['id']}", json={"loadbalancer": {"name": "x"}})
    assert (response.status_code, response.json()) == (403, FORBIDDEN)


@pytest.mark.parametrize("user", ["alpha-admin", "admin"])
def test_admins_read_and_change_every_project(clients, lbs, user):
    client, path = clients[user], f"{LB_PATH}/{lbs['beta']['id']}"
    listed = {lb["id"] for lb in client.get(LB_PATH).json()["loadbalancers"]}
    assert {lbs["alpha"]["id"], lbs["beta"]["id"]} <= listed
    response = client.put(path, json={"loadbalancer": {"description": f"by {user}"}})
    assert response.status_code == 200, response.text
    wait_status(client, path)


def test_quotas_own_project_readable_others_only_by_quota_admins(clients, lbaas_keystone):
    alpha = project_of(lbaas_keystone.keystone, "alpha")
    beta = project_of(lbaas_keystone.keystone, "beta")
    for user in ("alpha-observer", "alpha-member"):
        assert clients[user].get(f"/v2/lbaas/quotas/{alpha}").status_code == 200
        response = clients[user].get(f"/v2/lbaas/quotas/{beta}")
        assert (response.status_code, response.json()) == (403, FORBIDDEN)
        response = clients[user].put(f"/v2/lbaas/quotas/{alpha}", json={"quota": {"pool": 5}})
        assert (response.status_code, response.json()) == (403, FORBIDDEN)
    quota_admin = clients["alpha-quota_admin"]
    assert quota_admin.get(f"/v2/lbaas/quotas/{beta}").status_code == 200
    response = quota_admin.put(f"/v2/lbaas/quotas/{beta}", json={"quota": {"pool": 5}})
    assert response.status_code == 202, response.text
    assert clients["beta-member"].get(f"/v2/lbaas/quotas/{beta}").json()["quota"]["pool"] == 5
    assert quota_admin.delete(f"/v2/lbaas/quotas/{beta}").status_code == 202


# Admin-only APIs: (method, path); "{lb}" is alpha's load balancer.
ADMIN_ONLY = [
    ("PUT", LB_PATH + "/{lb}/failover"),
    ("GET", "/v2/lbaas/providers/amphora/flavor_capabilities"),
    ("GET", "/v2/lbaas/providers/amphora/availability_zone_capabilities"),
    ("GET", "/v2/octavia/amphorae"),
    ("GET", "/v2/lbaas/flavorprofiles"),
    ("GET", "/v2/lbaas/availabilityzoneprofiles"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ONLY)
def test_admin_only_apis(clients, lbs, lbaas_keystone, method, path):
    path = path.format(lb=lbs["alpha"]["id"])
    served = clients["admin"].get("/openapi.json").json()["paths"]
    if not any(re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", known), path) for known in served):
        pytest.skip(f"{path} is not served by this build yet")
    for user in ("alpha-member", "alpha-global_observer", "alpha-quota_admin"):
        response = clients[user].request(method, path)
        assert (response.status_code, response.json()) == (403, FORBIDDEN), user
    for user in ("alpha-admin", "admin"):
        response = clients[user].request(method, path)
        assert response.status_code in (200, 202), f"{user}: {response.text}"
        wait_status(clients["admin"], f"{LB_PATH}/{lbs['alpha']['id']}")  # after a failover


def test_flavors_are_readable_by_project_users_and_changed_only_by_admins(clients):
    for user in ("alpha-observer", "alpha-member"):
        assert clients[user].get("/v2/lbaas/flavors").status_code == 200
        response = clients[user].post("/v2/lbaas/flavors", json={"flavor": {"name": "gold"}})
        assert (response.status_code, response.json()) == (403, FORBIDDEN)
    assert clients["alpha-admin"].get("/v2/lbaas/flavorprofiles").status_code == 200


def test_l7_policies_and_rules_follow_their_load_balancers_project(clients, lbs):
    member, lb_path = clients["alpha-member"], f"{LB_PATH}/{lbs['alpha']['id']}"
    listener = member.post("/v2/lbaas/listeners", json={"listener": {
        "loadbalancer_id": lbs["alpha"]["id"], "protocol": "HTTP", "protocol_port": 8080}})
    assert listener.status_code == 201, listener.text
    wait_status(member, lb_path)
    created = member.post("/v2/lbaas/l7policies", json={"l7policy": {
        "listener_id": listener.json()["listener"]["id"], "action": "REJECT"}})
    assert created.status_code == 201, created.text
    wait_status(member, lb_path)
    policy_path = f"/v2/lbaas/l7policies/{created.json()['l7policy']['id']}"
    assert clients["alpha-observer"].get(policy_path).status_code == 200
    assert clients["beta-member"].get(policy_path).status_code == 404
    assert clients["beta-member"].get(policy_path + "/rules").status_code == 404
    rule = {"rule": {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/x"}}
    response = clients["alpha-observer"].post(policy_path + "/rules", json=rule)
    assert (response.status_code, response.json()) == (403, FORBIDDEN)
    assert member.post(policy_path + "/rules", json=rule).status_code == 201
    wait_status(member, lb_path)
