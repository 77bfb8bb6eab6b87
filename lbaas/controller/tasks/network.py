"""Steps that allocate the VIP and plug amphorae into its network."""
from __future__ import annotations

from lbaas.controller.flow import FlowContext, Step
from lbaas.controller.tasks.amphora import live_amphorae
from lbaas.db.models import Amphora, LoadBalancer
from lbaas.drivers.network.base import Vip, VipRequest


def _vip(lb: LoadBalancer) -> Vip:
    return Vip(ip_address=lb.vip_address or "", port_id=lb.vip_port_id or "",
               subnet_id=lb.vip_subnet_id, network_id=lb.vip_network_id)


def allocate_vip(lb_id: str) -> Step:
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            lb = session.get(LoadBalancer, lb_id)
            request = VipRequest(load_balancer_id=lb.id, ip_address=lb.vip_address,
                                 port_id=lb.vip_port_id, subnet_id=lb.vip_subnet_id,
                                 network_id=lb.vip_network_id)
        vip = ctx.drivers.network.allocate_vip(request)
        ctx.store["vip"] = vip
        with ctx.db.write() as session:
            lb = session.get(LoadBalancer, lb_id)
            lb.vip_address, lb.vip_port_id = vip.ip_address, vip.port_id
            lb.vip_subnet_id, lb.vip_network_id = vip.subnet_id, vip.network_id

    def revert(ctx: FlowContext) -> None:
        if "vip" in ctx.store:
            ctx.drivers.network.deallocate_vip(ctx.store["vip"])
    return Step("allocate-vip", execute, revert)


def plug_vip(lb_id: str) -> Step:
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            vip = _vip(session.get(LoadBalancer, lb_id))
            amphorae = live_amphorae(session, lb_id)
        plugged = ctx.store.setdefault("plugged", [])
        for amphora in amphorae:
            vrrp_ip = ctx.drivers.network.plug_vip(vip, amphora.id, amphora.compute_id or "")
            plugged.append((amphora.id, amphora.compute_id or ""))
            with ctx.db.write() as session:
                row = session.get(Amphora, amphora.id)
                row.vrrp_ip, row.ha_ip, row.ha_port_id = vrrp_ip, vip.ip_address, vip.port_id

    def revert(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            vip = _vip(session.get(LoadBalancer, lb_id))
        for amphora_id, compute_id in ctx.store.get("plugged", []):
            ctx.drivers.network.unplug_vip(vip, amphora_id, compute_id)
    return Step("plug-vip", execute, revert)


def release_vip(lb_id: str) -> Step:
    """Unplug every amphora from the VIP network and give the VIP address back."""
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            vip = _vip(session.get(LoadBalancer, lb_id))
            amphorae = live_amphorae(session, lb_id)
        for amphora in amphorae:
            ctx.drivers.network.unplug_vip(vip, amphora.id, amphora.compute_id or "")
        if vip.ip_address:
            ctx.drivers.network.deallocate_vip(vip)
    return Step("release-vip", execute)
