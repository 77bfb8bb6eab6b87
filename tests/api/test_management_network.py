"""The management network (``lbaas-mgmt``) is invisible and unusable for tenants."""
from __future__ import annotations

import pytest

from lbaas import config
from lbaas.network import registry
from lbaas.network.management import MANAGEMENT_NETWORK
from tests.helpers import NOOP_DRIVERS
from tests.helpers.api import fault


@pytest.fixture
def settings(tmp_path) -> config.Settings:
    """The local registry (the API only: nothing here plugs a bridge)."""
    return config.load(environ={
        "LBAAS__DEFAULT__state_path": str(tmp_path), **NOOP_DRIVERS,
        "LBAAS__controller_worker__network_driver": "network_local_driver"})


@pytest.fixture
def subnets(services) -> dict[str, str]:
    with services.db.write() as session:
        management = registry.create_network(session, MANAGEMENT_NETWORK)
        public = registry.create_network(session, "public")
        return {"management": registry.create_subnet(session, "lbaas-mgmt-subnet", management,
                                                     "172.29.232.0/22").id,
                "management_network": management.id,
                "public": registry.create_subnet(session, "public-subnet", public,
                                                 "203.0.113.0/24").id}


def test_the_management_network_is_not_listed(api_only, subnets):
    listed = [item["id"] for item in api_only.get("/v2.0/subnets").json()["subnets"]]
    assert listed == [subnets["public"]]
    networks = [item["name"] for item in api_only.get("/v2.0/networks").json()["networks"]]
    assert networks == ["public"]
    assert api_only.get(f"/v2.0/subnets/{subnets['management']}").status_code == 404


@pytest.mark.parametrize("field", ["vip_subnet_id", "vip_network_id"])
def test_a_vip_on_the_management_network_is_refused(api_only, subnets, field):
    target = subnets["management" if field == "vip_subnet_id" else "management_network"]
    response = api_only.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {field: target}})
    kind = "Subnet" if field == "vip_subnet_id" else "Network"
    assert fault(response, 400) == f"{kind} {target} not found."


def test_a_member_subnet_on_the_management_network_is_refused(api_only, subnets):
    lb = api_only.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "vip_subnet_id": subnets["public"], "listeners": [{
            "protocol": "HTTP", "protocol_port": 80, "default_pool": {
                "name": "pool", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": [{
                    "address": "192.0.2.10", "protocol_port": 80,
                    "subnet_id": subnets["management"]}]}}]}})
    assert fault(lb, 400) == f"Subnet {subnets['management']} not found."
