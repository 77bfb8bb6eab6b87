"""Showing a load balancer loads its collections its own way; it must agree with the list."""
from __future__ import annotations

from tests.helpers.api import create_lb, wait_lb_active

OTHER_SUBNET = "2f0d1c3e-7a4b-4c59-9e61-5d8b7a6c4f21"


def _add(client, lb_id: str, kind: str, body: dict) -> str:
    response = client.post(f"/v2/lbaas/{kind}s", json={kind: {"loadbalancer_id": lb_id, **body}})
    assert response.status_code == 201, response.text
    wait_lb_active(client, lb_id)
    return response.json()[kind]["id"]


def test_show_names_every_listener_pool_tag_and_additional_vip_as_the_list_does(client):
    lb = create_lb(client, tags=["blue", "edge"], additional_vips=[{"subnet_id": OTHER_SUBNET}])
    listeners = [_add(client, lb["id"], "listener", {"protocol": "HTTP", "protocol_port": port})
                 for port in (80, 8080)]
    pools = [_add(client, lb["id"], "pool", {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"})
             for _ in range(2)]

    shown = client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"]
    listed = client.get("/v2/lbaas/loadbalancers", params={"id": lb["id"]}).json()["loadbalancers"]

    assert listed == [shown]
    assert shown["listeners"] == [{"id": listener_id} for listener_id in listeners]
    assert shown["pools"] == [{"id": pool_id} for pool_id in pools]
    assert shown["tags"] == ["blue", "edge"]
    assert [vip["subnet_id"] for vip in shown["additional_vips"]] == [OTHER_SUBNET]
