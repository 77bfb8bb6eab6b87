"""Addresses a member cannot have, and numbers that are not numbers."""
from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.api import create_lb, create_pool, fault

MEMBERS = "/v2/lbaas/pools/{}/members"


@pytest.fixture
def pool(client) -> dict[str, Any]:
    lb = create_lb(client)
    return {**create_pool(client, lb["id"]), "lb": lb}


@pytest.mark.parametrize("address", [
    "127.0.0.1", "::1", "0.0.0.0", "::", "255.255.255.255", "240.0.0.1", "224.0.0.1",
    "ff02::1", "169.254.1.1", "fe80::1", "fe80::1%eth0", "::ffff:127.0.0.1",
    "172.29.232.10",  # [networking] lb_network_cidr: where the amphora agents listen
])
def test_member_addresses_that_cannot_be_a_backend_are_refused(client, pool, address):
    response = client.post(MEMBERS.format(pool["id"]), json={"member": {
        "address": address, "protocol_port": 80}})
    assert fault(response, 400).endswith("is not a valid option for member address")


def test_the_vip_itself_is_refused_as_a_member(client, pool):
    """A request to it would come back into the listener, again and again."""
    vip = pool["lb"]["vip_address"]
    assert vip
    response = client.post(MEMBERS.format(pool["id"]), json={"member": {
        "address": vip, "protocol_port": 80}})
    assert fault(response, 400) == f"{vip} is not a valid option for member address"


def test_a_monitor_address_on_the_management_network_is_refused(client, pool):
    response = client.post(MEMBERS.format(pool["id"]), json={"member": {
        "address": "192.0.2.10", "protocol_port": 80, "monitor_address": "172.29.232.1"}})
    assert fault(response, 400) == \
        "172.29.232.1 is not a valid option for member monitor address"


@pytest.mark.parametrize(("field", "value"), [
    ("protocol_port", True), ("weight", True), ("weight", False), ("weight", 1.5),
    ("monitor_port", True),
])
def test_booleans_are_not_numbers(client, pool, field, value):
    body = {"address": "192.0.2.10", "protocol_port": 80, field: value}
    fault(client.post(MEMBERS.format(pool["id"]), json={"member": body}), 400)


def test_numbers_in_strings_are_numbers_as_upstream(client, pool):
    """WSME took "80" for 80, and the openstack command sends such strings."""
    response = client.post(MEMBERS.format(pool["id"]), json={"member": {
        "address": "192.0.2.10", "protocol_port": "80", "weight": "3"}})
    assert response.status_code == 201, response.text
    assert response.json()["member"]["weight"] == 3


def test_a_boolean_connection_limit_is_refused(client, pool):
    response = client.post("/v2/lbaas/listeners", json={"listener": {
        "loadbalancer_id": pool["lb"]["id"], "protocol": "HTTP", "protocol_port": 80,
        "connection_limit": True}})
    assert fault(response, 400).startswith("Invalid input for field/attribute connection_limit.")
