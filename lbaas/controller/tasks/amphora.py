"""Steps that build, configure and remove a load balancer's amphorae.

An amphora's row is written, with the instance it will name (``compute_id``), its host
and its role, before anything is made for it; booting it again finishes what a crashed
boot left (the compute, network and amphora drivers each make only what is missing).
So a flow run again after a crash resumes its half-built amphorae instead of building
others, and whatever a crash left always has a row that says whose it is.
"""
from __future__ import annotations

import logging

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from lbaas import compute_flavors as flavors
from lbaas import constants
from lbaas.amphora.agent import ssh
from lbaas.controller.flow import FlowContext, Step
from lbaas.controller.tasks import image
from lbaas.db import keypairs
from lbaas.db.models import ROW_ONLY, Amphora, LoadBalancer, new_id
from lbaas.db.rows import changed, get_row
from lbaas.drivers.compute import placement
from lbaas.drivers.compute.base import HostUnreachable
from lbaas.network import hosts

LOG = logging.getLogger(__name__)

ROLES: dict[str, list[tuple[str, int | None]]] = {
    constants.TOPOLOGY_SINGLE: [(constants.ROLE_STANDALONE, None)],
    constants.TOPOLOGY_ACTIVE_STANDBY: [
        (constants.ROLE_MASTER, constants.ROLE_MASTER_PRIORITY),
        (constants.ROLE_BACKUP, constants.ROLE_BACKUP_PRIORITY),
    ],
}
# A row whose instance may be half made (a flow or a spare boot was interrupted).
BUILDING = (constants.PENDING_CREATE, constants.BOOTING)


def live_amphorae(session: Session, lb_id: str) -> list[Amphora]:
    """The amphorae serving ``lb_id`` (not deleted, failed or being replaced)."""
    return list(session.scalars(select(Amphora).where(
        Amphora.load_balancer_id == lb_id,
        Amphora.status.notin_((constants.DELETED, constants.ERROR, constants.PENDING_DELETE)))
        .order_by(Amphora.created_at, Amphora.id)))


def _set(ctx: FlowContext, amphora_id: str, **values: object) -> None:
    with ctx.write() as session:
        session.execute(update(Amphora).where(Amphora.id == amphora_id).values(**values)
                        .execution_options(synchronize_session=False))


def _built(ctx: FlowContext, amphora_id: str) -> None:
    """Remember (in the transaction that made or took it) that this flow owns the amphora."""
    built = ctx.store.setdefault("built_amphorae", [])
    if amphora_id not in built:
        built.append(amphora_id)


def new_amphora(ctx: FlowContext, lb_id: str | None, host: str, made_of: image.Build,
                role: str | None = None, priority: int | None = None,
                session: Session | None = None) -> str:
    """A PENDING_CREATE amphora row naming its future instance, its image and compute
    flavor (``lb_id`` None: a spare). Written in ``session`` when given (the spare pool
    adds it with its job)."""
    amphora_id = new_id()
    amphora = Amphora(id=amphora_id, status=constants.PENDING_CREATE, load_balancer_id=lb_id,
                      cached_zone=host, role=role, vrrp_priority=priority,
                      image_id=made_of.image_id, compute_flavor=made_of.compute_flavor,
                      compute_id=ctx.drivers.compute.compute_id(amphora_id))
    if session is not None:
        session.add(amphora)
        return amphora_id
    with ctx.write() as own:
        own.add(amphora)
        _built(ctx, amphora_id)
    return amphora_id


