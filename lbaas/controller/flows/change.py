"""The flow for any change below a load balancer (and for a load balancer update).

The API has already written the new desired state and set the targets PENDING_*; the
flow pushes the whole configuration to the amphorae, then settles the statuses. Upstream
has one flow per object and action; they all have this shape.
"""
from __future__ import annotations

from lbaas.controller.flow import Step
from lbaas.controller.tasks import amphora, lifecycle, network


def change(lb_id: str, targets: dict[str, list[str]]) -> list[Step]:
    return [
        lifecycle.error_on_revert(lb_id, targets),
        network.plug_member_networks(lb_id),
        amphora.update_amphorae(lb_id),
        lifecycle.settle(lb_id, targets),
    ]
