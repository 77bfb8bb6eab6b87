"""Failover flows: an amphora, or every amphora of a load balancer, replaced.

As upstream, the replacement is built and configured before the old amphora is removed,
and a load balancer's amphorae are replaced one at a time (the one not holding the VIP
first), so an ACTIVE_STANDBY pair keeps serving. A SINGLE amphora's replacement takes
the VIP only once the old one is gone, so that one amphora answers for it at a time and a
replacement that fails before never took it. The caller has set the load balancer
PENDING_UPDATE; a failure reverts the replacement being built (the old amphora is left
where it was, still serving if it could) and leaves the load balancer ERROR.
"""
from __future__ import annotations

from lbaas.controller.flow import Step
from lbaas.controller.tasks import amphora, failover, lifecycle, network, vrrp


def replace_amphora(lb_id: str, amphora_id: str) -> list[Step]:
    """One amphora replaced by a new one in the same role."""
    return [
        amphora.retire_amphora(amphora_id),
        amphora.build_missing(lb_id),
        network.plug_vip(lb_id, with_vip=False),
        network.plug_member_networks(lb_id),
        failover.update_amphorae(lb_id),
        vrrp.hand_over_vip(lb_id),
        vrrp.stop_retired_vrrp(lb_id),
        amphora.remove_retired(lb_id),
        network.take_vip(lb_id),
        vrrp.configure_vrrp(lb_id),
    ]


def failover_amphora(lb_id: str, amphora_id: str) -> list[Step]:
    """``PUT /v2/octavia/amphorae/{id}/failover`` and the health manager's failover."""
    return [
        lifecycle.error_on_revert(lb_id, {"loadbalancer": [lb_id]}),
        *replace_amphora(lb_id, amphora_id),
        lifecycle.settle(lb_id, {"loadbalancer": [lb_id]}),
    ]


def failover_load_balancer(lb_id: str) -> list[Step]:
    """``PUT /v2/lbaas/loadbalancers/{id}/failover``: every amphora replaced in turn, then
    any role the load balancer lacks (after a failed create, say) built."""
    return [
        lifecycle.error_on_revert(lb_id, {"loadbalancer": [lb_id]}),
        failover.replace_each(lb_id, replace_amphora),
        amphora.build_missing(lb_id),
        network.plug_vip(lb_id),
        network.plug_member_networks(lb_id),
        amphora.update_amphorae(lb_id),
        vrrp.configure_vrrp(lb_id),
        lifecycle.settle(lb_id, {"loadbalancer": [lb_id]}),
    ]
