"""Upstream's policy against ``lbaas up`` with real Keystone tokens: who may do what.

Each persona is a real Keystone user: one of Keystone's default roles (reader, member,
admin) in project alpha, one of upstream's deprecated load-balancer_* roles there, a
role no rule names (guest), Keystone's bootstrap admin, and system-scoped tokens. Every
persona sends the same requests, for every resource and verb, to two services: upstream's
default policy (``enforce_new_defaults = true``) and one that still honours the
deprecated roles (``false``). Project alpha is the persona's own, beta is another's.

A request that must not change anything is used wherever one tells the answer apart: a
body the schema refuses (400 when the rule lets the caller in, 403 when not), an id that
does not exist (404 or 403). A request that would really change another project's object
is sent only by personas that must be refused.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.helpers.keystone import FORBIDDEN, PASSWORD, Keystone, KeystoneService, client, user_name
from tests.helpers.openstack_cli import LB_PATH, create_child, create_lb, wait_gone, wait_status
from tests.helpers.service import SUBNET

# One Keystone for the whole run: every module using it runs on the same xdist worker.
pytestmark = pytest.mark.xdist_group("keystone")

UNAUTHORIZED = {"error": {"code": 401, "title": "Unauthorized",
                          "message": "The request you have made requires authentication."}}
MISSING = str(uuid.UUID(int=7))

# What a persona may do (its access level under one mode of the policy).
NONE, READ, READ_ALL, WRITE, QUOTA, ADMIN = "none", "read", "read-all", "write", "quota", "admin"
# persona -> (level with enforce_new_defaults = true, level with false). Project personas
# are alpha's users; "keystone-admin" is Keystone's bootstrap admin (project admin);
# "system-admin" and "system-reader" hold system-scoped tokens.
PERSONAS: dict[str, tuple[str, str]] = {
    "reader": (READ, READ),
    "member": (WRITE, WRITE),
    "admin": (ADMIN, ADMIN),
    "keystone-admin": (ADMIN, ADMIN),
    "system-admin": (ADMIN, ADMIN),
    "system-reader": (NONE, NONE),
    "load-balancer_observer": (NONE, READ),
    "load-balancer_global_observer": (NONE, READ_ALL),
    "load-balancer_member": (NONE, WRITE),
    "load-balancer_quota_admin": (NONE, QUOTA),
    "load-balancer_admin": (NONE, ADMIN),
    "guest": (NONE, NONE),
}
# kind of access -> the levels that have it.
GRANTS: dict[str, set[str]] = {
    "read-own": {READ, READ_ALL, WRITE, ADMIN},
    "read-other": {READ_ALL, ADMIN},
    "write-own": {WRITE, ADMIN},
    "write-other": {ADMIN},
    "quota-read-own": {READ, READ_ALL, WRITE, QUOTA, ADMIN},
    "quota-read-other": {READ_ALL, QUOTA, ADMIN},
    "quota-write": {QUOTA, ADMIN},
    "admin": {ADMIN},
}


@dataclass(frozen=True)
class Probe:
    method: str
    path: str  # with {alpha.lb}-style fields of the two projects' trees
    grant: str  # a key of GRANTS
    status: int  # the answer when the persona has the grant
    body: Any = None
    changes: bool = False  # sent only by personas that must be refused


def _objects(name: str, collection: str, root: str, update: dict[str, Any]) -> list[Probe]:
    """List, show, create, update and delete of one kind of project object."""
    own, other = f"{collection}/{{alpha.{name}}}", f"{collection}/{{beta.{name}}}"
    return [
        Probe("GET", collection, "read-own", 200),
        Probe("GET", own, "read-own", 200),
        Probe("GET", other, "read-other", 200),
        Probe("POST", collection, "write-own", 400, {root: {"bogus": 1}}),
        Probe("PUT", own, "write-own", 400, {root: {"bogus": 1}}),
        Probe("PUT", other, "write-other", 200, {root: update}, changes=True),
        Probe("DELETE", f"{collection}/{MISSING}", "write-own", 404),
        Probe("DELETE", other, "write-other", 204, changes=True),
    ]


LISTENERS, POOLS, MONITORS = "/v2/lbaas/listeners", "/v2/lbaas/pools", "/v2/lbaas/healthmonitors"
L7POLICIES = "/v2/lbaas/l7policies"
PROBES: list[Probe] = [
    *_objects("lb", LB_PATH, "loadbalancer", {"description": "taken"}),
    Probe("GET", LB_PATH + "?project_id={alpha.project}", "read-own", 200),
    Probe("GET", LB_PATH + "?project_id={beta.project}", "read-other", 200),
    Probe("GET", LB_PATH + "/{alpha.lb}/status", "read-own", 200),
    Probe("GET", LB_PATH + "/{beta.lb}/status", "read-other", 200),
    Probe("GET", LB_PATH + "/{alpha.lb}/stats", "read-own", 200),
    Probe("GET", LB_PATH + "/{beta.lb}/stats", "read-other", 200),
    Probe("POST", LB_PATH, "write-other", 201, changes=True,
          body={"loadbalancer": {"vip_subnet_id": SUBNET, "project_id": "{beta.project}"}}),
    Probe("PUT", LB_PATH + f"/{MISSING}/failover", "admin", 404),
    *_objects("listener", LISTENERS, "listener", {"description": "taken"}),
    Probe("GET", LISTENERS + "/{alpha.listener}/stats", "read-own", 200),
    Probe("GET", LISTENERS + "/{beta.listener}/stats", "read-other", 200),
    Probe("POST", LISTENERS, "write-other", 201, changes=True, body={"listener": {
        "loadbalancer_id": "{beta.lb}", "protocol": "HTTP", "protocol_port": 8081}}),
    *_objects("pool", POOLS, "pool", {"description": "taken"}),
    Probe("POST", POOLS, "write-other", 201, changes=True, body={"pool": {
        "loadbalancer_id": "{beta.lb}", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}}),
    Probe("POST", POOLS, "write-other", 201, changes=True, body={"pool": {
        "listener_id": "{beta.listener}", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}}),
    Probe("GET", POOLS + "/{alpha.pool}/members", "read-own", 200),
    Probe("GET", POOLS + "/{beta.pool}/members", "read-other", 200),
    Probe("GET", POOLS + "/{alpha.pool}/members/{alpha.member}", "read-own", 200),
    Probe("GET", POOLS + "/{beta.pool}/members/{beta.member}", "read-other", 200),
    Probe("POST", POOLS + "/{alpha.pool}/members", "write-own", 400, {"member": {"bogus": 1}}),
    Probe("POST", POOLS + "/{beta.pool}/members", "write-other", 201, changes=True,
          body={"member": {"address": "192.0.2.77", "protocol_port": 80}}),
    Probe("PUT", POOLS + "/{alpha.pool}/members/{alpha.member}", "write-own", 400,
          {"member": {"bogus": 1}}),
    Probe("PUT", POOLS + "/{beta.pool}/members/{beta.member}", "write-other", 200, changes=True,
          body={"member": {"name": "taken"}}),
    Probe("PUT", POOLS + "/{beta.pool}/members", "write-other", 202, changes=True,
          body={"members": []}),
    Probe("DELETE", POOLS + "/{alpha.pool}/members/" + MISSING, "write-own", 404),
    Probe("DELETE", POOLS + "/{beta.pool}/members/{beta.member}", "write-other", 204, changes=True),
    *_objects("hm", MONITORS, "healthmonitor", {"name": "taken"}),
    Probe("POST", MONITORS, "write-other", 201, changes=True, body={"healthmonitor": {
        "pool_id": "{beta.pool}", "type": "TCP", "delay": 5, "timeout": 3, "max_retries": 3}}),
    *_objects("l7policy", L7POLICIES, "l7policy", {"description": "taken"}),
    Probe("POST", L7POLICIES, "write-other", 201, changes=True, body={"l7policy": {
        "listener_id": "{beta.listener}", "action": "REJECT"}}),
    Probe("GET", L7POLICIES + "/{alpha.l7policy}/rules", "read-own", 200),
    Probe("GET", L7POLICIES + "/{beta.l7policy}/rules", "read-other", 200),
    Probe("GET", L7POLICIES + "/{alpha.l7policy}/rules/{alpha.l7rule}", "read-own", 200),
    Probe("GET", L7POLICIES + "/{beta.l7policy}/rules/{beta.l7rule}", "read-other", 200),
    Probe("POST", L7POLICIES + "/{alpha.l7policy}/rules", "write-own", 400, {"rule": {"bogus": 1}}),
    Probe("POST", L7POLICIES + "/{beta.l7policy}/rules", "write-other", 201, changes=True,
          body={"rule": {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/x"}}),
    Probe("PUT", L7POLICIES + "/{alpha.l7policy}/rules/{alpha.l7rule}", "write-own", 400,
          {"rule": {"bogus": 1}}),
    Probe("PUT", L7POLICIES + "/{beta.l7policy}/rules/{beta.l7rule}", "write-other", 200,
          changes=True, body={"rule": {"invert": False}}),
    Probe("DELETE", L7POLICIES + "/{alpha.l7policy}/rules/" + MISSING, "write-own", 404),
    Probe("DELETE", L7POLICIES + "/{beta.l7policy}/rules/{beta.l7rule}", "write-other", 204,
          changes=True),
    # Quotas: the path names the project.
    Probe("GET", "/v2/lbaas/quotas", "quota-read-own", 200),
    Probe("GET", "/v2/lbaas/quotas?project_id={beta.project}", "quota-read-other", 200),
    Probe("GET", "/v2/lbaas/quotas/{alpha.project}", "quota-read-own", 200),
    Probe("GET", "/v2/lbaas/quotas/{alpha.project}/default", "quota-read-own", 200),
    Probe("GET", "/v2/lbaas/quotas/{beta.project}", "quota-read-other", 200),
    Probe("PUT", "/v2/lbaas/quotas/{alpha.project}", "quota-write", 400, {"quota": {"bogus": 1}}),
    Probe("PUT", "/v2/lbaas/quotas/{beta.project}", "quota-write", 400, {"quota": {"bogus": 1}}),
    Probe("DELETE", f"/v2/lbaas/quotas/{uuid.UUID(int=8).hex}", "quota-write", 202),
    # Catalogs everyone reads, changed by admins only.
    Probe("GET", "/v2/lbaas/providers", "read-own", 200),
    Probe("GET", "/v2/lbaas/flavors", "read-own", 200),
    Probe("GET", f"/v2/lbaas/flavors/{MISSING}", "read-own", 404),
    Probe("POST", "/v2/lbaas/flavors", "admin", 400, {"flavor": {"bogus": 1}}),
    Probe("PUT", f"/v2/lbaas/flavors/{MISSING}", "admin", 400, {"flavor": {"bogus": 1}}),
    Probe("DELETE", f"/v2/lbaas/flavors/{MISSING}", "admin", 404),
    Probe("GET", "/v2/lbaas/availabilityzones", "read-own", 200),
    Probe("POST", "/v2/lbaas/availabilityzones", "admin", 400, {"availability_zone": {"bogus": 1}}),
    Probe("DELETE", "/v2/lbaas/availabilityzones/nowhere", "admin", 404),
    Probe("GET", "/v2.0/networks", "read-own", 200),
    Probe("GET", "/v2.0/subnets", "read-own", 200),
    # Admin-only APIs.
    Probe("GET", "/v2/lbaas/flavorprofiles", "admin", 200),
    Probe("POST", "/v2/lbaas/flavorprofiles", "admin", 400, {"flavorprofile": {"bogus": 1}}),
    Probe("GET", "/v2/lbaas/availabilityzoneprofiles", "admin", 200),
    Probe("POST", "/v2/lbaas/availabilityzoneprofiles", "admin", 400,
          {"availability_zone_profile": {"bogus": 1}}),
    Probe("GET", "/v2/lbaas/providers/amphora/flavor_capabilities", "admin", 200),
    Probe("GET", "/v2/lbaas/providers/amphora/availability_zone_capabilities", "admin", 200),
    Probe("GET", "/v2/octavia/amphorae", "admin", 200),
    Probe("GET", f"/v2/octavia/amphorae/{MISSING}", "admin", 404),
    Probe("GET", f"/v2/octavia/amphorae/{MISSING}/stats", "admin", 404),
    Probe("PUT", f"/v2/octavia/amphorae/{MISSING}/failover", "admin", 404),
    Probe("PUT", f"/v2/octavia/amphorae/{MISSING}/config", "admin", 404),
    Probe("DELETE", f"/v2/octavia/amphorae/{MISSING}", "admin", 404),
    Probe("GET", "/metrics", "admin", 200),
]


class Tree(dict[str, str]):
    """The ids of one project's objects: project, lb, listener, pool, member, hm,
    l7policy, l7rule (``str.format`` reads them as ``{alpha.lb}``)."""

    def __getattr__(self, name: str) -> str:
        return self[name]


def build_tree(http: httpx.Client, project_id: str, name: str) -> Tree:
    """A load balancer with a listener, its default pool, a member, a health monitor and
    an L7 policy with a rule, created by a user holding Keystone's member role."""
    lb = create_lb(http, name)
    tree = Tree(project=project_id, lb=lb["id"])
    tree["listener"] = create_child(http, lb["id"], LISTENERS, "listener", loadbalancer_id=lb["id"],
                                    protocol="HTTP", protocol_port=80)["id"]
    tree["pool"] = create_child(http, lb["id"], POOLS, "pool", listener_id=tree.listener,
                                protocol="HTTP", lb_algorithm="ROUND_ROBIN")["id"]
    tree["member"] = create_child(http, lb["id"], f"{POOLS}/{tree.pool}/members", "member",
                                  address="192.0.2.10", protocol_port=80)["id"]
    tree["hm"] = create_child(http, lb["id"], MONITORS, "healthmonitor", pool_id=tree.pool,
                              type="HTTP", delay=5, timeout=3, max_retries=3)["id"]
    tree["l7policy"] = create_child(http, lb["id"], L7POLICIES, "l7policy",
                                    listener_id=tree.listener, action="REJECT")["id"]
    tree["l7rule"] = create_child(http, lb["id"], f"{L7POLICIES}/{tree.l7policy}/rules", "rule",
                                  type="PATH", compare_type="STARTS_WITH", value="/x")["id"]
    return tree




