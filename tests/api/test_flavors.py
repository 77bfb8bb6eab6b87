"""Flavor profiles and flavors: upstream's fields, validation, in-use rules, and a load
balancer that takes its provider and topology from its flavor."""
from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from lbaas.db.models import LoadBalancer
from lbaas.images.store import ImageStore
from tests.helpers.api import SUBNET, create_lb, fault, make_flavor, make_profile, wait_gone
from tests.helpers.images import add_image

PROFILES = "/v2/lbaas/flavorprofiles"
FLAVORS = "/v2/lbaas/flavors"
NIL = "00000000-0000-0000-0000-000000000000"


def post_profile(client, **body):
    return client.post(PROFILES, json={"flavorprofile": {
        "name": "fp", "provider_name": "amphora", "flavor_data": "{}", **body}})


# Flavor profiles

def test_flavor_profile_create_show_list_with_upstream_fields(api_only):
    profile = make_profile(api_only, loadbalancer_topology="ACTIVE_STANDBY", compute_flavor="amphora")
    assert set(profile) == {"id", "name", "provider_name", "flavor_data"}
    assert json.loads(profile["flavor_data"]) == {"loadbalancer_topology": "ACTIVE_STANDBY",
                                                  "compute_flavor": "amphora"}
    assert api_only.get(f"{PROFILES}/{profile['id']}").json() == {"flavorprofile": profile}
    assert api_only.get(f"/v2.0/lbaas/flavorprofiles/{profile['id']}").json() == {"flavorprofile": profile}
    assert api_only.get(PROFILES).json() == {"flavorprofiles": [profile], "flavorprofile_links": []}


@pytest.mark.parametrize("data, message", [
    ({"loadbalancer_topology": "TRIPLE"},
     "loadbalancer_topology 'TRIPLE' is not one of ['SINGLE', 'ACTIVE_STANDBY']"),
    ({"compute_flavor": 5}, "compute_flavor 5 is not of type 'string'"),
    ({"sriov_vip": "yes"}, "sriov_vip 'yes' is not of type 'boolean'"),
    ({"colour": "blue"}, "Additional properties are not allowed ('colour' was unexpected)"),
])
def test_flavor_data_the_provider_rejects_is_501(api_only, data, message):
    assert fault(post_profile(api_only, flavor_data=json.dumps(data)), 501) == \
        f"Provider 'amphora' does not support a requested option: {message}"


def test_flavor_data_that_is_not_json_is_400(api_only):
    assert fault(post_profile(api_only, flavor_data="{nope"), 400) == \
        "{nope is not a valid option for flavor_data"


def test_flavor_profile_of_an_unknown_provider_is_400(api_only):
    assert fault(post_profile(api_only, provider_name="ovn"), 400) == "Provider 'ovn' is not enabled."
    assert fault(post_profile(api_only, provider_name=""), 400) == "Provider '' is not enabled."


@pytest.mark.parametrize("missing", ["name", "provider_name", "flavor_data"])
def test_flavor_profile_fields_are_mandatory(api_only, missing):
    body = {"name": "fp", "provider_name": "amphora", "flavor_data": "{}"}
    del body[missing]
    assert fault(api_only.post(PROFILES, json={"flavorprofile": body}), 400) == \
        f"Invalid input for field/attribute {missing}. Value: 'None'. Mandatory field missing."


def test_flavor_data_longer_than_4096_is_400(api_only):
    data = json.dumps({"compute_flavor": "x" * 4096})
    assert "flavor_data" in fault(post_profile(api_only, flavor_data=data), 400)


def test_flavor_profile_update_checks_data_against_its_provider(api_only, services):
    add_image(ImageStore.from_settings(services.settings), ["v2"])
    profile = make_profile(api_only)
    url = f"{PROFILES}/{profile['id']}"
    response = api_only.put(url, json={"flavorprofile": {
        "name": "renamed", "flavor_data": '{"amp_image_tag": "v2"}'}})
    assert response.status_code == 200, response.text
    assert response.json()["flavorprofile"]["name"] == "renamed"
    assert json.loads(api_only.get(url).json()["flavorprofile"]["flavor_data"]) == {"amp_image_tag": "v2"}
    bad = api_only.put(url, json={"flavorprofile": {"flavor_data": '{"amp_image_tag": 1}'}})
    assert fault(bad, 501).endswith("amp_image_tag 1 is not of type 'string'")
    assert fault(api_only.put(url, json={"flavorprofile": {"provider_name": "ovn"}}), 400) == \
        "Provider 'ovn' is not enabled."


@pytest.mark.parametrize("field", ["name", "provider_name", "flavor_data"])
def test_flavor_profile_fields_cannot_be_nulled(api_only, field):
    profile = make_profile(api_only)
    response = api_only.put(f"{PROFILES}/{profile['id']}", json={"flavorprofile": {field: None}})
    assert fault(response, 400) == f"None is not a valid option for {field}"


