"""The fields clients read and print, as upstream's API returns them."""
from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from tests.helpers import PROJECT
from tests.helpers.api import (
    SUBNET,
    create_lb,
    create_listener,
    create_member,
    create_pool,
    wait_lb_active,
)
from tests.helpers.openapi import document_of

LBS, LISTENERS, POOLS = "/v2/lbaas/loadbalancers", "/v2/lbaas/listeners", "/v2/lbaas/pools"
MONITORS, L7POLICIES = "/v2/lbaas/healthmonitors", "/v2/lbaas/l7policies"


def created(client: TestClient, path: str, root: str, lb_id: str, **body: Any) -> dict[str, Any]:
    """POST one child object; its 201 body, once its load balancer is ACTIVE again."""
    response = client.post(path, json={root: body})
    assert response.status_code == 201, response.text
    wait_lb_active(client, lb_id)
    return response.json()[root]


def tree(client: TestClient) -> dict[str, tuple[str, dict[str, Any]]]:
    """One unnamed object of each kind: kind -> (its path, its 201 body)."""
    response = client.post(LBS, json={"loadbalancer": {"vip_subnet_id": SUBNET}})
    assert response.status_code == 201, response.text
    lb = response.json()["loadbalancer"]
    wait_lb_active(client, lb["id"])
    listener = created(client, LISTENERS, "listener", lb["id"], loadbalancer_id=lb["id"],
                       protocol="HTTP", protocol_port=80)
    pool = created(client, POOLS, "pool", lb["id"], listener_id=listener["id"], protocol="HTTP",
                   lb_algorithm="ROUND_ROBIN")
    members = f"{POOLS}/{pool['id']}/members"
    member = created(client, members, "member", lb["id"], address="192.0.2.5", protocol_port=80)
    hm = created(client, MONITORS, "healthmonitor", lb["id"], pool_id=pool["id"], type="TCP",
                 delay=5, timeout=3, max_retries=3)
    policy = created(client, L7POLICIES, "l7policy", lb["id"], listener_id=listener["id"],
                     action="REJECT")
    rules = f"{L7POLICIES}/{policy['id']}/rules"
    rule = created(client, rules, "rule", lb["id"], type="PATH", compare_type="STARTS_WITH", value="/a")
    return {"loadbalancer": (f"{LBS}/{lb['id']}", lb),
            "listener": (f"{LISTENERS}/{listener['id']}", listener),
            "pool": (f"{POOLS}/{pool['id']}", pool),
            "member": (f"{members}/{member['id']}", member),
            "healthmonitor": (f"{MONITORS}/{hm['id']}", hm),
            "l7policy": (f"{L7POLICIES}/{policy['id']}", policy),
            "rule": (f"{rules}/{rule['id']}", rule)}


def test_every_project_object_has_tenant_id_equal_to_project_id(client):
    for root, (path, body) in tree(client).items():
        shown = client.get(path).json()[root]
        collection = path.rsplit("/", 1)[0]
        listed = client.get(collection).json()
        plural = next(key for key in listed if not key.endswith("_links"))
        for where, obj in (("create", body), ("show", shown), ("list", listed[plural][0])):
            assert (obj["project_id"], obj["tenant_id"]) == (PROJECT, PROJECT), (root, where)


def test_every_object_shows_exactly_the_attributes_its_schema_publishes(client):
    """The response models are derived from each resource's declaration; a show carries
    every attribute /openapi.json lists for it, and no other."""
    document = document_of(client.app)
    schemas = document.document["components"]["schemas"]

    def named(schema: dict[str, Any]) -> dict[str, Any]:
        return schemas[schema["$ref"].rsplit("/", 1)[1]]
    for root, (path, _) in tree(client).items():
        shown = client.get(path).json()[root]
        template = document.template(path)
        assert template is not None, path
        wrapper = named(document.response_schema(template, "get", 200) or {})
        assert set(shown) == set(named(wrapper["properties"][root])["properties"]), root


def test_quotas_have_tenant_id_too(client):
    assert client.put(f"/v2/lbaas/quotas/{PROJECT}", json={"quota": {"pool": 3}}).json()["quota"][
        "tenant_id"] == PROJECT
    assert client.get(f"/v2/lbaas/quotas/{PROJECT}").json()["quota"]["tenant_id"] == PROJECT
    assert client.get("/v2/lbaas/quotas").json()["quotas"][0]["tenant_id"] == PROJECT
    assert client.get(f"/v2/lbaas/quotas/{PROJECT}/default").json()["quota"]["tenant_id"] == PROJECT
    assert client.get("/v2/lbaas/quotas/defaults").json()["quota"]["tenant_id"] == "defaults"


def test_names_and_descriptions_never_given_are_empty_strings(client):
    """As upstream's response types, which turn a null name or description into ""."""
    objects = tree(client)
    for root, (path, body) in objects.items():
        shown = client.get(path).json()[root]
        for field in ("name", "description"):
            if field in body:
                assert (body[field], shown[field]) == ("", ""), (root, field)
    assert {root for root, (_, body) in objects.items() if "description" in body} == {
        "loadbalancer", "listener", "pool", "l7policy"}
    assert "name" in objects["member"][1] and "name" in objects["healthmonitor"][1]


