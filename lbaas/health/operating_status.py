"""Operating statuses from a heartbeat, by upstream's rules (``heartbeat_udp.update_health``).

A pure function from the load balancer's current statuses and one heartbeat to the
statuses that change:

* load balancer: ONLINE (OFFLINE if disabled) unless something below degrades it;
* listener: ``OPEN`` -> ONLINE; ``FULL`` -> DEGRADED (and the LB DEGRADED); not reported ->
  ERROR if it is enabled and the LB ACTIVE, else OFFLINE (unchanged while ``settling``, see
  ``missing_listeners``);
* pool: ``UP`` -> ONLINE; ``DOWN`` -> ERROR (and the LB ERROR); not reported -> OFFLINE;
* member: ``UP…`` -> ONLINE; ``DOWN…`` -> ERROR (pool and LB ONLINE -> DEGRADED);
  ``DRAIN`` -> DRAINING; ``MAINT`` -> OFFLINE; ``no check`` -> NO_MONITOR; ``RESTARTING``
  -> unchanged; not reported -> OFFLINE unless NO_MONITOR.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from lbaas import constants

LOG = logging.getLogger(__name__)


@dataclass
class ListenerState:
    enabled: bool
    operating_status: str
    provisioning_status: str = constants.ACTIVE

    @property
    def served(self) -> bool:
        """Whether the amphora serves it: enabled, and not left out for being in ERROR."""
        return self.enabled and self.provisioning_status != constants.ERROR


@dataclass
class PoolState:
    operating_status: str
    members: dict[str, str] = field(default_factory=dict)  # member id -> operating status


@dataclass
class LoadBalancerState:
    """The statuses of one load balancer's tree as the database holds them."""

    id: str
    enabled: bool
    provisioning_status: str
    operating_status: str
    listeners: dict[str, ListenerState] = field(default_factory=dict)
    pools: dict[str, PoolState] = field(default_factory=dict)
    changed_at: dt.datetime | None = None  # its last provisioning or status change (UTC)


Changes = dict[str, dict[str, str]]  # kind ("loadbalancer", ...) -> object id -> new status


def missing_listeners(lb: LoadBalancerState, message: dict[str, Any],
                      settling: bool = False) -> list[str]:
    """The listeners the amphora should serve but does not report (none while the load
    balancer is PENDING_* or disabled, or ``settling``: the heartbeat may have been built
    before the load balancer's last change reached its amphora, see
    lbaas.health.update.SETTLE; a listener in ERROR is not rendered, so not expected).

    Upstream counts them and takes an amphora reporting fewer for dead, failing it over
    again and again when the cause is the configuration (a listener it cannot serve);
    here the heartbeat proves the amphora alive and the listeners it lacks go ERROR
    (``derive``), with the reason logged by the health manager."""
    if lb.provisioning_status.startswith("PENDING") or not lb.enabled or settling:
        return []
    reported = message.get("listeners", {})
    return [listener_id for listener_id, listener in lb.listeners.items()
            if listener.served and listener_id not in reported]


def _listener_status(lb: LoadBalancerState, listener: ListenerState,
                     reported: dict[str, Any] | None, settling: bool) -> str | None:
    if reported is None:
        if settling:
            return None
        return (constants.ERROR if listener.enabled
                and lb.provisioning_status == constants.ACTIVE else constants.OFFLINE)
    status = reported.get("status")
    if status == "OPEN":
        return constants.ONLINE
    if status == "FULL":
        return constants.DEGRADED
    LOG.warning("listener reported an unknown status %r", status)
    return None


def _member_status(reported: str | None, current: str) -> str | None:
    if reported is None:
        return None if current == constants.NO_MONITOR else constants.OFFLINE
    if reported.startswith("UP"):
        return constants.ONLINE
    if reported.startswith("DOWN"):
        return constants.ERROR
    if reported == "DRAIN":
        return constants.DRAINING
    if reported.startswith("MAINT"):
        return constants.OFFLINE
    if reported == "no check":
        return constants.NO_MONITOR
    if reported != "RESTARTING":
        LOG.warning("member reported an unknown status %r", reported)
    return None


def _degrade(status: str) -> str:
    return constants.DEGRADED if status == constants.ONLINE else status


def derive(lb: LoadBalancerState, message: dict[str, Any], settling: bool = False) -> Changes:
    """The operating statuses ``message`` changes in ``lb``'s tree (``settling``: see
    ``missing_listeners``)."""
    changes: Changes = {"listener": {}, "pool": {}, "member": {}, "loadbalancer": {}}
    lb_status = constants.ONLINE if lb.enabled else constants.OFFLINE
    reported_listeners = message.get("listeners", {})
    for listener_id, listener in lb.listeners.items():
        status = _listener_status(lb, listener, reported_listeners.get(listener_id), settling)
        if status == constants.DEGRADED:
            lb_status = _degrade(lb_status)
        if status is not None and status != listener.operating_status:
            changes["listener"][listener_id] = status
    # Backends are "<pool id>:<listener id>"; a pool behind several listeners counts once.
    reported_pools = {key.rpartition(":")[0] or key: value
                      for key, value in message.get("pools", {}).items()}
    for pool_id, pool in lb.pools.items():
        reported = reported_pools.get(pool_id)
        if reported is None:
            pool_status: str | None = constants.OFFLINE
        else:
            pool_status = {"UP": constants.ONLINE, "DOWN": constants.ERROR}.get(
                reported.get("status"))
            if pool_status == constants.ERROR:
                lb_status = constants.ERROR
            members = reported.get("members", {})
            for member_id, current in pool.members.items():
                status = _member_status(members.get(member_id), current)
                if status == constants.ERROR and pool_status == constants.ONLINE:
                    pool_status = constants.DEGRADED
                    lb_status = _degrade(lb_status)
                if status is not None and status != current:
                    changes["member"][member_id] = status
        if pool_status is not None and pool_status != pool.operating_status:
            changes["pool"][pool_id] = pool_status
    if lb_status != lb.operating_status:
        changes["loadbalancer"][lb.id] = lb_status
    return changes


def apply(lb: LoadBalancerState, changes: Changes) -> None:
    """Record ``changes`` in ``lb`` (so that the next heartbeat compares with them)."""
    for listener_id, status in changes["listener"].items():
        lb.listeners[listener_id].operating_status = status
    for pool_id, status in changes["pool"].items():
        lb.pools[pool_id].operating_status = status
    for pool in lb.pools.values():
        for member_id in pool.members.keys() & changes["member"].keys():
            pool.members[member_id] = changes["member"][member_id]
    if lb.id in changes["loadbalancer"]:
        lb.operating_status = changes["loadbalancer"][lb.id]
