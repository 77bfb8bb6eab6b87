"""Availability-zone profiles and zones (keyed by name), and load balancers placed in a zone."""
from __future__ import annotations

import json
import uuid

import pytest

from tests.helpers.api import SUBNET, create_lb, fault, wait_gone

PROFILES = "/v2/lbaas/availabilityzoneprofiles"
ZONES = "/v2/lbaas/availabilityzones"


def make_profile(client, name="azp", provider="amphora", **data) -> dict:
    body = {"name": name, "provider_name": provider, "availability_zone_data": json.dumps(data)}
    response = client.post(PROFILES, json={"availability_zone_profile": body})
    assert response.status_code == 201, response.text
    return response.json()["availability_zone_profile"]


def make_zone(client, profile_id, name="az1", **fields) -> dict:
    body = {"name": name, "availability_zone_profile_id": profile_id, **fields}
    response = client.post(ZONES, json={"availability_zone": body})
    assert response.status_code == 201, response.text
    return response.json()["availability_zone"]


def test_profile_fields_root_keys_and_links_key(api_only):
    profile = make_profile(api_only, compute_zone="nova", management_network=str(uuid.uuid4()),
                           valid_vip_networks=[str(uuid.uuid4())])
    assert set(profile) == {"id", "name", "provider_name", "availability_zone_data"}
    assert api_only.get(f"{PROFILES}/{profile['id']}").json() == {"availability_zone_profile": profile}
    assert api_only.get("/v2.0/lbaas/availabilityzoneprofiles").json() == {
        "availability_zone_profiles": [profile], "availability_zone_profile_links": []}


@pytest.mark.parametrize("data, message", [
    ({"valid_vip_networks": "net"}, "valid_vip_networks 'net' is not of type 'array'"),
    ({"valid_vip_networks": [1]}, "valid_vip_networks 1 is not of type 'string'"),
    ({"compute_zone": 1}, "compute_zone 1 is not of type 'string'"),
    ({"loadbalancer_topology": "SINGLE"},
     "Additional properties are not allowed ('loadbalancer_topology' was unexpected)"),
])
def test_zone_data_the_provider_rejects_is_501(api_only, data, message):
    body = {"name": "azp", "provider_name": "amphora", "availability_zone_data": json.dumps(data)}
    response = api_only.post(PROFILES, json={"availability_zone_profile": body})
    assert fault(response, 501) == f"Provider 'amphora' does not support a requested option: {message}"


def test_zone_data_must_be_json_and_the_provider_enabled(api_only):
    body = {"name": "azp", "provider_name": "amphora", "availability_zone_data": "[1"}
    assert fault(api_only.post(PROFILES, json={"availability_zone_profile": body}), 400) == \
        "[1 is not a valid option for availability_zone_data"
    body = {**body, "provider_name": "ovn", "availability_zone_data": "{}"}
    assert fault(api_only.post(PROFILES, json={"availability_zone_profile": body}), 400) == \
        "Provider 'ovn' is not enabled."


def test_profile_in_use_by_a_zone(api_only):
    profile = make_profile(api_only)
    make_zone(api_only, profile["id"])
    url = f"{PROFILES}/{profile['id']}"
    in_use = f"Availability Zone Profile {profile['id']} is in use and cannot be modified."
    update = {"availability_zone_profile": {"availability_zone_data": '{"compute_zone": "b"}'}}
    assert fault(api_only.put(url, json=update), 409) == in_use
    assert fault(api_only.delete(url), 409) == in_use
    assert api_only.delete(f"{ZONES}/az1").status_code == 204
    assert api_only.put(url, json=update).status_code == 200
    assert api_only.delete(url).status_code == 204
    assert fault(api_only.get(url), 404) == f"Availability Zone Profile {profile['id']} not found."


def test_zone_is_keyed_by_name(api_only):
    profile = make_profile(api_only)
    zone = make_zone(api_only, profile["id"], description="rack 1")
    assert zone == {"name": "az1", "description": "rack 1", "enabled": True,
                    "availability_zone_profile_id": profile["id"]}
    assert api_only.get(f"{ZONES}/az1").json() == {"availability_zone": zone}
    assert api_only.get(ZONES).json() == {"availability_zones": [zone], "availability_zones_links": []}
    response = api_only.put(f"{ZONES}/az1", json={"availability_zone": {"enabled": False, "description": "x"}})
    assert response.json() == {"availability_zone": {**zone, "enabled": False, "description": "x"}}
    assert fault(api_only.get(f"{ZONES}/az2"), 404) == "Availability Zone az2 not found."