def persona_token(keystone: Keystone, persona: str) -> str:
    if persona == "keystone-admin":
        return keystone.admin_token
    if persona == "system-admin":
        return keystone.token("admin", None, "admin-secret")
    if persona == "system-reader":
        return keystone.token("system-reader", None, PASSWORD)
    return keystone.token(user_name("alpha", persona), "alpha")


@dataclass
class Deployment:
    service: KeystoneService
    trees: dict[str, Tree]
    legacy: bool

    def as_persona(self, persona: str) -> httpx.Client:
        assert self.service.keystone is not None
        return client(self.service, persona_token(self.service.keystone, persona))

    def as_user(self, project: str, role: str) -> httpx.Client:
        assert self.service.keystone is not None
        return client(self.service, self.service.keystone.token(user_name(project, role), project))


def deployment(service: KeystoneService, legacy: bool) -> Iterator[Deployment]:
    assert service.keystone is not None
    trees = {}
    for project in ("alpha", "beta"):
        with client(service, service.keystone.token(user_name(project, "member"), project)) as http:
            trees[project] = build_tree(http, service.keystone.project_ids[project], f"lb-{project}")
    yield Deployment(service, trees, legacy)


@pytest.fixture(scope="module")
def new_defaults(lbaas_keystone: KeystoneService) -> Iterator[Deployment]:
    yield from deployment(lbaas_keystone, legacy=False)


