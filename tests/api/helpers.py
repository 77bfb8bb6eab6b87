"""Small helpers to build load balancer trees through the API in tests."""
from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import wait_for

SUBNET = "8c1a4e5c-9b1f-4d5c-8f5e-0a6f3e2b9c10"


def create_lb(client: TestClient, **fields: Any) -> dict[str, Any]:
    """Create a load balancer and wait until it is ACTIVE."""
    body = {"vip_subnet_id": SUBNET, **fields}
    response = client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": body})
    assert response.status_code == 201, response.text
    return wait_lb_active(client, response.json()["loadbalancer"]["id"])


def wait_lb_active(client: TestClient, lb_id: str) -> dict[str, Any]:
    return wait_for(lambda: client.get(f"/v2/lbaas/loadbalancers/{lb_id}").json()["loadbalancer"],
                    "provisioning_status", "ACTIVE")


def fault(response: Any, code: int) -> str:
    """Assert an Octavia fault body with ``code`` and return its faultstring."""
    assert response.status_code == code, response.text
    body = response.json()
    assert set(body) == {"faultcode", "faultstring", "debuginfo"}, body
    return body["faultstring"]
