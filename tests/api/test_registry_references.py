"""With the local network driver, the API checks the subnets and networks a request names."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from lbaas import config, constants
from lbaas.db.models import LoadBalancer, Pool, Port
from lbaas.network import ports, registry
from tests.helpers import NOOP_DRIVERS, PROJECT
from tests.helpers.api import fault


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


VIP_FIELDS = ("vip_address", "vip_port_id", "vip_subnet_id", "vip_network_id")


def vip_ports(services, subnet_id: str) -> list[tuple[str, str, str]]:
    """(port id, address, holder) of the VIP ports on the subnet."""
    with services.db.read() as session:
        return sorted((port.id, port.ip_address, port.device_id)
                      for port in session.scalars(select(Port).where(
                          Port.subnet_id == subnet_id, Port.device_owner == ports.OWNER_VIP)))


def test_the_vip_is_reserved_while_answering_the_create(api_only, subnet, services):
    """As upstream: the 201 has the address, port, subnet and network of the VIP."""
    lb = _create(api_only, vip_subnet_id=subnet["id"]).json()["loadbalancer"]
    assert (lb["vip_subnet_id"], lb["vip_network_id"]) == (subnet["id"], subnet["network_id"])
    assert (lb["vip_port_id"], lb["vip_address"], lb["id"]) in vip_ports(services, subnet["id"])
    by_network = _create(api_only, vip_network_id=subnet["network_id"]).json()["loadbalancer"]
    assert by_network["vip_subnet_id"] == subnet["id"]
    assert by_network["vip_address"] not in (lb["vip_address"], "10.9.0.20")
    shown = api_only.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"]
    assert {key: shown[key] for key in VIP_FIELDS} == {key: lb[key] for key in VIP_FIELDS}


def test_a_refused_create_holds_no_vip(api_only, subnet, services):
    before = vip_ports(services, subnet["id"])
    response = _create(api_only, vip_subnet_id=subnet["id"], listeners=[{  # refused after the VIP
        "protocol": "TERMINATED_HTTPS", "protocol_port": 443}])
    assert fault(response, 400).startswith("Validation failure")
    assert vip_ports(services, subnet["id"]) == before


def test_a_full_vip_subnet_is_a_409_that_says_what_to_do(api_only, services):
    with services.db.write() as session:
        network = registry.create_network(session, "tiny")
        tiny = registry.create_subnet(session, "tiny-subnet", network, "10.10.0.0/29",
                                      pools=["10.10.0.2-10.10.0.3"])
        tiny_id = tiny.id
    for _ in range(2):
        assert _create(api_only, vip_subnet_id=tiny_id).status_code == 201
    message = fault(_create(api_only, vip_subnet_id=tiny_id), 409)
    assert message.startswith("no free address left on subnet tiny-subnet")
    assert "larger allocation pool" in message
