"""Steps that allocate the VIP and plug amphorae into the VIP and member networks.

Plugging a port is three acts (an address, an interface, its configuration in the
amphora), each of which can be repeated. A port being plugged is named in the flow's
store before the first act and dropped after the last, so a flow run again after a
crash in between plugs it fully instead of taking the address as proof of the rest.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lbaas import constants
from lbaas.controller.flow import FlowContext, Step
from lbaas.controller.tasks.amphora import live_amphorae
from lbaas.db.models import ROW_ONLY, Amphora, LoadBalancer, Member, Pool
from lbaas.db.rows import get_row
from lbaas.drivers.network.base import Port, VipRequest


def _vip_request(lb: LoadBalancer) -> VipRequest:
    return VipRequest(load_balancer_id=lb.id, ip_address=lb.vip_address, port_id=lb.vip_port_id,
                      subnet_id=lb.vip_subnet_id, network_id=lb.vip_network_id)


def allocate_vip(lb_id: str) -> Step:
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            request = _vip_request(get_row(session, LoadBalancer, lb_id, ROW_ONLY))
        vip = ctx.drivers.network.allocate_vip(request)
        with ctx.write() as session:
            ctx.store["vip_port_id"] = vip.id
            lb = get_row(session, LoadBalancer, lb_id, ROW_ONLY)
            lb.vip_address, lb.vip_port_id = vip.ip_address, vip.id
            lb.vip_subnet_id, lb.vip_network_id = vip.subnet_id, vip.network_id

    def revert(ctx: FlowContext) -> None:
        if "vip_port_id" in ctx.store:
            ctx.drivers.network.release_port(ctx.store["vip_port_id"])
    return Step("allocate-vip", execute, revert)


def _vip(ctx: FlowContext, lb: LoadBalancer) -> Port:
    """The load balancer's VIP port (allocated again if it was released)."""
    return (ctx.drivers.network.get_port(lb.vip_port_id or "")
            or ctx.drivers.network.allocate_vip(_vip_request(lb)))


def _plugging(ctx: FlowContext, amphora_id: str, subnet_id: str | None, *, done: bool) -> None:
    """Name (or, ``done``, stop naming) a port the flow is plugging, in its saved store."""
    plugging = ctx.store.setdefault("plugging", [])
    key = f"{amphora_id}/{subnet_id}"
    with ctx.write():
        if done and key in plugging:
            plugging.remove(key)
        elif not done and key not in plugging:
            plugging.append(key)


def _plug(ctx: FlowContext, amphora: Amphora, subnet_id: str | None) -> tuple[Port, str]:
    """Allocate the amphora's port on the subnet and plug it in; returns it and its MAC."""
    port = ctx.drivers.network.allocate_port(amphora.id, subnet_id)
    ctx.crashpoint("port-allocated")
    return port, ctx.drivers.compute.attach_port(amphora.compute_id or "", port,
                                                 host=amphora.cached_zone)


def plug_vip(lb_id: str, with_vip: bool = True) -> Step:
    """Give each amphora without one a port on the VIP subnet carrying its own and the VIP
    address (not ``with_vip``: its own only, until ``take_vip``)."""
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            lb = get_row(session, LoadBalancer, lb_id, ROW_ONLY)
            amphorae = [a for a in live_amphorae(session, lb_id) if a.vrrp_port_id is None]
        if not amphorae:
            return
        vip = _vip(ctx, lb)
        for amphora in amphorae:
            vrrp, mac = _plug(ctx, amphora, lb.vip_subnet_id)
            ctx.drivers.amphora.post_vip_plug(amphora, vip, vrrp, mac, with_vip=with_vip,
                                              topology=lb.topology or constants.TOPOLOGY_SINGLE)
            with ctx.write() as session:
                row = get_row(session, Amphora, amphora.id, ROW_ONLY)
                row.vrrp_ip, row.vrrp_port_id = vrrp.ip_address, vrrp.id
                row.ha_ip, row.ha_port_id = vip.ip_address, vip.id
    return Step("plug-vip", execute)


def take_vip(lb_id: str) -> Step:
    """SINGLE failover, once the old amphora is gone: the new one, already serving the
    configuration, adds the VIP address and announces it. Until then only the old one
    answered for the VIP, and a failed failover never moved it. (ACTIVE_STANDBY: VRRP
    moves the VIP.)"""
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            lb = get_row(session, LoadBalancer, lb_id, ROW_ONLY)
            amphorae = live_amphorae(session, lb_id)
        if lb.topology == constants.TOPOLOGY_ACTIVE_STANDBY:
            return
        vip = _vip(ctx, lb)
        for amphora in amphorae:
            vrrp, mac = _plug(ctx, amphora, lb.vip_subnet_id)  # plugged already: found again
            ctx.drivers.amphora.post_vip_plug(amphora, vip, vrrp, mac, with_vip=True)
    return Step("take-vip", execute)


def _member_subnets(session: Session, lb: LoadBalancer) -> set[str]:
    """The subnets of the load balancer's members (not being deleted) but the VIP's.

    Members of every pool count, whichever sends them traffic: a listener's default
    pool, an L7 policy's redirect pool, or none yet.
    """
    return set(session.scalars(
        select(Member.subnet_id).distinct().join(Pool, Pool.id == Member.pool_id)
        .where(Pool.load_balancer_id == lb.id, Member.subnet_id.is_not(None),
               Member.subnet_id != lb.vip_subnet_id,  # IS NOT NULL when there is no VIP subnet
               Member.provisioning_status != constants.PENDING_DELETE)))


def plug_member_networks(lb_id: str) -> Step:
    """Plug each amphora into every member subnet it lacks; unplug the ones no longer used."""
    def execute(ctx: FlowContext) -> None:
        network, compute = ctx.drivers.network, ctx.drivers.compute
        with ctx.db.read() as session:
            lb = get_row(session, LoadBalancer, lb_id, ROW_ONLY)
            needed = _member_subnets(session, lb)
            amphorae = live_amphorae(session, lb_id)
        unfinished = set(ctx.store.get("plugging", []))
        for amphora in amphorae:
            ports = [p for p in network.ports_of(amphora.id)  # not management, not VIP
                     if p.ip_address != amphora.lb_network_ip and p.subnet_id != lb.vip_subnet_id]
            plugged = {port.subnet_id for port in ports
                       if f"{amphora.id}/{port.subnet_id}" not in unfinished}
            for subnet_id in sorted(needed - plugged):
                _plugging(ctx, amphora.id, subnet_id, done=False)
                port, mac = _plug(ctx, amphora, subnet_id)
                ctx.drivers.amphora.post_network_plug(amphora, port, mac)
                _plugging(ctx, amphora.id, subnet_id, done=True)
            for port in ports:
                if port.subnet_id not in needed:
                    compute.detach_port(amphora.compute_id or "", port, host=amphora.cached_zone)
                    network.release_port(port.id)
    return Step("plug-member-networks", execute)


def release_vip(lb_id: str) -> Step:
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            lb = session.get(LoadBalancer, lb_id, options=ROW_ONLY)
            port_id = lb.vip_port_id if lb is not None else None  # purged: nothing to give back
        if port_id:
            ctx.drivers.network.release_port(port_id)
    return Step("release-vip", execute)
