"""The load balancer resource: create, show, list, update, delete, failover, status, stats."""
from __future__ import annotations

import uuid

from tests.helpers import PROJECT, wait_for
from tests.helpers.api import SUBNET, create_lb, fault, wait_lb_active


def test_create_goes_pending_then_active(client):
    response = client.post("/v2/lbaas/loadbalancers",
                           json={"loadbalancer": {"name": "web", "vip_subnet_id": SUBNET}})
    assert response.status_code == 201
    lb = response.json()["loadbalancer"]
    assert lb["provisioning_status"] == "PENDING_CREATE"
    assert lb["operating_status"] == "OFFLINE"
    assert lb["project_id"] == PROJECT
    assert lb["provider"] == "amphora"
    active = wait_lb_active(client, lb["id"])
    assert active["vip_address"]
    assert active["vip_port_id"]


def test_create_without_vip_is_rejected(client):
    text = fault(client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {"name": "x"}}), 400)
    assert text == "Validation failure: VIP must contain one of: port_id, network_id, subnet_id."


def test_create_with_bad_uuid_names_the_field(client):
    text = fault(client.post("/v2/lbaas/loadbalancers",
                             json={"loadbalancer": {"vip_subnet_id": "nope"}}), 400)
    assert "vip_subnet_id" in text and "nope" in text


def test_unknown_attribute_is_rejected(client):
    text = fault(client.post("/v2/lbaas/loadbalancers",
                             json={"loadbalancer": {"vip_subnet_id": SUBNET, "bogus": 1}}), 400)
    assert "bogus" in text


def test_show_unknown_is_404(client):
    missing = str(uuid.uuid4())
    assert fault(client.get(f"/v2/lbaas/loadbalancers/{missing}"), 404) == \
        f"Load Balancer {missing} not found."


def test_update_returns_new_values_and_settles(client):
    lb = create_lb(client, name="before")
    response = client.put(f"/v2/lbaas/loadbalancers/{lb['id']}",
                          json={"loadbalancer": {"name": "after", "admin_state_up": False}})
    assert response.status_code == 200
    body = response.json()["loadbalancer"]
    assert body["name"] == "after" and body["admin_state_up"] is False
    assert body["provisioning_status"] == "PENDING_UPDATE"
    assert wait_lb_active(client, lb["id"])["name"] == "after"


def test_update_null_resets_to_default(client):
    lb = create_lb(client, name="x", admin_state_up=False, tags=["a"])
    body = client.put(f"/v2/lbaas/loadbalancers/{lb['id']}",
                      json={"loadbalancer": {"admin_state_up": None, "tags": None, "name": None}}).json()
    assert body["loadbalancer"]["admin_state_up"] is True
    assert body["loadbalancer"]["tags"] == []
    assert body["loadbalancer"]["name"] == ""  # null resets it; upstream shows ""


def test_pending_load_balancer_is_immutable(api_only):
    lb = api_only.post("/v2/lbaas/loadbalancers",
                       json={"loadbalancer": {"vip_subnet_id": SUBNET}}).json()["loadbalancer"]
    text = fault(api_only.put(f"/v2/lbaas/loadbalancers/{lb['id']}",
                              json={"loadbalancer": {"name": "y"}}), 409)
    assert text == f"Load Balancer {lb['id']} is immutable and cannot be updated."
    fault(api_only.delete(f"/v2/lbaas/loadbalancers/{lb['id']}"), 409)


def test_delete_marks_deleted_and_hides(client):
    lb = create_lb(client)
    assert client.delete(f"/v2/lbaas/loadbalancers/{lb['id']}").status_code == 204
    wait_for(lambda: {"code": client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").status_code},
             "code", 404)
    listed = client.get("/v2/lbaas/loadbalancers").json()["loadbalancers"]
    assert lb["id"] not in [item["id"] for item in listed]


def test_failover_rebuilds_amphora_and_returns_active(client):
    lb = create_lb(client)
    assert client.put(f"/v2/lbaas/loadbalancers/{lb['id']}/failover").status_code == 202
    wait_lb_active(client, lb["id"])


def test_failed_create_leaves_error_not_pending(client, drivers):
    def broken(*_args, **_kwargs):
        raise RuntimeError("compute is down")
    drivers.compute.build = broken
    lb = client.post("/v2/lbaas/loadbalancers",
                     json={"loadbalancer": {"vip_subnet_id": SUBNET}}).json()["loadbalancer"]
    wait_for(lambda: client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"],
             "provisioning_status", "ERROR")
    # A load balancer in ERROR can still be deleted.
    assert client.delete(f"/v2/lbaas/loadbalancers/{lb['id']}").status_code == 204


def test_status_tree_and_stats_of_empty_lb(client):
    lb = create_lb(client, name="tree")
    tree = client.get(f"/v2/lbaas/loadbalancers/{lb['id']}/status").json()
    assert tree == {"statuses": {"loadbalancer": {
        "id": lb["id"], "name": "tree", "operating_status": "OFFLINE",
        "provisioning_status": "ACTIVE", "listeners": []}}}
    stats = client.get(f"/v2/lbaas/loadbalancers/{lb['id']}/stats").json()
    assert stats == {"stats": {"bytes_in": 0, "bytes_out": 0, "active_connections": 0,
                               "total_connections": 0, "request_errors": 0}}
