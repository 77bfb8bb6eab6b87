"""Steps that build, configure and remove a load balancer's amphorae."""
from __future__ import annotations

import logging

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from lbaas import constants
from lbaas.controller.flow import FlowContext, Step
from lbaas.drivers.compute import placement
from lbaas.db.models import ROW_ONLY, Amphora, LoadBalancer

LOG = logging.getLogger(__name__)

ROLES = {
    constants.TOPOLOGY_SINGLE: [(constants.ROLE_STANDALONE, None)],
    constants.TOPOLOGY_ACTIVE_STANDBY: [
        (constants.ROLE_MASTER, constants.ROLE_MASTER_PRIORITY),
        (constants.ROLE_BACKUP, constants.ROLE_BACKUP_PRIORITY),
    ],
}


def live_amphorae(session: Session, lb_id: str) -> list[Amphora]:
    """The amphorae serving ``lb_id`` (not deleted, failed or being replaced)."""
    return list(session.scalars(select(Amphora).where(
        Amphora.load_balancer_id == lb_id,
        Amphora.status.notin_((constants.DELETED, constants.ERROR, constants.PENDING_DELETE)))))


def _set(ctx: FlowContext, amphora_id: str, **values: object) -> Amphora:
    with ctx.db.write() as session:
        amphora = session.get(Amphora, amphora_id)
        for key, value in values.items():
            setattr(amphora, key, value)
    return amphora


def new_amphora(ctx: FlowContext, lb_id: str | None) -> str:
    """A PENDING_CREATE amphora row (``lb_id`` None: a spare for the spare pool)."""
    with ctx.db.write() as session:
        amphora = Amphora(status=constants.PENDING_CREATE, load_balancer_id=lb_id)
        session.add(amphora)
    return amphora.id


def boot(ctx: FlowContext, amphora_id: str, host: str | None = None) -> Amphora:
    """Give the amphora its identity, a management port and an instance; wait for its agent."""
    identity = ctx.drivers.certificates.amphora_identity(amphora_id)
    management = ctx.drivers.network.allocate_port(amphora_id, None)
    instance = ctx.drivers.compute.build(amphora_id, management_port=management,
                                         files=identity.files, host=host)
    amphora = _set(ctx, amphora_id, compute_id=instance.compute_id, status=constants.BOOTING,
                   lb_network_ip=instance.lb_network_ip, cached_zone=instance.host,
                   cert_expiration=identity.expires_at and identity.expires_at.replace(tzinfo=None))
    ctx.drivers.amphora.wait_ready(amphora)
    return amphora


SPARE = (Amphora.status == constants.READY, Amphora.load_balancer_id.is_(None))


def claim_spare(ctx: FlowContext, lb_id: str, role: str, priority: int | None,
                avoid_hosts: set[str | None]) -> str | None:
    """Take a READY spare for ``lb_id``, on a host not in ``avoid_hosts``; None if none.

    The claim is one conditional UPDATE (READY and unassigned -> ALLOCATED to ``lb_id``),
    so of two flows reaching for the same spare exactly one gets it; the other tries the
    next one.
    """
    with ctx.db.read() as session:
        spares = session.execute(select(Amphora.id, Amphora.cached_zone).where(*SPARE)
                                 .order_by(Amphora.created_at, Amphora.id)).all()
    for amphora_id, host in spares:
        if host in avoid_hosts:
            continue
        with ctx.db.write() as session:
            taken = session.execute(
                update(Amphora).where(Amphora.id == amphora_id, *SPARE)
                .values(load_balancer_id=lb_id, status=constants.ALLOCATED, role=role,
                        vrrp_priority=priority)
                .execution_options(synchronize_session=False)).rowcount
        if taken:
            LOG.info("load balancer %s took spare amphora %s", lb_id, amphora_id)
            return amphora_id
    return None


def _build_one(ctx: FlowContext, lb_id: str, role: str, priority: int | None,
               avoid_hosts: set[str | None]) -> str | None:
    """An amphora for ``lb_id`` in ``role``: a spare when there is one, else a new one;
    returns the host it runs on, not one of ``avoid_hosts`` (those of the pair's other
    amphora) with [nova] enable_anti_affinity, and preferably not one of them without."""
    strict = ctx.settings.nova.enable_anti_affinity
    amphora_id = claim_spare(ctx, lb_id, role, priority, avoid_hosts)
    if amphora_id is None and not strict and avoid_hosts:
        amphora_id = claim_spare(ctx, lb_id, role, priority, set())
    if amphora_id is not None:
        ctx.store.setdefault("built_amphorae", []).append(amphora_id)
        with ctx.db.read() as session:
            return session.get(Amphora, amphora_id).cached_zone
    host = placement.choose_host(ctx.settings.compute.hosts, avoid=avoid_hosts,
                                 load=_host_load(ctx), strict=strict)
    amphora_id = new_amphora(ctx, lb_id)
    ctx.store.setdefault("built_amphorae", []).append(amphora_id)
    amphora = boot(ctx, amphora_id, host)
    _set(ctx, amphora_id, status=constants.ALLOCATED, role=role, vrrp_priority=priority)
    return amphora.cached_zone


