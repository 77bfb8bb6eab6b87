"""Steps that run VRRP (keepalived) on the amphorae of an ACTIVE_STANDBY load balancer."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

from lbaas import constants
from lbaas.amphora.keepalived_config import VRRP_ID
from lbaas.controller.flow import FlowContext, Step
from lbaas.controller.tasks.amphora import live_amphorae
from lbaas.db.models import ROW_ONLY, Amphora, LoadBalancer
from lbaas.db.rows import get_row

LOG = logging.getLogger(__name__)


def _active_standby(ctx: FlowContext, lb_id: str) -> bool:
    with ctx.db.read() as session:
        lb = get_row(session, LoadBalancer, lb_id, ROW_ONLY)
        return lb.topology == constants.TOPOLOGY_ACTIVE_STANDBY


def each_live_amphora(ctx: FlowContext, lb_id: str,
                      action: Callable[[LoadBalancer, Amphora], None], what: str) -> None:
    """``action`` on every live amphora: first those this flow did not build (the ones
    already serving), then the new ones, MASTER before BACKUP (started first, the MASTER
    claims the VIP before the BACKUP stops waiting for it). An amphora this flow built
    must succeed; one it did not may be dead (that is why a failover runs) and only gets
    a warning."""
    built = set(ctx.store.get("built_amphorae", []))
    with ctx.db.read() as session:
        lb = get_row(session, LoadBalancer, lb_id)
        for amphora in sorted(live_amphorae(session, lb_id),
                              key=lambda a: (a.id in built, a.role != constants.ROLE_MASTER)):
            if amphora.id in built:
                action(lb, amphora)
                continue
            try:
                action(lb, amphora)
            except Exception as exc:
                LOG.warning("amphora %s of load balancer %s did not take the %s: %s",
                            amphora.id, lb_id, what, exc)


def configure_vrrp(lb_id: str) -> Step:
    """ACTIVE_STANDBY: record each amphora's VRRP interface, push its keepalived
    configuration and (re)start keepalived; the serving amphora first, so that a new one
    hears the MASTER as soon as it starts and stays BACKUP."""
    def execute(ctx: FlowContext) -> None:
        if not _active_standby(ctx, lb_id):
            return
        with ctx.db.read() as session:
            missing = [a for a in live_amphorae(session, lb_id) if not a.vrrp_interface]
        for amphora in missing:
            interface = ctx.drivers.amphora.vrrp_interface(amphora)
            with ctx.write() as session:
                row = get_row(session, Amphora, amphora.id, ROW_ONLY)
                row.vrrp_interface, row.vrrp_id = interface, VRRP_ID
        each_live_amphora(ctx, lb_id, ctx.drivers.amphora.update_vrrp, "VRRP configuration")
    return Step("configure-vrrp", execute)


def hand_over_vip(lb_id: str, timeout: float = 10.0) -> Step:
    """Before a replaced amphora that holds the VIP goes: it is drained first (new
    connections dropped, so that clients send their SYN again to the peer a second later;
    the open ones finished, as the peer would reset them once the VIP moved; at most
    ``[controller_worker] failover_drain_timeout``), then a live peer (already serving
    haproxy) preempts it (``takeover`` configuration) and announces the VIP; the old one
    yields. One advert and one gratuitous ARP later the clients reach the peer, so no
    request is lost. ``configure_vrrp`` afterwards gives the peer its own priority back
    (a reload keeps it MASTER)."""
    def execute(ctx: FlowContext) -> None:
        if not _active_standby(ctx, lb_id):
            return
        with ctx.db.read() as session:
            lb = get_row(session, LoadBalancer, lb_id)
            vip = lb.vip_address
            if vip is None:
                return  # no VIP address yet: none to hand over
            retired = [get_row(session, Amphora, amphora_id)
                       for amphora_id in ctx.store.get("retired", [])]
            holding = [a for a in retired if ctx.drivers.amphora.holds_address(a, vip)]
            built = set(ctx.store.get("built_amphorae", []))
            peers = [a for a in live_amphorae(session, lb_id)  # running keepalived already
                     if a.id not in built and a.vrrp_interface]
            if not holding or not peers:
                return
            peer = peers[0]
            for amphora in holding:
                _drain(ctx, amphora, vip)
            try:
                ctx.drivers.amphora.update_vrrp(lb, peer, takeover=True)
            except Exception as exc:
                LOG.warning("amphora %s could not take the VIP of load balancer %s over (%s); "
                            "the old one's keepalived is stopped anyway", peer.id, lb_id, exc)
                return
        deadline = time.monotonic() + timeout
        while not ctx.drivers.amphora.holds_address(peer, vip):
            if time.monotonic() > deadline:
                LOG.warning("amphora %s did not take the VIP of load balancer %s within %.0f s; "
                            "the old one's keepalived is stopped anyway", peer.id, lb_id, timeout)
                return
            time.sleep(0.02)
    return Step("hand-over-vip", execute)


def _drain(ctx: FlowContext, amphora: Amphora, vip: str) -> None:
    timeout = ctx.settings.controller_worker.failover_drain_timeout
    try:
        left = ctx.drivers.amphora.drain(amphora, [vip], timeout)
    except Exception as exc:  # it may be dying: the hand-over goes on without
        LOG.info("amphora %s could not be drained (%s); handing its VIP over anyway",
                 amphora.id, exc)
        return
    if left:
        LOG.warning("amphora %s: haproxy still had connections after %.0f s of draining "
                    "(pids %s); they are cut by the hand-over", amphora.id, timeout, left)


def stop_retired_vrrp(lb_id: str) -> Step:
    """Before a replaced amphora goes: stop its keepalived, so that as MASTER it hands the
    VIP over at once (a priority 0 advert) instead of the BACKUP waiting for silence.
    A dead amphora does not answer, and that is fine."""
    def execute(ctx: FlowContext) -> None:
        if not _active_standby(ctx, lb_id):
            return
        for amphora_id in ctx.store.get("retired", []):
            with ctx.db.read() as session:
                amphora = get_row(session, Amphora, amphora_id)
            try:
                ctx.drivers.amphora.stop_vrrp(amphora)
            except Exception as exc:
                LOG.info("amphora %s did not stop its keepalived (%s); removing it", amphora_id, exc)
    return Step("stop-retired-vrrp", execute)