def boot(ctx: FlowContext, amphora_id: str) -> Amphora:
    """Give the amphora its identity, a management port and an instance; wait for its agent.
    Run again on a half-built amphora, it makes what is missing."""
    with ctx.db.read() as session:
        amphora = session.get(Amphora, amphora_id, options=ROW_ONLY)
        if amphora is None:
            raise LookupError(f"amphora {amphora_id} has no row: it cannot be booted")
    identity = ctx.drivers.certificates.amphora_identity(amphora_id)
    files = dict(identity.files)
    key_name = ctx.settings.controller_worker.amp_ssh_key_name
    if key_name:  # sshd on its management address, for this key (lbaas.amphora.agent.ssh)
        files[ssh.AUTHORIZED_KEYS] = (keypairs.get(ctx.db, key_name).public_key + "\n").encode()
    management = ctx.drivers.network.allocate_port(amphora_id, None)
    ctx.crashpoint("port-allocated")
    resources = None
    if amphora.image_id is not None:  # limits apply to amphorae run from an image
        resources = flavors.resources(ctx.settings, amphora.compute_flavor
                                      or ctx.settings.controller_worker.amp_flavor_id)
    instance = ctx.drivers.compute.build(amphora_id, management_port=management,
                                         files=files, host=amphora.cached_zone,
                                         image_id=amphora.image_id, resources=resources)
    ctx.crashpoint("instance-built")
    expires = identity.expires_at and identity.expires_at.replace(tzinfo=None)
    _set(ctx, amphora_id, compute_id=instance.compute_id, status=constants.BOOTING,
         lb_network_ip=instance.lb_network_ip, cached_zone=instance.host,
         cert_expiration=expires)
    amphora.compute_id, amphora.lb_network_ip = instance.compute_id, instance.lb_network_ip
    amphora.cached_zone, amphora.status = instance.host, constants.BOOTING
    ctx.drivers.amphora.wait_ready(amphora)
    return amphora


SPARE = (Amphora.status == constants.READY, Amphora.load_balancer_id.is_(None))


def claim_spare(ctx: FlowContext, lb_id: str, role: str, priority: int | None,
                avoid_hosts: set[str | None], made_of: image.Build) -> str | None:
    """Take a READY spare made as ``made_of`` for ``lb_id``, on a host not in
    ``avoid_hosts``; None if none.

    The claim is one conditional UPDATE (READY and unassigned -> ALLOCATED to ``lb_id``),
    so of two flows reaching for the same spare exactly one gets it; the other tries the
    next one.
    """
    with ctx.db.read() as session:
        spares = session.execute(select(Amphora.id, Amphora.cached_zone).where(
            *SPARE, *made_of.same())
            .order_by(Amphora.created_at, Amphora.id)).all()
    placeable = set(ctx.drivers.compute.hosts())
    for amphora_id, host in spares:
        if host in avoid_hosts or host not in placeable:  # its host is down, or full
            continue
        with ctx.write() as session:
            taken = changed(session,
                update(Amphora).where(Amphora.id == amphora_id, *SPARE, *made_of.same())
                .values(load_balancer_id=lb_id, status=constants.ALLOCATED, role=role,
                        vrrp_priority=priority)
                .execution_options(synchronize_session=False))
            if taken:
                _built(ctx, amphora_id)
        if taken:
            LOG.info("load balancer %s took spare amphora %s", lb_id, amphora_id)
            return amphora_id
    return None


def _ensure_role(ctx: FlowContext, lb_id: str, role: str, priority: int | None,
                 avoid_hosts: set[str | None]) -> str | None:
    """An ALLOCATED amphora for ``lb_id`` in ``role``: the one there is, the one a crashed
    run of this flow left half-built (booted again), a spare, or a new one. Returns its
    host: not one of ``avoid_hosts`` (those of the pair's other amphora) with [nova]
    enable_anti_affinity, and preferably not one of them without. A host that does not
    answer is marked DOWN and the amphora placed on another."""
    unreachable: set[str | None] = set()
    while True:
        amphora_id = _half_built(ctx, lb_id, role)
        if amphora_id is None:
            return _host_of(ctx, lb_id, role)
        if not amphora_id:
            made_of = image.build_for(ctx.settings, ctx.db, lb_id)
            spare = _take_spare(ctx, lb_id, role, priority, avoid_hosts | unreachable, made_of)
            if spare is not None:
                return spare
            candidates = [h for h in ctx.drivers.compute.hosts() if h not in unreachable]
            # The hosts' load (a count over every amphora) only matters given a choice.
            host = placement.choose_host(
                candidates, avoid=avoid_hosts,
                load=_host_load(ctx) if len(candidates) > 1 else {},
                strict=ctx.settings.nova.enable_anti_affinity)
            amphora_id = new_amphora(ctx, lb_id, host, made_of, role, priority)
        try:
            amphora = boot(ctx, amphora_id)
        except HostUnreachable as exc:
            unreachable.add(_abandon(ctx, amphora_id, exc))
            continue
        _set(ctx, amphora_id, status=constants.ALLOCATED)
        LOG.info("amphora %s is up for load balancer %s (%s%s)", amphora_id, lb_id, role,
                 f", host {amphora.cached_zone}" if amphora.cached_zone else "")
        return amphora.cached_zone