def test_flavor_profile_in_use_keeps_its_data_and_provider_but_may_be_renamed(api_only):
    profile = make_profile(api_only)
    make_flavor(api_only, profile["id"])
    url = f"{PROFILES}/{profile['id']}"
    in_use = f"Flavor profile {profile['id']} is in use and cannot be modified."
    assert fault(api_only.put(url, json={"flavorprofile": {"flavor_data": "{}"}}), 409) == in_use
    assert fault(api_only.put(url, json={"flavorprofile": {"provider_name": "octavia"}}), 409) == in_use
    assert api_only.put(url, json={"flavorprofile": {"name": "new"}}).status_code == 200
    assert fault(api_only.delete(url), 409) == in_use


def test_flavor_profile_delete_and_not_found(api_only):
    profile = make_profile(api_only)
    url = f"{PROFILES}/{profile['id']}"
    assert api_only.delete(url).status_code == 204
    assert fault(api_only.get(url), 404) == f"Flavor profile {profile['id']} not found."
    assert fault(api_only.delete(url), 404) == f"Flavor profile {profile['id']} not found."
    assert fault(api_only.get(f"{PROFILES}/{NIL}"), 404) == f"Flavor profile {NIL} not found."


def test_flavor_profile_unknown_attribute_is_400(api_only):
    assert "Unknown attribute" in fault(post_profile(api_only, colour="blue"), 400)


# Flavors

def test_flavor_create_show_update_delete(api_only):
    profile = make_profile(api_only)
    flavor = make_flavor(api_only, profile["id"], description="fast")
    assert flavor == {"id": flavor["id"], "name": "gold", "description": "fast", "enabled": True,
                      "flavor_profile_id": profile["id"]}
    url = f"{FLAVORS}/{flavor['id']}"
    assert api_only.get(url).json() == {"flavor": flavor}
    response = api_only.put(url, json={"flavor": {"name": "silver", "enabled": False}})
    assert response.status_code == 200
    assert response.json()["flavor"] == {**flavor, "name": "silver", "enabled": False}
    assert api_only.put(url, json={"flavor": {"enabled": None}}).json()["flavor"]["enabled"] is True
    assert api_only.get(url, params={"fields": "name"}).json() == {"flavor": {"name": "silver"}}
    assert api_only.delete(url).status_code == 204
    assert fault(api_only.get(url), 404) == f"Flavor {flavor['id']} not found."


def test_flavor_name_is_unique(api_only):
    profile = make_profile(api_only)
    make_flavor(api_only, profile["id"], name="gold")
    response = api_only.post(FLAVORS, json={"flavor": {"name": "gold", "flavor_profile_id": profile["id"]}})
    assert fault(response, 409) == "A flavor of gold already exists."
    other = make_flavor(api_only, profile["id"], name="silver")
    response = api_only.put(f"{FLAVORS}/{other['id']}", json={"flavor": {"name": "gold"}})
    assert fault(response, 409) == "A flavor of gold already exists."
    assert api_only.put(f"{FLAVORS}/{other['id']}", json={"flavor": {"name": "silver"}}).status_code == 200


def test_flavor_of_an_unknown_profile_is_400(api_only):
    profile_id = str(uuid.uuid4())
    response = api_only.post(FLAVORS, json={"flavor": {"name": "x", "flavor_profile_id": profile_id}})
    assert fault(response, 400) == f"Flavor profile {profile_id} not found."
    response = api_only.post(FLAVORS, json={"flavor": {"name": "x", "flavor_profile_id": "nope"}})
    assert fault(response, 400).startswith("Invalid input for field/attribute flavor_profile_id.")


def test_flavor_name_cannot_be_nulled_and_profile_cannot_change(api_only):
    flavor = make_flavor(api_only, make_profile(api_only)["id"])
    url = f"{FLAVORS}/{flavor['id']}"
    assert fault(api_only.put(url, json={"flavor": {"name": None}}), 400) == \
        "None is not a valid option for name"
    response = api_only.put(url, json={"flavor": {"flavor_profile_id": str(uuid.uuid4())}})
    assert "Unknown attribute for argument flavor: flavor_profile_id" in fault(response, 400)


def test_flavors_list_sorts_filters_paginates_and_selects_fields(api_only):
    profile = make_profile(api_only)
    for name in ("c", "a", "b"):
        make_flavor(api_only, profile["id"], name=name, enabled=name != "b")
    listed = api_only.get(FLAVORS).json()["flavors"]
    assert [f["id"] for f in listed] == sorted(f["id"] for f in listed)  # upstream's default: by id
    names = [f["name"] for f in api_only.get(FLAVORS, params={"sort": "name"}).json()["flavors"]]
    assert names == ["a", "b", "c"]
    assert [f["name"] for f in api_only.get(FLAVORS, params={"sort": "name:desc"}).json()["flavors"]] == \
        ["c", "b", "a"]
    assert [f["name"] for f in api_only.get(FLAVORS, params={"enabled": "false"}).json()["flavors"]] == ["b"]
    page = api_only.get(FLAVORS, params={"limit": 2, "sort": "name"}).json()
    assert [f["name"] for f in page["flavors"]] == ["a", "b"]
    assert page["flavors_links"][0]["rel"] == "next"
    marker = page["flavors"][-1]["id"]
    assert [f["name"] for f in api_only.get(FLAVORS, params={"limit": 2, "marker": marker, "sort": "name"}
                                            ).json()["flavors"]] == ["c"]
    assert api_only.get(FLAVORS, params={"fields": "name", "name": "a"}).json()["flavors"] == [{"name": "a"}]
    assert fault(api_only.get(FLAVORS, params={"sort": "colour"}), 400) == \
        "Supplied sort key 'colour' is not valid."
    assert fault(api_only.get(FLAVORS, params={"colour": "x"}), 400) == \
        "One or more arguments are either duplicate or invalid."


