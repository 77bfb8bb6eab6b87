"""Providers: the enabled drivers and the options their flavors and availability zones accept."""
from __future__ import annotations

import pytest

from lbaas import config
from tests.helpers import NOOP_DRIVERS
from tests.helpers.api import fault

PROVIDERS = "/v2/lbaas/providers"
FLAVOR_KEYS = ["loadbalancer_topology", "compute_flavor", "amp_image_tag", "sriov_vip",
               "allow_member_sriov"]
AZ_KEYS = ["compute_zone", "volume_zone", "management_network", "valid_vip_networks"]


def test_providers_lists_the_enabled_drivers_without_links(client):
    assert client.get(PROVIDERS).json() == {"providers": [
        {"name": "amphora", "description": "The Octavia Amphora driver."},
        {"name": "octavia", "description": "Deprecated alias of the Octavia Amphora driver."},
    ]}


def test_providers_honour_fields(client):
    assert client.get(PROVIDERS, params={"fields": "name"}).json() == \
        {"providers": [{"name": "amphora"}, {"name": "octavia"}]}


@pytest.mark.parametrize("provider", ["amphora", "octavia"])
def test_flavor_capabilities_of_the_amphora_driver(client, provider):
    body = client.get(f"{PROVIDERS}/{provider}/flavor_capabilities").json()
    capabilities = body["flavor_capabilities"]
    assert [item["name"] for item in capabilities] == FLAVOR_KEYS
    assert all(item["description"] for item in capabilities)
    topology = next(item for item in capabilities if item["name"] == "loadbalancer_topology")
    assert "ACTIVE_STANDBY" in topology["description"]


def test_availability_zone_capabilities_of_the_amphora_driver(client):
    body = client.get(f"{PROVIDERS}/amphora/availability_zone_capabilities").json()
    assert [item["name"] for item in body["availability_zone_capabilities"]] == AZ_KEYS


def test_capabilities_filter_by_name_and_description_and_select_fields(client):
    url = f"{PROVIDERS}/amphora/flavor_capabilities"
    assert client.get(url, params={"name": "compute_flavor"}).json() == {"flavor_capabilities": [
        {"name": "compute_flavor", "description": "The compute driver flavor ID."}]}
    assert client.get(url, params={"description": "The amphora image tag."}).json()[
        "flavor_capabilities"] == [{"name": "amp_image_tag", "description": "The amphora image tag."}]
    assert client.get(url, params={"name": "nope"}).json() == {"flavor_capabilities": []}
    only_names = client.get(url, params={"fields": "name"}).json()["flavor_capabilities"]
    assert only_names == [{"name": key} for key in FLAVOR_KEYS]


@pytest.mark.parametrize("kind", ["flavor_capabilities", "availability_zone_capabilities"])
def test_capabilities_of_a_provider_that_is_not_enabled_is_400(client, kind):
    assert fault(client.get(f"{PROVIDERS}/ovn/{kind}"), 400) == "Provider 'ovn' is not enabled."


class TestProviderEnabledWithoutADriver:
    """An operator enabled a provider this service has no driver for."""

    @pytest.fixture
    def settings(self, tmp_path):
        return config.load(environ={
            "LBAAS__DEFAULT__state_path": str(tmp_path), **NOOP_DRIVERS,
            "LBAAS__api_settings__enabled_provider_drivers": "amphora:Amphorae, ovn:The OVN driver",
        })

    def test_it_is_listed_but_its_capabilities_are_501(self, client):
        assert client.get(PROVIDERS).json()["providers"][1] == \
            {"name": "ovn", "description": "The OVN driver"}
        assert fault(client.get(f"{PROVIDERS}/ovn/flavor_capabilities"), 501) == \
            "Provider 'ovn' was not found."
