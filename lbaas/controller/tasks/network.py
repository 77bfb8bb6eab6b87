"""Steps that allocate the VIP and plug amphorae into the VIP and member networks."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lbaas import constants
from lbaas.controller.flow import FlowContext, Step
from lbaas.controller.tasks.amphora import live_amphorae
from lbaas.db.models import ROW_ONLY, Amphora, LoadBalancer, Member, Pool
from lbaas.drivers.network.base import VipRequest


def allocate_vip(lb_id: str) -> Step:
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            lb = session.get(LoadBalancer, lb_id, options=ROW_ONLY)
            request = VipRequest(load_balancer_id=lb.id, ip_address=lb.vip_address,
                                 port_id=lb.vip_port_id, subnet_id=lb.vip_subnet_id,
                                 network_id=lb.vip_network_id)
        vip = ctx.drivers.network.allocate_vip(request)
        ctx.store["vip_port_id"] = vip.id
        with ctx.db.write() as session:
            lb = session.get(LoadBalancer, lb_id, options=ROW_ONLY)
            lb.vip_address, lb.vip_port_id = vip.ip_address, vip.id
            lb.vip_subnet_id, lb.vip_network_id = vip.subnet_id, vip.network_id

    def revert(ctx: FlowContext) -> None:
        if "vip_port_id" in ctx.store:
            ctx.drivers.network.release_port(ctx.store["vip_port_id"])
    return Step("allocate-vip", execute, revert)


def plug_vip(lb_id: str) -> Step:
    """Give each amphora without one a port on the VIP subnet carrying its own and the VIP address."""
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            lb = session.get(LoadBalancer, lb_id, options=ROW_ONLY)
            amphorae = [a for a in live_amphorae(session, lb_id) if a.vrrp_port_id is None]
        vip = ctx.drivers.network.get_port(lb.vip_port_id) or ctx.drivers.network.allocate_vip(
            VipRequest(load_balancer_id=lb.id, ip_address=lb.vip_address, port_id=lb.vip_port_id,
                       subnet_id=lb.vip_subnet_id, network_id=lb.vip_network_id))
        for amphora in amphorae:
            vrrp = ctx.drivers.network.allocate_port(amphora.id, lb.vip_subnet_id)
            mac = ctx.drivers.compute.attach_port(amphora.compute_id or "", vrrp)
            ctx.drivers.amphora.post_vip_plug(amphora, vip, vrrp, mac,
                                              topology=lb.topology or constants.TOPOLOGY_SINGLE)
            with ctx.db.write() as session:
                row = session.get(Amphora, amphora.id)
                row.vrrp_ip, row.vrrp_port_id = vrrp.ip_address, vrrp.id
                row.ha_ip, row.ha_port_id = vip.ip_address, vip.id
    return Step("plug-vip", execute)


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
            lb = session.get(LoadBalancer, lb_id, options=ROW_ONLY)
            needed = _member_subnets(session, lb)
            amphorae = live_amphorae(session, lb_id)
        for amphora in amphorae:
            fixed = {amphora.lb_network_ip, amphora.vrrp_ip}
            ports = [p for p in network.ports_of(amphora.id) if p.ip_address not in fixed]
            plugged = {port.subnet_id for port in ports}
            for subnet_id in sorted(needed - plugged):
                port = network.allocate_port(amphora.id, subnet_id)
                mac = compute.attach_port(amphora.compute_id or "", port)
                ctx.drivers.amphora.post_network_plug(amphora, port, mac)
            for port in ports:
                if port.subnet_id not in needed:
                    compute.detach_port(amphora.compute_id or "", port)
                    network.release_port(port.id)
    return Step("plug-member-networks", execute)


def release_vip(lb_id: str) -> Step:
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            port_id = session.get(LoadBalancer, lb_id, options=ROW_ONLY).vip_port_id
        if port_id:
            ctx.drivers.network.release_port(port_id)
    return Step("release-vip", execute)