def _host_load(ctx: FlowContext) -> dict[str, int]:
    """How many amphorae (not deleted) each compute host runs."""
    with ctx.db.read() as session:
        return dict(session.execute(
            select(Amphora.cached_zone, func.count()).where(Amphora.status != constants.DELETED)
            .group_by(Amphora.cached_zone)).all())


def destroy(ctx: FlowContext, amphora: Amphora) -> None:
    """Remove the instance and give back every address the amphora held."""
    if amphora.compute_id:
        ctx.drivers.compute.delete(amphora.compute_id)
    ctx.drivers.amphora.forget(amphora.id)
    for port in ctx.drivers.network.ports_of(amphora.id):
        ctx.drivers.network.release_port(port.id)


def build_amphorae(lb_id: str) -> Step:
    """One amphora per role of the topology: a row, an instance, an agent that answers."""
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            topology = (session.get(LoadBalancer, lb_id, options=ROW_ONLY).topology
                        or constants.TOPOLOGY_SINGLE)
        # Anti-affinity: an ACTIVE_STANDBY pair takes its spares from different hosts.
        used_hosts: set[str | None] = set()
        for role, priority in ROLES[topology]:
            used_hosts.add(_build_one(ctx, lb_id, role, priority, used_hosts))
    return Step("build-amphorae", execute, discard_built)


def build_missing(lb_id: str) -> Step:
    """An amphora for each role of the topology that no live amphora holds (failover)."""
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            topology = (session.get(LoadBalancer, lb_id, options=ROW_ONLY).topology
                        or constants.TOPOLOGY_SINGLE)
            live = live_amphorae(session, lb_id)
        roles = {amphora.role for amphora in live}
        hosts = {amphora.cached_zone for amphora in live}
        for role, priority in ROLES[topology]:
            if role not in roles:
                hosts.add(_build_one(ctx, lb_id, role, priority, set(hosts)))
    return Step("build-missing-amphorae", execute, discard_built)


def discard_built(ctx: FlowContext) -> None:
    """Revert of a build: remove the amphorae the flow built (instances, ports, rows)."""
    for amphora_id in ctx.store.get("built_amphorae", []):
        with ctx.db.read() as session:
            amphora = session.get(Amphora, amphora_id)
        destroy(ctx, amphora)
        with ctx.db.write() as session:
            session.execute(delete(Amphora).where(Amphora.id == amphora_id))


def update_amphorae(lb_id: str) -> Step:
    """Push the load balancer's whole current configuration to each of its amphorae."""
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            lb = session.get(LoadBalancer, lb_id)
            for amphora in live_amphorae(session, lb_id):
                ctx.drivers.amphora.update(lb, amphora)
    return Step("update-amphorae", execute)


def _remove(ctx: FlowContext, lb_id: str, amphora_ids: list[str]) -> None:
    """Stop the load balancer on these amphorae, remove them, mark them DELETED."""
    with ctx.db.read() as session:
        lb = session.get(LoadBalancer, lb_id)
        amphorae = [session.get(Amphora, amphora_id) for amphora_id in amphora_ids]
        for amphora in amphorae:
            if amphora.id in ctx.store.get("unreachable", ()):
                continue  # known dead (a failover found it so): do not wait for it again
            try:
                ctx.drivers.amphora.delete(lb, amphora)
            except Exception:  # a dead amphora cannot answer; removing it is all that is left
                LOG.warning("amphora %s did not answer the delete; removing it anyway",
                            amphora.id, exc_info=True)
    for amphora in amphorae:
        destroy(ctx, amphora)
        _set(ctx, amphora.id, status=constants.DELETED)


def delete_amphorae(lb_id: str) -> Step:
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            amphora_ids = [amphora.id for amphora in live_amphorae(session, lb_id)]
        _remove(ctx, lb_id, amphora_ids)
    return Step("delete-amphorae", execute)


def retire_amphora(amphora_id: str) -> Step:
    """Failover: set the amphora aside (still serving, if it can) while its replacement is
    built; on revert it gets its status back."""
    def execute(ctx: FlowContext) -> None:
        with ctx.db.write() as session:
            amphora = session.get(Amphora, amphora_id)
            ctx.store["retired_status"] = amphora.status
            amphora.status = constants.PENDING_DELETE
        ctx.store["retired"] = [amphora_id]

    def revert(ctx: FlowContext) -> None:
        if "retired_status" in ctx.store:
            _set(ctx, amphora_id, status=ctx.store["retired_status"])
    return Step("retire-amphora", execute, revert)


def remove_retired(lb_id: str) -> Step:
    def execute(ctx: FlowContext) -> None:
        _remove(ctx, lb_id, ctx.store.get("retired", []))
    return Step("remove-retired-amphorae", execute)