@pytest.fixture(scope="module")
def legacy(lbaas_keystone_legacy: KeystoneService) -> Iterator[Deployment]:
    yield from deployment(lbaas_keystone_legacy, legacy=True)


@pytest.fixture(params=["new_defaults", "legacy"])
def deployed(request: pytest.FixtureRequest) -> Deployment:
    """Each test below runs against both policies."""
    return request.getfixturevalue(request.param)


def render(value: Any, trees: dict[str, Tree]) -> Any:
    if isinstance(value, str):
        return value.format(alpha=trees["alpha"], beta=trees["beta"])
    if isinstance(value, dict):
        return {key: render(item, trees) for key, item in value.items()}
    return value


@pytest.mark.parametrize("persona", list(PERSONAS))
def test_every_resource_and_verb_by_persona(deployed, persona):
    """Each persona's answers to every probe: the grant's status where its level has the
    grant, else upstream's 403 fault."""
    level = PERSONAS[persona][deployed.legacy]
    wrong = []
    with deployed.as_persona(persona) as http:
        for probe in PROBES:
            allowed = level in GRANTS[probe.grant]
            if allowed and probe.changes:
                continue
            path = render(probe.path, deployed.trees)
            response = http.request(probe.method, path, json=render(probe.body, deployed.trees))
            expected = probe.status if allowed else 403
            if response.status_code != expected or (not allowed and response.json() != FORBIDDEN):
                wrong.append(f"{probe.method} {probe.path}: {response.status_code} "
                             f"(wanted {expected}) {response.text[:200]}")
    assert wrong == [], f"{persona} ({level}):\n" + "\n".join(wrong)


