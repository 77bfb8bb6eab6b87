"""With the local network driver, the API checks the subnets and networks a request names."""
from __future__ import annotations

import uuid

import pytest

from lbaas import config, constants
from lbaas.db.models import LoadBalancer, Pool
from lbaas.network import ports, registry
from tests.api.helpers import fault
from tests.conftest import NOOP_DRIVERS, PROJECT


@pytest.fixture
def settings(tmp_path):
    """The local network driver's registry, without building anything (no worker runs)."""
    return config.load(environ={"LBAAS__DEFAULT__state_path": str(tmp_path), **NOOP_DRIVERS,
                                "LBAAS__controller_worker__network_driver": "network_local_driver"})


@pytest.fixture
def subnet(services):
    with services.db.write() as session:
        network = registry.create_network(session, "public")
        made = registry.create_subnet(session, "public-subnet", network, "10.9.0.0/24")
        ports.allocate(session, made.id, device_id="someone", device_owner="lbaas:vip",
                       ip_address="10.9.0.20")
        return {"id": made.id, "network_id": network.id}


def _create(client, **vip):
    return client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": vip})


def test_unknown_vip_subnet_or_network_is_a_400(api_only, subnet):
    missing = str(uuid.uuid4())
    assert fault(_create(api_only, vip_subnet_id=missing), 400) == f"Subnet {missing} not found."
    assert fault(_create(api_only, vip_network_id=missing), 400) == f"Network {missing} not found."


def test_vip_address_must_be_inside_the_subnet_and_free(api_only, subnet):
    assert "not within" in fault(_create(api_only, vip_subnet_id=subnet["id"],
                                         vip_address="10.8.0.5"), 400)
    assert "already in use" in fault(_create(api_only, vip_subnet_id=subnet["id"],
                                             vip_address="10.9.0.20"), 400)
    assert _create(api_only, vip_network_id=subnet["network_id"],
                   vip_address="10.9.0.21").status_code == 201


def test_member_on_unknown_subnet_is_a_400(api_only, subnet, services):
    with services.db.write() as session:
        lb = LoadBalancer(project_id=PROJECT, provisioning_status=constants.ACTIVE,
                          operating_status=constants.ONLINE, vip_subnet_id=subnet["id"])
        pool = Pool(project_id=PROJECT, load_balancer=lb, protocol="HTTP",
                    lb_algorithm="ROUND_ROBIN", provisioning_status=constants.ACTIVE,
                    operating_status=constants.ONLINE)
        session.add_all([lb, pool])
    missing = str(uuid.uuid4())
    response = api_only.post(f"/v2/lbaas/pools/{pool.id}/members", json={"member": {
        "address": "10.9.0.30", "protocol_port": 80, "subnet_id": missing}})
    assert fault(response, 400) == f"Subnet {missing} not found."
    response = api_only.post(f"/v2/lbaas/pools/{pool.id}/members", json={"member": {
        "address": "10.9.0.30", "protocol_port": 80, "subnet_id": subnet["id"]}})
    assert response.status_code == 201, response.text


def test_single_call_create_checks_member_subnets(api_only, subnet):
    def tree(member_subnet: str) -> dict:
        return {"vip_subnet_id": subnet["id"], "listeners": [{
            "protocol": "HTTP", "protocol_port": 80, "default_pool": {
                "name": "web", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                "members": [{"address": "10.9.0.40", "protocol_port": 80,
                             "subnet_id": member_subnet}]}}]}
    missing = str(uuid.uuid4())
    assert fault(_create(api_only, **tree(missing)), 400) == f"Subnet {missing} not found."
    assert _create(api_only, **tree(subnet["id"])).status_code == 201