def test_flavor_and_zone_descriptions_never_given_are_empty_strings(api_only):
    profile = api_only.post("/v2/lbaas/flavorprofiles", json={"flavorprofile": {
        "name": "fp", "provider_name": "amphora", "flavor_data": "{}"}}).json()["flavorprofile"]
    flavor = api_only.post("/v2/lbaas/flavors", json={"flavor": {
        "name": "gold", "flavor_profile_id": profile["id"]}})
    assert flavor.json()["flavor"]["description"] == ""
    assert api_only.get("/v2/lbaas/flavors").json()["flavors"][0]["description"] == ""
    zone_profile = api_only.post("/v2/lbaas/availabilityzoneprofiles", json={"availability_zone_profile": {
        "name": "zp", "provider_name": "amphora",
        "availability_zone_data": json.dumps({"compute_zone": "az1"})}}).json()["availability_zone_profile"]
    zone = api_only.post("/v2/lbaas/availabilityzones", json={"availability_zone": {
        "name": "az1", "availability_zone_profile_id": zone_profile["id"]}})
    assert zone.json()["availability_zone"]["description"] == ""
    assert api_only.get("/v2/lbaas/availabilityzones/az1").json()["availability_zone"]["description"] == ""


def test_a_new_pools_response_has_no_healthmonitor_id_until_shown(client):
    lb = create_lb(client)
    response = client.post(POOLS, json={"pool": {"loadbalancer_id": lb["id"], "protocol": "HTTP",
                                                 "lb_algorithm": "ROUND_ROBIN"}})
    assert response.status_code == 201
    assert "healthmonitor_id" not in response.json()["pool"]
    wait_lb_active(client, lb["id"])
    assert client.get(f"{POOLS}/{response.json()['pool']['id']}").json()["pool"]["healthmonitor_id"] is None


def test_the_create_response_has_the_vip_the_load_balancer_keeps(client):
    """The VIP is reserved while answering the POST (here by the no-op network driver,
    which invents the network of the subnet given)."""
    response = client.post(LBS, json={"loadbalancer": {"vip_subnet_id": SUBNET}})
    assert response.status_code == 201
    body = response.json()["loadbalancer"]
    vip = {key: body[key] for key in ("vip_address", "vip_port_id", "vip_subnet_id", "vip_network_id")}
    assert all(vip.values()) and vip["vip_subnet_id"] == SUBNET, vip
    active = wait_lb_active(client, body["id"])
    assert {key: active[key] for key in vip} == vip


def test_named_objects_keep_their_names(client):
    lb = create_lb(client, name="web", description="front")
    listener = create_listener(client, lb["id"], name="http")
    pool = create_pool(client, lb["id"], name="app")
    member = create_member(client, pool["id"], "192.0.2.9", name="web1")
    assert (lb["name"], lb["description"], listener["name"], pool["name"], member["name"]) == (
        "web", "front", "http", "app", "web1")


CATALOGS = [  # (path, root, body of one row given its name)
    ("/v2/lbaas/flavorprofiles", "flavorprofile",
     lambda name: {"name": name, "provider_name": "amphora", "flavor_data": "{}"}),
    ("/v2/lbaas/availabilityzoneprofiles", "availability_zone_profile",
     lambda name: {"name": name, "provider_name": "amphora", "availability_zone_data": "{}"}),
]


def test_catalogs_without_created_at_are_listed_by_id_as_upstream(api_only):
    """Flavors, flavor profiles and zone profiles have no created_at: upstream's default
    order is by id (here, names are given in the opposite order, so by name would differ)."""
    profile_ids = []
    for path, root, body in CATALOGS:
        ids = sorted(api_only.post(path, json={root: body(f"p{i}")}).json()[root]["id"]
                     for i in range(4))
        for rank, row_id in enumerate(ids):  # names in the reverse order of the ids
            assert api_only.put(f"{path}/{row_id}", json={root: {"name": f"n{9 - rank}"}}).status_code == 200
        listed = next(value for key, value in api_only.get(path).json().items() if not key.endswith("_links"))
        assert [row["id"] for row in listed] == ids, path
        profile_ids.append(ids[0])
    flavors = sorted(api_only.post("/v2/lbaas/flavors", json={"flavor": {
        "name": f"f{i}", "flavor_profile_id": profile_ids[0]}}).json()["flavor"]["id"] for i in range(4))
    for rank, flavor_id in enumerate(flavors):
        api_only.put(f"/v2/lbaas/flavors/{flavor_id}", json={"flavor": {"name": f"n{9 - rank}"}})
    assert [row["id"] for row in api_only.get("/v2/lbaas/flavors").json()["flavors"]] == flavors
    for name in ("zb", "za"):  # zones have neither: by their name, the key
        api_only.post("/v2/lbaas/availabilityzones", json={"availability_zone": {
            "name": name, "availability_zone_profile_id": profile_ids[1]}})
    assert [zone["name"] for zone in api_only.get("/v2/lbaas/availabilityzones").json()[
        "availability_zones"]] == ["za", "zb"]


def test_load_balancers_are_listed_in_creation_order(api_only):
    """The others: by created_at (kept to the microsecond), then id."""
    made = [api_only.post(LBS, json={"loadbalancer": {"vip_subnet_id": SUBNET, "name": name}}).json()[
        "loadbalancer"]["id"] for name in ("c", "b", "a")]
    assert [lb["id"] for lb in api_only.get(LBS).json()["loadbalancers"]] == made


def test_a_sort_direction_is_read_in_any_case_as_upstream(api_only):
    for name in ("a", "b"):
        api_only.post(LBS, json={"loadbalancer": {"vip_subnet_id": SUBNET, "name": name}})
    for params in ({"sort": "name:DESC"}, {"sort_key": "name", "sort_dir": "Desc"}):
        listed = api_only.get(LBS, params=params)
        assert [lb["name"] for lb in listed.json()["loadbalancers"]] == ["b", "a"], params
