"""The worker plugs amphorae into the subnets of a load balancer's members, not the VIP's."""
from __future__ import annotations

from tests.helpers.api import SUBNET, create_lb, wait_lb_active

MEMBER_SUBNET = "5b7e2c1d-3f4a-4e6b-8c9d-0a1b2c3d4e5f"


def test_amphorae_are_plugged_into_member_subnets_other_than_the_vip_subnet(client, drivers):
    plugged: list[str | None] = []
    allocate_port = drivers.network.allocate_port

    def recording_allocate_port(owner, subnet_id):  # type: ignore[no-untyped-def]
        plugged.append(subnet_id)
        return allocate_port(owner, subnet_id)

    drivers.network.allocate_port = recording_allocate_port
    lb = create_lb(client)
    pool = client.post("/v2/lbaas/pools", json={"pool": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})
    assert pool.status_code == 201, pool.text
    wait_lb_active(client, lb["id"])
    plugged.clear()

    for address, subnet_id in (("10.0.0.5", MEMBER_SUBNET), ("10.0.0.6", SUBNET)):
        member = client.post(f"/v2/lbaas/pools/{pool.json()['pool']['id']}/members", json={
            "member": {"address": address, "protocol_port": 80, "subnet_id": subnet_id}})
        assert member.status_code == 201, member.text
        wait_lb_active(client, lb["id"])

    assert set(plugged) == {MEMBER_SUBNET}
