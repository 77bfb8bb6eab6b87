"""Steps of a failover: replace a load balancer's amphorae one at a time."""
from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select

from lbaas import constants
from lbaas.controller.flow import FlowContext, Step, run
from lbaas.controller.tasks.vrrp import each_live_amphora
from lbaas.db.models import Amphora, LoadBalancer
from lbaas.db.rows import get_row

LOG = logging.getLogger(__name__)


def update_amphorae(lb_id: str) -> Step:
    """Push the configuration: the new amphora must take it, the others (possibly dead,
    or serving with the old peers) are given it where they answer."""
    def execute(ctx: FlowContext) -> None:
        each_live_amphora(ctx, lb_id, ctx.drivers.amphora.update, "haproxy configuration")
    return Step("update-amphorae", execute)


def _failover_order(ctx: FlowContext, lb_id: str) -> list[str]:
    """The amphorae to replace, the one holding the VIP last (upstream: the BACKUP first),
    so that an ACTIVE_STANDBY pair keeps serving throughout."""
    with ctx.db.read() as session:
        lb = get_row(session, LoadBalancer, lb_id)
        amphorae = list(session.scalars(select(Amphora).where(
            Amphora.load_balancer_id == lb_id,
            Amphora.status.notin_((constants.DELETED, constants.PENDING_DELETE)))
            .order_by(Amphora.created_at, Amphora.id)))
        if lb.topology != constants.TOPOLOGY_ACTIVE_STANDBY:
            return [amphora.id for amphora in amphorae]
        vip = lb.vip_address
        serving = {amphora.id for amphora in amphorae
                   if vip is not None and ctx.drivers.amphora.holds_address(amphora, vip)}
        return [amphora.id for amphora in sorted(amphorae, key=lambda a: (
            a.id in serving, a.role == constants.ROLE_MASTER))]


def replace_each(lb_id: str, replace: Callable[[str, str], list[Step]]) -> Step:
    """Run the ``replace`` flow for each amphora in turn. Each one reverts on its own when
    it fails (its old amphora keeps serving); the ones already replaced stay. The list, and
    which replacements finished, are saved with the job, so a run after a crash does not
    replace the new amphorae again, and an unfinished replacement resumes from its own
    saved part of the store."""
    def execute(ctx: FlowContext) -> None:
        if "failover_order" not in ctx.store:
            order = _failover_order(ctx, lb_id)
            with ctx.write():
                ctx.store["failover_order"] = order
        replaced = ctx.store.setdefault("replaced", [])
        for amphora_id in ctx.store["failover_order"]:
            if amphora_id in replaced:
                continue  # before a crash
            LOG.info("load balancer %s: failing over amphora %s", lb_id, amphora_id)
            run(f"failover-amphora-{amphora_id}", replace(lb_id, amphora_id),
                ctx.child(f"replace/{amphora_id}"))
            with ctx.write():
                replaced.append(amphora_id)
    return Step("replace-amphorae", execute)