def _half_built(ctx: FlowContext, lb_id: str, role: str) -> str | None:
    """The amphora in ``role`` this flow left half-built (to boot again), "" if there is
    none to resume, None if the role already has its ALLOCATED amphora."""
    with ctx.db.read() as session:
        present = session.scalars(select(Amphora).where(
            Amphora.load_balancer_id == lb_id, Amphora.role == role,
            Amphora.status.in_((constants.ALLOCATED, *BUILDING)))
            .order_by(Amphora.created_at)).first()
    if present is None:
        return ""
    if present.status == constants.ALLOCATED:
        return None
    LOG.info("load balancer %s: finishing the build of amphora %s (%s)", lb_id, present.id,
             present.status)
    return present.id


def _host_of(ctx: FlowContext, lb_id: str, role: str) -> str | None:
    with ctx.db.read() as session:
        return session.scalar(select(Amphora.cached_zone).where(
            Amphora.load_balancer_id == lb_id, Amphora.role == role,
            Amphora.status == constants.ALLOCATED))


def _take_spare(ctx: FlowContext, lb_id: str, role: str, priority: int | None,
                avoid_hosts: set[str | None], made_of: image.Build) -> str | None:
    """Claim a spare made as ``made_of`` (off ``avoid_hosts`` if it must, or can); its host,
    or None."""
    strict = ctx.settings.nova.enable_anti_affinity
    spare = claim_spare(ctx, lb_id, role, priority, avoid_hosts, made_of)
    if spare is None and not strict and avoid_hosts:
        spare = claim_spare(ctx, lb_id, role, priority, set(), made_of)
    if spare is None:
        return None
    with ctx.db.read() as session:
        return get_row(session, Amphora, spare, ROW_ONLY).cached_zone


def _abandon(ctx: FlowContext, amphora_id: str, error: HostUnreachable) -> str | None:
    """The amphora's host does not answer: forget the amphora (the reconciler removes what
    was made of it if the host comes back), mark the host DOWN; returns the host."""
    with ctx.write() as session:
        amphora = session.get(Amphora, amphora_id, options=ROW_ONLY)
        host = amphora.cached_zone if amphora else None
        session.execute(delete(Amphora).where(Amphora.id == amphora_id))
        if host:
            hosts.mark_down(session, host)
    LOG.warning("amphora %s could not be built on host %s (%s); placing it on another host",
                amphora_id, host, error)
    for port in ctx.drivers.network.ports_of(amphora_id):
        ctx.drivers.network.release_port(port.id)
    return host


def _host_load(ctx: FlowContext) -> dict[str, int]:
    """How many amphorae (not deleted) each compute host runs."""
    with ctx.db.read() as session:
        rows = session.execute(
            select(Amphora.cached_zone, func.count()).where(Amphora.status != constants.DELETED)
            .group_by(Amphora.cached_zone)).all()
    return {host: count for host, count in rows if host is not None}  # None: not placed yet


def destroy(ctx: FlowContext, amphora: Amphora) -> None:
    """Remove the instance and give back every address the amphora held. An instance on a
    host that does not answer stays there (its host is down or cut off): the reconciler
    removes it when the host is back, as its row then says it is gone."""
    compute_id = amphora.compute_id or ctx.drivers.compute.compute_id(amphora.id)
    try:
        ctx.drivers.compute.delete(compute_id, host=amphora.cached_zone)
    except HostUnreachable as exc:
        LOG.warning("amphora %s: %s; it is removed when its host is back", amphora.id, exc)
    ctx.drivers.amphora.forget(amphora.id)
    for port in ctx.drivers.network.ports_of(amphora.id):
        ctx.drivers.network.release_port(port.id)


def build_missing(lb_id: str) -> Step:
    """An ALLOCATED amphora for each role of the topology (create, failover); on revert
    the amphorae this flow built or took are removed."""
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            topology = (get_row(session, LoadBalancer, lb_id, ROW_ONLY).topology
                        or constants.TOPOLOGY_SINGLE)
            hosts = {amphora.cached_zone for amphora in live_amphorae(session, lb_id)
                     if amphora.status == constants.ALLOCATED}
        # Anti-affinity: an ACTIVE_STANDBY pair's amphorae avoid each other's host.
        for role, priority in ROLES[topology]:
            hosts.add(_ensure_role(ctx, lb_id, role, priority, set(hosts) - {None}))
    return Step("build-amphorae", execute, discard_built)


