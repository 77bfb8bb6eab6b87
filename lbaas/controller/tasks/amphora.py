"""Steps that build, configure and remove a load balancer's amphorae."""
from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from lbaas import constants
from lbaas.controller.flow import FlowContext, Step
from lbaas.db.models import Amphora, LoadBalancer

LOG = logging.getLogger(__name__)

ROLES = {
    constants.TOPOLOGY_SINGLE: [(constants.ROLE_STANDALONE, None)],
    constants.TOPOLOGY_ACTIVE_STANDBY: [
        (constants.ROLE_MASTER, constants.ROLE_MASTER_PRIORITY),
        (constants.ROLE_BACKUP, constants.ROLE_BACKUP_PRIORITY),
    ],
}


def live_amphorae(session: Session, lb_id: str) -> list[Amphora]:
    """The amphorae serving ``lb_id`` (not deleted, not failed)."""
    return list(session.scalars(select(Amphora).where(
        Amphora.load_balancer_id == lb_id,
        Amphora.status.notin_((constants.DELETED, constants.ERROR, constants.PENDING_DELETE)))))


def build_amphorae(lb_id: str) -> Step:
    """One amphora per role of the topology: a DB row, a compute instance, an agent that answers."""
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            topology = session.get(LoadBalancer, lb_id).topology or constants.TOPOLOGY_SINGLE
        built = ctx.store.setdefault("built_amphorae", [])
        for role, priority in ROLES[topology]:
            with ctx.db.write() as session:
                amphora = Amphora(status=constants.PENDING_CREATE, load_balancer_id=lb_id)
                session.add(amphora)
            built.append(amphora.id)
            instance = ctx.drivers.compute.build(amphora.id)
            with ctx.db.write() as session:
                amphora = session.get(Amphora, amphora.id)
                amphora.compute_id = instance.compute_id
                amphora.lb_network_ip = instance.lb_network_ip
                amphora.cached_zone = instance.host
                amphora.status = constants.BOOTING
            ctx.drivers.amphora.wait_ready(amphora)
            with ctx.db.write() as session:
                amphora = session.get(Amphora, amphora.id)
                amphora.status = constants.ALLOCATED
                amphora.role = role
                amphora.vrrp_priority = priority

    def revert(ctx: FlowContext) -> None:
        for amphora_id in ctx.store.get("built_amphorae", []):
            with ctx.db.write() as session:
                amphora = session.get(Amphora, amphora_id)
                if amphora.compute_id:
                    ctx.drivers.compute.delete(amphora.compute_id)
                session.delete(amphora)
    return Step("build-amphorae", execute, revert)


def update_amphorae(lb_id: str) -> Step:
    """Push the load balancer's whole current configuration to each of its amphorae."""
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            lb = session.get(LoadBalancer, lb_id)
            for amphora in live_amphorae(session, lb_id):
                ctx.drivers.amphora.update(lb, amphora)
    return Step("update-amphorae", execute)


def _remove(ctx: FlowContext, lb_id: str, amphora_ids: list[str]) -> None:
    """Stop the load balancer on these amphorae, remove their instances, mark them DELETED."""
    with ctx.db.read() as session:
        lb = session.get(LoadBalancer, lb_id)
        amphorae = [session.get(Amphora, amphora_id) for amphora_id in amphora_ids]
        for amphora in amphorae:
            ctx.drivers.amphora.delete(lb, amphora)
    for amphora in amphorae:
        if amphora.compute_id:
            ctx.drivers.compute.delete(amphora.compute_id)
        with ctx.db.write() as session:
            session.get(Amphora, amphora.id).status = constants.DELETED


def delete_amphorae(lb_id: str) -> Step:
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            amphora_ids = [amphora.id for amphora in live_amphorae(session, lb_id)]
        _remove(ctx, lb_id, amphora_ids)
    return Step("delete-amphorae", execute)


def retire_amphorae(lb_id: str) -> Step:
    """Failover: set the current amphorae aside (still serving) while replacements are built."""
    def execute(ctx: FlowContext) -> None:
        with ctx.db.write() as session:
            retired = live_amphorae(session, lb_id)
            for amphora in retired:
                amphora.status = constants.PENDING_DELETE
        ctx.store["retired"] = [amphora.id for amphora in retired]

    def revert(ctx: FlowContext) -> None:
        with ctx.db.write() as session:
            for amphora_id in ctx.store.get("retired", []):
                session.get(Amphora, amphora_id).status = constants.ALLOCATED
    return Step("retire-amphorae", execute, revert)


def remove_retired(lb_id: str) -> Step:
    def execute(ctx: FlowContext) -> None:
        _remove(ctx, lb_id, ctx.store.get("retired", []))
    return Step("remove-retired-amphorae", execute)
