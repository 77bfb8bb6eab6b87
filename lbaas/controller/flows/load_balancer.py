"""Flows for a load balancer as a whole: create and delete (failover: flows/failover.py)."""
from __future__ import annotations

from lbaas.controller.flow import Step
from lbaas.controller.tasks import amphora, lifecycle, network, vrrp


def create(lb_id: str) -> list[Step]:
    """Build the amphorae, give them the VIP, push any listeners created with the LB. An
    ACTIVE_STANDBY pair starts VRRP as soon as it is plugged (as upstream): the MASTER's
    wait for silence before it takes the VIP overlaps the rest of the flow."""
    return [
        lifecycle.error_tree_on_revert(lb_id),
        network.allocate_vip(lb_id),
        amphora.build_missing(lb_id),
        network.plug_vip(lb_id),
        vrrp.configure_vrrp(lb_id),
        network.plug_member_networks(lb_id),
        amphora.update_amphorae(lb_id),
        lifecycle.settle_tree(lb_id),
    ]


def delete(lb_id: str, cascade: bool) -> list[Step]:
    """Every amphora of the load balancer removed (whatever its state), its VIP released."""
    steps = [lifecycle.error_on_revert(lb_id, {"loadbalancer": [lb_id]})]
    if cascade:
        steps.append(lifecycle.delete_children(lb_id))
    return steps + [
        amphora.delete_amphorae(lb_id),
        network.release_vip(lb_id),
        lifecycle.mark_deleted(lb_id),
    ]