def test_lists_show_only_the_callers_project_unless_it_reads_every_project(deployed):
    alpha, beta = deployed.trees["alpha"], deployed.trees["beta"]
    readers = ["reader", "member"] + (["load-balancer_observer", "load-balancer_member"]
                                      if deployed.legacy else [])
    for persona in readers:
        with deployed.as_persona(persona) as http:
            for path, key in ((LB_PATH, "loadbalancers"), (POOLS, "pools"), (LISTENERS, "listeners"),
                              (MONITORS, "healthmonitors"), (L7POLICIES, "l7policies")):
                listed = {obj["project_id"] for obj in http.get(path).json()[key]}
                assert listed == {alpha.project}, (persona, path, listed)
    everyone = ["admin", "keystone-admin", "system-admin"] + (
        ["load-balancer_global_observer"] if deployed.legacy else [])
    for persona in everyone:
        with deployed.as_persona(persona) as http:
            listed = {lb["id"] for lb in http.get(LB_PATH).json()["loadbalancers"]}
            assert {alpha.lb, beta.lb} <= listed, persona
            filtered = http.get(LB_PATH, params={"project_id": beta.project}).json()["loadbalancers"]
            assert {lb["project_id"] for lb in filtered} == {beta.project}, persona


def test_another_projects_object_is_forbidden_not_hidden(deployed):
    beta = deployed.trees["beta"]
    with deployed.as_persona("member") as http:
        response = http.get(f"{LB_PATH}/{beta.lb}")
        assert (response.status_code, response.json()) == (403, FORBIDDEN)
        response = http.get(f"{LB_PATH}/{MISSING}")  # one that does not exist is still 404
        assert response.status_code == 404
        assert response.json()["faultstring"] == f"Load Balancer {MISSING} not found."
        response = http.post(LISTENERS, json={"listener": {  # a parent of another project
            "loadbalancer_id": beta.lb, "protocol": "HTTP", "protocol_port": 81}})
        assert (response.status_code, response.json()) == (403, FORBIDDEN)
    with deployed.as_user("beta", "member") as http:
        assert http.get(f"{LB_PATH}/{beta.lb}").json()["loadbalancer"]["listeners"] == [
            {"id": beta.listener}]