def test_nil_uuid_flavor_is_404_everywhere(api_only):
    message = f"Flavor {NIL} not found."
    assert fault(api_only.get(f"{FLAVORS}/{NIL}"), 404) == message
    assert fault(api_only.put(f"{FLAVORS}/{NIL}", json={"flavor": {"name": "x"}}), 404) == message
    assert fault(api_only.delete(f"{FLAVORS}/{NIL}"), 404) == message


# Load balancers with a flavor

def test_load_balancer_takes_topology_and_provider_from_its_flavor(client, services):
    profile = make_profile(client, loadbalancer_topology="ACTIVE_STANDBY")
    flavor = make_flavor(client, profile["id"])
    lb = create_lb(client, flavor_id=flavor["id"])
    assert lb["flavor_id"] == flavor["id"] and lb["provider"] == "amphora"
    with services.db.read() as session:
        assert session.scalar(select(LoadBalancer.topology).where(LoadBalancer.id == lb["id"])) \
            == "ACTIVE_STANDBY"
    amphorae = client.get("/v2/octavia/amphorae", params={"loadbalancer_id": lb["id"]}).json()["amphorae"]
    assert sorted(amphora["role"] for amphora in amphorae) == ["BACKUP", "MASTER"]


def test_load_balancer_without_topology_in_its_flavor_uses_the_configured_one(client, services):
    flavor = make_flavor(client, make_profile(client, compute_flavor="amphora")["id"])
    lb = create_lb(client, flavor_id=flavor["id"])
    with services.db.read() as session:
        assert session.scalar(select(LoadBalancer.topology).where(LoadBalancer.id == lb["id"])) \
            == services.settings.controller_worker.loadbalancer_topology


def post_lb(client, **fields):
    return client.post("/v2/lbaas/loadbalancers",
                       json={"loadbalancer": {"vip_subnet_id": SUBNET, **fields}})


def test_load_balancer_with_an_unknown_or_disabled_flavor_is_400(api_only):
    unknown = str(uuid.uuid4())
    assert fault(post_lb(api_only, flavor_id=unknown), 400) == \
        f"{unknown} is not a valid option for flavor"
    flavor = make_flavor(api_only, make_profile(api_only)["id"], enabled=False)
    assert fault(post_lb(api_only, flavor_id=flavor["id"]), 400) == \
        f"The selected flavor is not allowed in this deployment: {flavor['id']}"


def test_load_balancer_provider_must_match_its_flavor(api_only):
    flavor = make_flavor(api_only, make_profile(api_only, provider="octavia")["id"])
    assert fault(post_lb(api_only, flavor_id=flavor["id"], provider="amphora"), 400) == \
        f"Flavor '{flavor['id']}' is not compatible with provider 'amphora'"
    response = post_lb(api_only, flavor_id=flavor["id"])
    assert response.status_code == 201, response.text
    assert response.json()["loadbalancer"]["provider"] == "octavia"


def test_flavor_used_by_a_load_balancer_cannot_be_deleted(client):
    flavor = make_flavor(client, make_profile(client)["id"])
    lb = create_lb(client, flavor_id=flavor["id"])
    assert fault(client.delete(f"{FLAVORS}/{flavor['id']}"), 409) == \
        f"Flavor {flavor['id']} is in use and cannot be modified."
    assert client.delete(f"/v2/lbaas/loadbalancers/{lb['id']}").status_code == 204
    wait_gone(client, f"/v2/lbaas/loadbalancers/{lb['id']}")
    assert client.delete(f"{FLAVORS}/{flavor['id']}").status_code == 204


def test_a_profile_naming_an_unknown_compute_flavor_or_an_untagged_image_is_refused(
        api_only, services):
    """As upstream's amphora driver asks Nova and Glance, in its words."""
    assert fault(post_profile(api_only, flavor_data='{"compute_flavor": "m1.huge"}'), 501) == \
        "Provider 'amphora' does not support a requested option: Nova flavor m1.huge not found."
    refused = fault(post_profile(api_only, flavor_data='{"amp_image_tag": "gold"}'), 501)
    assert refused.startswith("Provider 'amphora' does not support a requested option: Failed "
                              "to find an image with tag gold due to: no amphora image is "
                              "tagged 'gold'")
    services.settings.compute.flavors = ["amphora:1024:1", "m1.huge:4096:4"]
    add_image(ImageStore.from_settings(services.settings), ["gold"])
    assert post_profile(api_only, flavor_data=json.dumps(
        {"compute_flavor": "m1.huge", "amp_image_tag": "gold"})).status_code == 201
