"""An object in ERROR is left out of the configuration and can be repaired or deleted.

Every push here is rendered and checked by ``haproxy -c`` (``haproxy_checked_pushes``), as
the amphora agent checks it, so a configuration that includes a broken object fails the
push as it would on a real amphora.
"""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from lbaas import constants
from lbaas.amphora import haproxy_config
from lbaas.controller import jobs
from lbaas.db import status
from lbaas.db.models import L7Policy, Listener, LoadBalancer, Member, Pool
from tests.helpers import PROJECT, wait_for
from tests.helpers.api import (
    create_lb,
    create_listener,
    create_member,
    create_pool,
    haproxy_checked_pushes,
    render_options,
    wait_active,
    wait_gone,
    wait_lb_active,
)

MODELS = {"listener": Listener, "pool": Pool, "member": Member, "l7policy": L7Policy}


@pytest.fixture
def tree(client) -> dict[str, Any]:
    """An HTTP and a TCP listener, each with a pool of one member."""
    lb = create_lb(client)
    http = create_listener(client, lb["id"], "HTTP", 80)
    web = create_pool(client, lb["id"], listener_id=http["id"])
    web_member = create_member(client, web["id"], "192.0.2.11")
    tcp = create_listener(client, lb["id"], "TCP", 81)
    db = create_pool(client, lb["id"], "TCP", listener_id=tcp["id"])
    db_member = create_member(client, db["id"], "192.0.2.21")
    return {"lb": lb, "web": web, "web_member": web_member, "db": db, "db_member": db_member,
            "http": http}


def set_status(services, kind: str, object_id: str, value: str) -> None:
    model = MODELS[kind]
    with services.db.write() as session:
        session.execute(update(model).where(model.id == object_id)
                        .values(provisioning_status=value))


def member_path(pool_id: str, member_id: str = "") -> str:
    return f"/v2/lbaas/pools/{pool_id}/members" + (f"/{member_id}" if member_id else "")


def add_member_as_an_older_api_did(services, pool_id: str, address: str) -> str:
    """A member with an address the API now refuses, submitted as the API used to: the row
    PENDING_CREATE, the load balancer locked, a change job queued."""
    with services.db.write() as session:
        pool = session.get(Pool, pool_id)
        member = Member(pool=pool, project_id=PROJECT, ip_address=address, protocol_port=80,
                        weight=1, backup=False, enabled=True, vnic_type="normal",
                        provisioning_status=constants.PENDING_CREATE,
                        operating_status=constants.NO_MONITOR)
        session.add(member)
        session.flush()
        assert status.test_and_set(session, pool.load_balancer_id, constants.PENDING_UPDATE)
        jobs.enqueue(session, "change", lb_id=pool.load_balancer_id, targets={"member": [member.id]})
        return member.id


def test_a_member_that_breaks_the_configuration_does_not_fail_later_changes(
        client, services, drivers, tree):
    with haproxy_checked_pushes(drivers) as pushed:
        bad = add_member_as_an_older_api_did(services, tree["web"]["id"], "fe80::1%eth0")
        services.api_state.wakeup.notify()
        wait_for(lambda: client.get(member_path(tree["web"]["id"], bad)).json()["member"],
                 "provisioning_status", "ERROR")
        wait_lb_active(client, tree["lb"]["id"])
        # A weight change of another listener's member: it used to render the broken
        # member too, fail, and leave that member ERROR as well.
        path = member_path(tree["db"]["id"], tree["db_member"]["id"])
        assert client.put(path, json={"member": {"weight": 5}}).status_code == 200
        wait_lb_active(client, tree["lb"]["id"])
        assert wait_active(client, path, "member")["weight"] == 5
        assert bad not in pushed[-1] and tree["web_member"]["id"] in pushed[-1]
        # The broken member is deleted without deleting the load balancer.
        assert client.delete(member_path(tree["web"]["id"], bad)).status_code == 204
        wait_gone(client, member_path(tree["web"]["id"], bad))
    assert client.get(f"/v2/lbaas/loadbalancers/{tree['lb']['id']}").json()[
        "loadbalancer"]["provisioning_status"] == "ACTIVE"


def test_a_member_in_error_is_repaired_by_an_update(client, services, tree):
    path = member_path(tree["web"]["id"], tree["web_member"]["id"])
    set_status(services, "member", tree["web_member"]["id"], "ERROR")
    assert client.put(path, json={"member": {"weight": 3}}).status_code == 200
    assert wait_active(client, path, "member")["weight"] == 3


