"""End to end: L7 policies created through the API route, reject and redirect real requests."""
from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.api import (
    create_lb,
    create_listener,
    create_member,
    create_pool,
    wait_lb_active,
)
from tests.helpers.dataplane import Topology, curl

pytestmark = pytest.mark.root

IMAGES_CIDR, IMAGES_POOL = "10.240.3.0/24", "10.240.3.100-10.240.3.200"


def create_policy(client, lb_id: str, listener_id: str, action: str,
                  rules: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """An L7 policy with its rules, created in one call; waits for the load balancer."""
    response = client.post("/v2/lbaas/l7policies", json={"l7policy": {
        "listener_id": listener_id, "action": action, "rules": rules, **fields}})
    assert response.status_code == 201, response.text
    wait_lb_active(client, lb_id)
    return response.json()["l7policy"]


def status_and_location(namespace: str, url: str, *options: str) -> str:
    """``<status> <Location>`` of one request, just the status when there is no redirect."""
    return curl(namespace, url, "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                *options)


def test_l7_policies_route_reject_and_redirect(dataplane, topology: Topology, make_network,
                                               backends):
    """Pool A is the default, pool B (a member on a subnet of its own) serves /b."""
    images = make_network("images", IMAGES_CIDR, IMAGES_POOL)
    backend_b = backends.add(images, "10.240.3.11", "backend-b")
    for backend in (*topology.backends, backend_b):
        (backend.root / "b").mkdir()
        (backend.root / "b" / "index.html").write_text(backend.name)
    lb = create_lb(dataplane, vip_subnet_id=topology.vips.subnet_id)
    listener = create_listener(dataplane, lb["id"], "HTTP", 80)
    pool_a = create_pool(dataplane, lb["id"], "HTTP", listener_id=listener["id"])
    create_member(dataplane, pool_a["id"], topology.backends[0].address,
                  subnet_id=topology.members.subnet_id)
    pool_b = create_pool(dataplane, lb["id"], "HTTP")
    create_member(dataplane, pool_b["id"], backend_b.address, subnet_id=images.subnet_id)
    url = f"http://{lb['vip_address']}"

    to_b = create_policy(dataplane, lb["id"], listener["id"], "REDIRECT_TO_POOL", [
        {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/b"}],
        redirect_pool_id=pool_b["id"])
    assert curl(topology.client, f"{url}/b/") == "backend-b"
    assert curl(topology.client, f"{url}/") == "backend-1"

    reject = create_policy(dataplane, lb["id"], listener["id"], "REJECT", [
        {"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X-Block", "value": "yes"}])
    assert status_and_location(topology.client, f"{url}/b/", "-H", "X-Block: yes") == "403"
    assert status_and_location(topology.client, f"{url}/b/", "-H", "X-Block: no") == "200"

    create_policy(dataplane, lb["id"], listener["id"], "REDIRECT_TO_URL", [
        {"type": "PATH", "compare_type": "EQUAL_TO", "value": "/old"}],
        redirect_url="http://example.com/new", redirect_http_code=301)
    assert status_and_location(topology.client, f"{url}/old") == "301 http://example.com/new"
    assert curl(topology.client, f"{url}/") == "backend-1"

    response = dataplane.put(f"/v2/lbaas/l7policies/{reject['id']}",
                             json={"l7policy": {"admin_state_up": False}})
    assert response.status_code == 200, response.text
    wait_lb_active(dataplane, lb["id"])
    assert status_and_location(topology.client, f"{url}/b/", "-H", "X-Block: yes") == "200"
    assert dataplane.delete(f"/v2/lbaas/l7policies/{to_b['id']}").status_code == 204
    wait_lb_active(dataplane, lb["id"])
    assert curl(topology.client, f"{url}/b/") == "backend-1"