def test_zone_update_accepts_only_description_and_enabled(api_only):
    make_zone(api_only, make_profile(api_only)["id"])
    for field, value in (("name", "az2"), ("availability_zone_profile_id", str(uuid.uuid4()))):
        response = api_only.put(f"{ZONES}/az1", json={"availability_zone": {field: value}})
        assert f"Unknown attribute for argument availability_zone: {field}" in fault(response, 400)


def test_zone_name_is_unique_and_its_profile_must_exist(api_only):
    profile = make_profile(api_only)
    make_zone(api_only, profile["id"])
    body = {"name": "az1", "availability_zone_profile_id": profile["id"]}
    assert fault(api_only.post(ZONES, json={"availability_zone": body}), 409) == \
        "A availability zone of az1 already exists."
    unknown = str(uuid.uuid4())
    body = {"name": "az2", "availability_zone_profile_id": unknown}
    assert fault(api_only.post(ZONES, json={"availability_zone": body}), 400) == \
        f"Availability Zone Profile {unknown} not found."
    body = {"name": "x" * 256, "availability_zone_profile_id": profile["id"]}
    assert fault(api_only.post(ZONES, json={"availability_zone": body}), 400).startswith(
        "Invalid input for field/attribute name.")


def test_zones_list_filters_pages_by_name(api_only):
    profile = make_profile(api_only)
    for name in ("b", "c", "a"):
        make_zone(api_only, profile["id"], name=name, enabled=name != "c")
    page = api_only.get(ZONES, params={"limit": 2}).json()
    assert [zone["name"] for zone in page["availability_zones"]] == ["a", "b"]
    assert "marker=b" in page["availability_zones_links"][0]["href"]
    rest = api_only.get(ZONES, params={"limit": 2, "marker": "b"}).json()["availability_zones"]
    assert [zone["name"] for zone in rest] == ["c"]
    assert [zone["name"] for zone in api_only.get(ZONES, params={"enabled": "False"}).json()[
        "availability_zones"]] == ["c"]


def post_lb(client, **fields):
    return client.post("/v2/lbaas/loadbalancers",
                       json={"loadbalancer": {"vip_subnet_id": SUBNET, **fields}})


def test_load_balancer_in_a_zone(client):
    make_zone(client, make_profile(client, compute_zone="nova")["id"])
    lb = create_lb(client, availability_zone="az1")
    assert lb["availability_zone"] == "az1"
    assert fault(client.delete(f"{ZONES}/az1"), 409) == \
        "Availability Zone az1 is in use and cannot be modified."
    assert client.delete(f"/v2/lbaas/loadbalancers/{lb['id']}").status_code == 204
    wait_gone(client, f"/v2/lbaas/loadbalancers/{lb['id']}")
    assert client.delete(f"{ZONES}/az1").status_code == 204


def test_load_balancer_in_an_unknown_or_disabled_zone_is_400(api_only):
    assert fault(post_lb(api_only, availability_zone="nowhere"), 400) == \
        "nowhere is not a valid option for availability_zone"
    make_zone(api_only, make_profile(api_only)["id"], enabled=False)
    assert fault(post_lb(api_only, availability_zone="az1"), 400) == \
        "The selected availability_zone is not allowed in this deployment: az1"


def test_zone_valid_vip_networks_replace_the_deployments_list(api_only):
    allowed, other = str(uuid.uuid4()), str(uuid.uuid4())
    make_zone(api_only, make_profile(api_only, valid_vip_networks=[allowed])["id"])
    refused = api_only.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "vip_network_id": other, "availability_zone": "az1"}})
    assert fault(refused, 400) == ("Validation failure: Supplied VIP network_id is not allowed "
                                   "by the configuration of this deployment.")
    accepted = api_only.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "vip_network_id": allowed, "availability_zone": "az1"}})
    assert accepted.status_code == 201, accepted.text
    # Outside the zone the deployment's own rule (no list: any network) applies.
    assert api_only.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "vip_network_id": other}}).status_code == 201
