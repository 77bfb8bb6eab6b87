"""End to end: a load balancer created through the API carries real traffic."""
from __future__ import annotations

import collections

import pytest

from tests.api.helpers import wait_lb_active
from tests.dataplane import netns

pytestmark = pytest.mark.root

MEMBER_CIDR, MEMBER_POOL = "10.240.1.0/24", "10.240.1.100-10.240.1.200"
VIP_CIDR, VIP_POOL = "10.240.2.0/24", "10.240.2.100-10.240.2.200"


def _create(client, path: str, root: str, lb_id: str, **body) -> dict:
    response = client.post(path, json={root: body})
    assert response.status_code == 201, response.text
    wait_lb_active(client, lb_id)
    return response.json()[root]


def _get(namespace: str, url: str) -> str:
    result = netns.in_namespace(namespace, "curl", "-s", "--max-time", "3", url)
    return result.stdout.strip() if result.returncode == 0 else f"curl failed ({result.returncode})"


def test_http_listener_balances_between_members(dataplane, make_network, backends, client_host):
    members = make_network("members", MEMBER_CIDR, MEMBER_POOL)
    vips = make_network("vips", VIP_CIDR, VIP_POOL)
    first = backends(members, "10.240.1.11", "backend-1")
    second = backends(members, "10.240.1.12", "backend-2")
    client = client_host(vips, "10.240.2.50")

    response = dataplane.post("/v2/lbaas/loadbalancers",
                              json={"loadbalancer": {"name": "web", "vip_subnet_id": vips.subnet_id}})
    assert response.status_code == 201, response.text
    lb = wait_lb_active(dataplane, response.json()["loadbalancer"]["id"])
    listener = _create(dataplane, "/v2/lbaas/listeners", "listener", lb["id"],
                       loadbalancer_id=lb["id"], protocol="HTTP", protocol_port=80)
    pool = _create(dataplane, "/v2/lbaas/pools", "pool", lb["id"], listener_id=listener["id"],
                   protocol="HTTP", lb_algorithm="ROUND_ROBIN")
    for backend in (first, second):
        _create(dataplane, f"/v2/lbaas/pools/{pool['id']}/members", "member", lb["id"],
                address=backend.address, protocol_port=80, subnet_id=members.subnet_id)

    answers = collections.Counter(_get(client, f"http://{lb['vip_address']}/") for _ in range(10))
    assert answers == {"backend-1": 5, "backend-2": 5}