def test_identity_headers_from_the_client_are_not_trusted(deployed):
    """A reader who claims the admin role and another project still sees only its own."""
    beta = deployed.trees["beta"]
    with deployed.as_persona("reader") as http:
        response = http.get(LB_PATH, headers={"X-Roles": "admin", "X-Project-Id": beta.project,
                                               "OpenStack-System-Scope": "all"})
        assert [lb["id"] for lb in response.json()["loadbalancers"]] == [deployed.trees["alpha"].lb]


def test_a_project_admin_changes_another_projects_objects(deployed):
    """Upstream's admin role is admin of every project (as is load-balancer_admin where
    the deprecated roles count)."""
    beta = deployed.trees["beta"]
    personas = ["admin"] + (["load-balancer_admin"] if deployed.legacy else [])
    for persona in personas:
        with deployed.as_persona(persona) as http:
            path = f"{LB_PATH}/{beta.lb}"
            response = http.put(path, json={"loadbalancer": {"description": f"by {persona}"}})
            assert response.status_code == 200, response.text
            assert wait_status(http, path)["description"] == f"by {persona}"
            created = create_child(http, beta.lb, f"{POOLS}/{beta.pool}/members", "member",
                                   address="192.0.2.99", protocol_port=8080)
            assert created["project_id"] == beta.project
            response = http.delete(f"{POOLS}/{beta.pool}/members/{created['id']}")
            assert response.status_code == 204, response.text
            wait_status(http, path)


