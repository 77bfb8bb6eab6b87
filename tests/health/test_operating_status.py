"""Upstream's operating-status rules, as a pure function of the tree and one heartbeat."""
from __future__ import annotations

import pytest

from lbaas.health.operating_status import (
    ListenerState,
    LoadBalancerState,
    PoolState,
    apply,
    derive,
    missing_listeners,
)

LB, LISTENER, POOL, M1, M2 = "lb", "listener", "pool", "member-1", "member-2"


def tree(lb_status="ONLINE", provisioning="ACTIVE", enabled=True, member_status="ONLINE",
         listener_enabled=True) -> LoadBalancerState:
    return LoadBalancerState(
        LB, enabled, provisioning, lb_status,
        listeners={LISTENER: ListenerState(listener_enabled, "ONLINE")},
        pools={POOL: PoolState("ONLINE", {M1: member_status, M2: member_status})})


def heartbeat(members=("UP", "UP"), pool="UP", listener="OPEN", **extra):
    message = {"id": "amp", "seq": 1, "ver": 3,
               "listeners": {LISTENER: {"status": listener, "stats": {}}},
               "pools": {f"{POOL}:{LISTENER}": {"status": pool,
                                                 "members": dict(zip((M1, M2), members, strict=True))}}}
    message.update(extra)
    return message


def test_all_up_changes_nothing_that_is_already_online():
    assert derive(tree(), heartbeat()) == {"listener": {}, "pool": {}, "member": {},
                                           "loadbalancer": {}}


def test_a_down_member_is_error_and_degrades_its_pool_and_load_balancer():
    changes = derive(tree(), heartbeat(members=("UP", "DOWN")))
    assert changes["member"] == {M2: "ERROR"}
    assert changes["pool"] == {POOL: "DEGRADED"}
    assert changes["loadbalancer"] == {LB: "DEGRADED"}


def test_a_member_back_up_is_online_again_and_so_are_pool_and_load_balancer():
    degraded = tree(lb_status="DEGRADED")
    degraded.pools[POOL] = PoolState("DEGRADED", {M1: "ONLINE", M2: "ERROR"})
    changes = derive(degraded, heartbeat())
    assert changes == {"listener": {}, "pool": {POOL: "ONLINE"}, "member": {M2: "ONLINE"},
                       "loadbalancer": {LB: "ONLINE"}}


def test_a_down_pool_is_error_and_so_is_the_load_balancer():
    changes = derive(tree(), heartbeat(members=("DOWN", "DOWN"), pool="DOWN"))
    assert changes["pool"] == {POOL: "ERROR"}
    assert changes["loadbalancer"] == {LB: "ERROR"}
    assert changes["member"] == {M1: "ERROR", M2: "ERROR"}


@pytest.mark.parametrize("reported, expected", [
    ("UP 1/3", "ONLINE"), ("DOWN 1/2", "ERROR"), ("DRAIN", "DRAINING"), ("MAINT", "OFFLINE"),
    ("no check", "NO_MONITOR"),
])
def test_member_statuses_map_as_upstream(reported, expected):
    current = "ERROR" if expected != "ERROR" else "ONLINE"
    assert derive(tree(member_status=current),
                  heartbeat(members=(reported, "UP")))["member"][M1] == expected


def test_restarting_keeps_the_member_status():
    assert M1 not in derive(tree(member_status="ERROR"),
                            heartbeat(members=("RESTARTING", "DOWN")))["member"]


def test_an_unreported_member_is_offline_unless_it_is_no_monitor():
    message = heartbeat()
    del message["pools"][f"{POOL}:{LISTENER}"]["members"][M2]
    assert derive(tree(), message)["member"] == {M2: "OFFLINE"}
    assert derive(tree(member_status="NO_MONITOR"), message)["member"] == {M1: "ONLINE"}


def test_a_full_listener_degrades_the_load_balancer():
    changes = derive(tree(), heartbeat(listener="FULL"))
    assert changes["listener"] == {LISTENER: "DEGRADED"}
    assert changes["loadbalancer"] == {LB: "DEGRADED"}


def test_an_unreported_listener_is_error_when_enabled_and_active_else_offline():
    message = heartbeat(listeners={})
    assert derive(tree(), message)["listener"] == {LISTENER: "ERROR"}
    assert derive(tree(provisioning="PENDING_UPDATE"), message)["listener"] == {LISTENER: "OFFLINE"}
    assert derive(tree(listener_enabled=False), message)["listener"] == {LISTENER: "OFFLINE"}


def test_an_unreported_pool_is_offline():
    assert derive(tree(), heartbeat(pools={}))["pool"] == {POOL: "OFFLINE"}


def test_a_disabled_load_balancer_is_offline():
    assert derive(tree(enabled=False), heartbeat())["loadbalancer"] == {LB: "OFFLINE"}


def test_an_enabled_listener_not_reported_is_missing_and_error():
    assert missing_listeners(tree(), heartbeat()) == []
    assert missing_listeners(tree(), heartbeat(listeners={})) == [LISTENER]
    assert derive(tree(), heartbeat(listeners={}))["listener"] == {LISTENER: "ERROR"}
    assert missing_listeners(tree(listener_enabled=False), heartbeat(listeners={})) == []
    assert missing_listeners(tree(provisioning="PENDING_UPDATE"), heartbeat(listeners={})) == []


def test_a_heartbeat_that_may_predate_the_last_change_leaves_unreported_listeners():
    assert missing_listeners(tree(), heartbeat(listeners={}), settling=True) == []
    assert derive(tree(), heartbeat(listeners={}), settling=True)["listener"] == {}


def test_a_listener_in_error_is_not_expected_in_the_heartbeat():
    """It is left out of haproxy.cfg: an amphora not reporting it is healthy (no failover)."""
    state = tree()
    state.listeners["broken"] = ListenerState(True, "ERROR", "ERROR")
    assert missing_listeners(state, heartbeat()) == []


def test_applied_changes_are_not_derived_again():
    state = tree()
    apply(state, derive(state, heartbeat(members=("DOWN", "UP"))))
    assert derive(state, heartbeat(members=("DOWN", "UP"))) == {
        "listener": {}, "pool": {}, "member": {}, "loadbalancer": {}}