def discard_built(ctx: FlowContext) -> None:
    """Revert of a build: remove the amphorae the flow built (instances, ports, rows)."""
    for amphora_id in ctx.store.get("built_amphorae", []):
        with ctx.db.read() as session:
            amphora = session.get(Amphora, amphora_id, options=ROW_ONLY)
        if amphora is not None:
            destroy(ctx, amphora)
        with ctx.write() as session:
            session.execute(delete(Amphora).where(Amphora.id == amphora_id))


def build_spare(amphora_id: str) -> Step:
    """Boot a spare the spare pool added (its row is PENDING_CREATE, with no load balancer)
    and make it READY; if it fails, it is removed and the next check adds another."""
    def execute(ctx: FlowContext) -> None:
        boot(ctx, amphora_id)
        with ctx.write() as session:
            # Conditional: READY only if nobody changed the row meanwhile.
            session.execute(update(Amphora).where(Amphora.id == amphora_id,
                                                  Amphora.status == constants.BOOTING,
                                                  Amphora.load_balancer_id.is_(None))
                            .values(status=constants.READY)
                            .execution_options(synchronize_session=False))

    def revert(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            amphora = session.get(Amphora, amphora_id, options=ROW_ONLY)
        if amphora is None or amphora.load_balancer_id is not None:
            return  # a flow took it meanwhile: it is that flow's now
        destroy(ctx, amphora)
        with ctx.write() as session:
            session.execute(delete(Amphora).where(Amphora.id == amphora_id,
                                                  Amphora.load_balancer_id.is_(None)))
    return Step("boot-spare", execute, revert)


def update_amphorae(lb_id: str) -> Step:
    """Push the load balancer's whole current configuration to each of its amphorae."""
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            lb = get_row(session, LoadBalancer, lb_id)
            for amphora in live_amphorae(session, lb_id):
                ctx.drivers.amphora.update(lb, amphora)
    return Step("update-amphorae", execute)


def _remove(ctx: FlowContext, amphora_ids: list[str]) -> None:
    """Remove these amphorae (their instance stops everything they ran), mark them DELETED
    (those already DELETED, by an earlier run of the flow, are left alone). Their agents
    are not asked first: a failover's old amphora is often dead, and waiting for it would
    only delay the failover."""
    with ctx.db.read() as session:
        amphorae = [amphora for amphora in (session.get(Amphora, amphora_id, options=ROW_ONLY)
                                            for amphora_id in amphora_ids)
                    if amphora is not None and amphora.status != constants.DELETED]
    for amphora in amphorae:
        destroy(ctx, amphora)
        _set(ctx, amphora.id, status=constants.DELETED)
        LOG.info("amphora %s is removed", amphora.id)


def delete_amphorae(lb_id: str) -> Step:
    """Remove every amphora of the load balancer: serving, half-built or on its way out
    (an interrupted failover's old one), so that none keeps answering for its VIP."""
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            amphora_ids = list(session.scalars(select(Amphora.id).where(
                Amphora.load_balancer_id == lb_id, Amphora.status != constants.DELETED)))
        _remove(ctx, amphora_ids)
    return Step("delete-amphorae", execute)


def retire_amphora(amphora_id: str) -> Step:
    """Failover: set the amphora aside (still serving, if it can) while its replacement is
    built; on revert it gets its status back, unless it is already gone."""
    def execute(ctx: FlowContext) -> None:
        with ctx.write() as session:
            amphora = session.get(Amphora, amphora_id, options=ROW_ONLY)
            if amphora is None:
                raise LookupError(f"amphora {amphora_id} not found")
            ctx.store.setdefault("retired_status", amphora.status)
            ctx.store["retired"] = [amphora_id]
            if amphora.status != constants.DELETED:
                amphora.status = constants.PENDING_DELETE

    def revert(ctx: FlowContext) -> None:
        if "retired_status" not in ctx.store:
            return
        with ctx.write() as session:
            session.execute(update(Amphora).where(Amphora.id == amphora_id,
                                                  Amphora.status == constants.PENDING_DELETE)
                            .values(status=ctx.store["retired_status"])
                            .execution_options(synchronize_session=False))
    return Step("retire-amphora", execute, revert)


def remove_retired(lb_id: str) -> Step:
    def execute(ctx: FlowContext) -> None:
        _remove(ctx, ctx.store.get("retired", []))
    return Step("remove-retired-amphorae", execute)