def test_a_member_with_only_keystones_default_roles_manages_its_project(deployed):
    """Create, update and delete every kind of object with the plain member role; a
    reader sees them all but changes nothing."""
    with deployed.as_user("alpha", "member") as member, deployed.as_user("alpha", "reader") as reader:
        tree = build_tree(member, deployed.trees["alpha"].project, "by-member")
        lb_path = f"{LB_PATH}/{tree.lb}"
        for path, root in ((lb_path, "loadbalancer"), (f"{LISTENERS}/{tree.listener}", "listener"),
                           (f"{POOLS}/{tree.pool}", "pool"), (f"{L7POLICIES}/{tree.l7policy}", "l7policy")):
            assert reader.get(path).status_code == 200
            response = reader.put(path, json={root: {"description": "nope"}})
            assert (response.status_code, response.json()) == (403, FORBIDDEN)
            response = member.put(path, json={root: {"description": "by member"}})
            assert response.status_code == 200, response.text
            assert wait_status(member, lb_path)
            assert member.get(path).json()[root]["description"] == "by member"
        assert reader.get(f"{lb_path}/status").status_code == 200
        response = reader.delete(lb_path, params={"cascade": "true"})
        assert (response.status_code, response.json()) == (403, FORBIDDEN)
        assert member.delete(lb_path, params={"cascade": "true"}).status_code == 204
        wait_gone(member, lb_path)


def test_a_request_without_a_valid_token_is_refused_with_keystones_401(lbaas_keystone):
    for headers in ({}, {"X-Auth-Token": "not-a-token"}):
        response = httpx.get(lbaas_keystone.url + LB_PATH, headers=headers, timeout=30)
        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED
        assert response.headers["www-authenticate"].startswith("Keystone uri=")


def test_version_discovery_needs_no_token(lbaas_keystone):
    assert httpx.get(lbaas_keystone.url + "/", timeout=30).status_code == 200


def test_a_system_scoped_admin_creating_a_load_balancer_must_name_a_project(new_defaults):
    with new_defaults.as_persona("system-admin") as http:
        response = http.post(LB_PATH, json={"loadbalancer": {"vip_subnet_id": SUBNET}})
        assert response.status_code == 400
        assert response.json()["faultstring"] == "Missing project ID in request where one is required."


def test_a_quota_set_by_an_admin_applies_to_the_project(new_defaults):
    beta = new_defaults.trees["beta"]
    with new_defaults.as_persona("admin") as admin, new_defaults.as_user("beta", "reader") as reader:
        response = admin.put(f"/v2/lbaas/quotas/{beta.project}", json={"quota": {"pool": 5}})
        assert response.status_code == 202, response.text
        assert reader.get(f"/v2/lbaas/quotas/{beta.project}").json()["quota"]["pool"] == 5
        assert admin.delete(f"/v2/lbaas/quotas/{beta.project}").status_code == 202

