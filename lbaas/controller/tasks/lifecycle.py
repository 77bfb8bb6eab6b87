"""Steps that move provisioning statuses at the start and end of a flow.

The statuses that end a flow are written in the same transaction that removes its job
(``ctx.write(final=True)``): a worker that dies just before leaves both, and the next
one runs the flow again; one that dies just after leaves neither. So a load balancer is
never released (ACTIVE or ERROR, open to new changes) while its job could still run.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from lbaas import constants
from lbaas.controller.flow import FlowContext, Step
from lbaas.db import status
from lbaas.db.models import ROW_ONLY, Amphora, LoadBalancer, utcnow

LOG = logging.getLogger(__name__)


def _changed(targets: dict[str, list[str]]) -> str:
    return ", ".join(f"{len(ids)} {kind}{'s' if len(ids) > 1 else ''}"
                     for kind, ids in targets.items() if kind != "loadbalancer") or "itself"


def error_on_revert(lb_id: str, targets: dict[str, list[str]]) -> Step:
    """First step of a change: if anything after it fails, targets -> ERROR, parents -> ACTIVE."""
    def revert(ctx: FlowContext) -> None:
        with ctx.write(final=True) as session:
            status.fail(session, lb_id, targets)
        LOG.error("load balancer %s: the change of %s failed (%s); %s ERROR", lb_id,
                  _changed(targets), ctx.failure or "reverted",
                  "it is" if "loadbalancer" in targets else "they are")
    return Step("error-on-revert", lambda ctx: None, revert)


def error_tree_on_revert(lb_id: str) -> Step:
    """First step of a create: on failure the LB and everything created with it -> ERROR."""
    def revert(ctx: FlowContext) -> None:
        with ctx.write(final=True) as session:
            status.fail(session, lb_id, {"loadbalancer": [lb_id],
                                         **status.pending_tree_objects(session, lb_id)})
        LOG.error("load balancer %s is ERROR: its creation failed (%s)", lb_id,
                  ctx.failure or "reverted")
    return Step("error-tree-on-revert", lambda ctx: None, revert)


def settle(lb_id: str, targets: dict[str, list[str]]) -> Step:
    """Last step of a change: targets ACTIVE (or removed), the load balancer released."""
    def execute(ctx: FlowContext) -> None:
        with ctx.write(final=True) as session:
            status.settle(session, lb_id, targets)
        LOG.info("load balancer %s is ACTIVE (%s applied)", lb_id, _changed(targets))
    return Step("settle", execute)


def settle_tree(lb_id: str) -> Step:
    """Last step of a create: the load balancer and everything created with it -> ACTIVE."""
    def execute(ctx: FlowContext) -> None:
        with ctx.write(final=True) as session:
            status.settle(session, lb_id, status.pending_tree_objects(session, lb_id))
        LOG.info("load balancer %s is ACTIVE (created)", lb_id)
    return Step("settle-tree", execute)


def mark_deleted(lb_id: str) -> Step:
    """The load balancer row stays as DELETED (hidden from the API) until purged."""
    def execute(ctx: FlowContext) -> None:
        with ctx.write(final=True) as session:
            lb = session.get(LoadBalancer, lb_id, options=ROW_ONLY)
            if lb is not None:
                lb.provisioning_status = constants.DELETED
                lb.updated_at = utcnow()
        LOG.info("load balancer %s is deleted", lb_id)
    return Step("mark-lb-deleted", execute)


def delete_children(lb_id: str) -> Step:
    def execute(ctx: FlowContext) -> None:
        with ctx.write() as session:
            status.delete_children(session, lb_id)
    return Step("delete-children", execute)


def fail_unrunnable(session: Session, payload: dict[str, Any]) -> None:
    """A job no flow can run (an action or arguments this version does not know): the
    objects it names go ERROR, so that they are not left PENDING_* for ever and an update
    or a failover can repair them."""
    lb_id = payload.get("lb_id")
    if isinstance(lb_id, str):
        targets = payload.get("targets")
        if not isinstance(targets, dict):
            targets = {"loadbalancer": [lb_id], **status.pending_tree_objects(session, lb_id)}
        status.fail(session, lb_id, targets)
    amphora_id = payload.get("amphora_id")
    if isinstance(amphora_id, str):
        session.execute(update(Amphora).where(Amphora.id == amphora_id,
                                              Amphora.status != constants.DELETED)
                        .values(status=constants.ERROR)
                        .execution_options(synchronize_session=False))