def test_children_of_a_pool_in_error_can_be_changed_and_removed(client, services, tree):
    pool_id = tree["web"]["id"]
    monitor = client.post("/v2/lbaas/healthmonitors", json={"healthmonitor": {
        "pool_id": pool_id, "type": "TCP", "delay": 5, "timeout": 3, "max_retries": 2}})
    assert monitor.status_code == 201, monitor.text
    monitor_path = f"/v2/lbaas/healthmonitors/{monitor.json()['healthmonitor']['id']}"
    wait_lb_active(client, tree["lb"]["id"])
    set_status(services, "pool", pool_id, "ERROR")
    path = member_path(pool_id, tree["web_member"]["id"])
    assert client.put(path, json={"member": {"weight": 7}}).status_code == 200
    assert wait_active(client, path, "member")["weight"] == 7
    wait_lb_active(client, tree["lb"]["id"])
    # The pool stays ERROR (and unserved) until a change of its own: the member change
    # did not release it as if it had been applied.
    pool = client.get(f"/v2/lbaas/pools/{pool_id}").json()["pool"]
    assert pool["provisioning_status"] == "ERROR"
    assert client.put(monitor_path, json={"healthmonitor": {"delay": 9}}).status_code == 200
    wait_lb_active(client, tree["lb"]["id"])
    assert client.delete(monitor_path).status_code == 204
    wait_gone(client, monitor_path)
    assert client.delete(path).status_code == 204
    wait_gone(client, path)
    # New children still wait for the pool to be repaired, as upstream.
    assert client.post(member_path(pool_id), json={"member": {
        "address": "192.0.2.12", "protocol_port": 80}}).status_code == 409
    assert client.put(f"/v2/lbaas/pools/{pool_id}", json={"pool": {"name": "fixed"}}).status_code == 200
    assert wait_active(client, f"/v2/lbaas/pools/{pool_id}", "pool")["name"] == "fixed"


def test_rules_of_a_policy_in_error_can_be_changed_and_removed(client, services, tree):
    response = client.post("/v2/lbaas/l7policies", json={"l7policy": {
        "listener_id": tree["http"]["id"], "action": "REJECT",
        "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/a"},
                  {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/b"}]}})
    assert response.status_code == 201, response.text
    policy = response.json()["l7policy"]
    wait_lb_active(client, tree["lb"]["id"])
    set_status(services, "l7policy", policy["id"], "ERROR")
    rules = f"/v2/lbaas/l7policies/{policy['id']}/rules"
    first, second = (rule["id"] for rule in policy["rules"])
    assert client.put(f"{rules}/{first}", json={"rule": {"value": "/c"}}).status_code == 200
    assert wait_active(client, f"{rules}/{first}", "rule")["value"] == "/c"
    wait_lb_active(client, tree["lb"]["id"])
    assert client.delete(f"{rules}/{second}").status_code == 204
    wait_gone(client, f"{rules}/{second}")
    path = f"/v2/lbaas/l7policies/{policy['id']}"
    assert client.get(path).json()["l7policy"]["provisioning_status"] == "ERROR"
    assert client.put(path, json={"l7policy": {"name": "fixed"}}).status_code == 200
    assert wait_active(client, path, "l7policy")["name"] == "fixed"


def test_a_listener_in_error_is_left_out_until_repaired(client, services, drivers, tree):
    set_status(services, "listener", tree["http"]["id"], "ERROR")
    with haproxy_checked_pushes(drivers) as pushed:
        path = member_path(tree["db"]["id"], tree["db_member"]["id"])
        assert client.put(path, json={"member": {"weight": 2}}).status_code == 200
        wait_lb_active(client, tree["lb"]["id"])
        assert f"frontend {tree['http']['id']}" not in pushed[-1]
        listener = f"/v2/lbaas/listeners/{tree['http']['id']}"
        assert client.put(listener, json={"listener": {"name": "back"}}).status_code == 200
        wait_active(client, listener, "listener")
        assert f"frontend {tree['http']['id']}" in pushed[-1]


def test_a_load_balancer_in_error_keeps_serving_everything(client, services, tree):
    with services.db.write() as session:
        session.execute(update(LoadBalancer).where(LoadBalancer.id == tree["lb"]["id"])
                        .values(provisioning_status="ERROR"))
    with services.db.read() as session:
        text = haproxy_config.render(session.get(LoadBalancer, tree["lb"]["id"]), render_options())
    assert f"frontend {tree['http']['id']}" in text
