"""The spare pool: amphorae booted ahead of time, with no load balancer, ready to be taken.

``[house_keeping] spare_amphora_pool_size`` spares are kept READY: booted, management port
plugged, agent answering, certificate issued, ``load_balancer_id`` NULL. Load balancer
creates and failovers take one (``tasks.amphora.claim_spare``) instead of booting an
amphora, and the next check adds a replacement: its row and a ``build_spare`` job in one
transaction, which a worker runs like any other job (so a boot interrupted by a crash is
taken over and finished, and a row is never left half-built). Upstream had this pool until Xena; it
was dropped because Nova server groups cannot adopt a booted VM, so anti-affinity was
lost. Here spares are spread over ``[compute] hosts`` (each new one on the host with the
fewest), a spare remembers its host (``cached_zone``), and an ACTIVE_STANDBY pair takes
spares on two different hosts. A spare the health manager stopped hearing from (for twice
``[health_manager] heartbeat_timeout``, while it hears others) is replaced, so that no
flow takes a dead one; twice, because a spare carries no traffic and a busy health
manager judges late heartbeats as missing. Spares run the image that ``[controller_worker]
amp_image_tag`` selects (lbaas.controller.tasks.image) and are taken only by load
balancers that want that image; one whose image is no longer the one the tag selects (a
newer build was tagged) is replaced.
"""
from __future__ import annotations

import collections
import datetime as dt
import logging

from sqlalchemy import and_, delete, func, not_, select, update

from lbaas import constants
from lbaas.controller import actions
from lbaas.controller.flow import FlowContext
from lbaas.controller.housekeeping import cert_rotation
from lbaas.controller.tasks import amphora as amphora_tasks
from lbaas.controller.tasks import image
from lbaas.db import locks
from lbaas.db.engine import Database
from lbaas.db.models import Amphora, AmphoraHealth, Job, utcnow
from lbaas.db.rows import changed
from lbaas.drivers.compute import placement
from lbaas.images.store import NoImageForTag

LOG = logging.getLogger(__name__)
IN_POOL = (Amphora.load_balancer_id.is_(None),
           Amphora.status.in_((constants.PENDING_CREATE, constants.BOOTING, constants.READY)))


def check(ctx: FlowContext) -> int:
    """Replace silent spares, queue the boots of the spares the pool lacks, remove those
    beyond its size (after a resize); returns how many boots were queued."""
    for amphora_id in _silent_spares(ctx):
        _remove(ctx, amphora_id, "it sent no heartbeat")
    with ctx.db.read() as session:
        expired = list(session.scalars(select(Amphora.id).where(
            *amphora_tasks.SPARE, cert_rotation.expired(utcnow()))))
    for amphora_id in expired:
        _remove(ctx, amphora_id, "its certificate expired")
    size = ctx.settings.house_keeping.spare_amphora_pool_size
    try:
        made_of = image.build_for(ctx.settings, ctx.db, None)
    except NoImageForTag as exc:
        LOG.warning("spare pool: no spare amphora can be booted: %s", exc)
        return 0
    with ctx.db.read() as session:
        outdated = list(session.scalars(select(Amphora.id).where(
            *amphora_tasks.SPARE, not_(and_(*made_of.same())))))
    for amphora_id in outdated:
        _remove(ctx, amphora_id, "its image (the newest of its tag) or compute flavor changed")
    # Counting the pool and adding the missing spares' rows with their boot jobs happen
    # under one lock, so two housekeepers checking at once never fill the same gap.
    with ctx.db.write() as session:
        locks.hold(session, "spare_pool")
        rows = session.execute(select(Amphora.id, Amphora.cached_zone).where(*IN_POOL)
                               .order_by(Amphora.created_at, Amphora.id)).all()
        missing = max(0, size - len(rows))
        for host in _spread(ctx.drivers.compute.hosts(), [host for _, host in rows], missing):
            amphora_id = amphora_tasks.new_amphora(ctx, None, host, made_of, session=session)
            actions.build_spare(session, amphora_id=amphora_id)
    if missing:
        LOG.info("spare pool: %d of %d present; booting %d", len(rows), size, missing)
    for amphora_id, _ in rows[size:]:
        _remove(ctx, amphora_id, "beyond the pool size")
    return missing


def _silent_spares(ctx: FlowContext) -> list[str]:
    """READY spares whose last heartbeat is older than twice heartbeat_timeout, if the
    health manager is hearing anyone at all (it may not run, or have just started)."""
    cutoff = utcnow() - dt.timedelta(seconds=2 * ctx.settings.health_manager.heartbeat_timeout)
    with ctx.db.read() as session:
        latest = session.scalar(select(func.max(AmphoraHealth.last_update)))
        if latest is None or latest < cutoff:
            return []
        return list(session.scalars(
            select(Amphora.id).join(AmphoraHealth, AmphoraHealth.amphora_id == Amphora.id)
            .where(*amphora_tasks.SPARE, AmphoraHealth.last_update < cutoff)))


def _spread(hosts: list[str], taken: list[str | None], count: int) -> list[str]:
    """Hosts for ``count`` new spares: each on the host with the fewest spares so far."""
    load = collections.Counter(host for host in taken if host)
    chosen = []
    for _ in range(count):
        host = placement.choose_host(hosts, avoid=(), load=load)
        load[host] += 1
        chosen.append(host)
    return chosen


def _remove(ctx: FlowContext, amphora_id: str, why: str) -> None:
    """Remove a spare, unless a flow claimed it first."""
    with ctx.db.write() as session:
        taken = changed(session,
            update(Amphora).where(Amphora.id == amphora_id, *amphora_tasks.SPARE)
            .values(status=constants.PENDING_DELETE)
            .execution_options(synchronize_session=False))
    if not taken:
        return
    _destroy(ctx, amphora_id)
    LOG.info("spare pool: removed spare amphora %s (%s)", amphora_id, why)


def spares(db: Database) -> list[str]:
    """The pool's amphorae: booted, booting, or queued to boot."""
    with db.read() as session:
        return list(session.scalars(select(Amphora.id).where(*IN_POOL)))


def empty(ctx: FlowContext) -> list[str]:
    """Remove every spare and the jobs that would boot more (``lbaas down --all``, with no
    housekeeping or worker running); returns the ids removed."""
    with ctx.db.write() as session:
        ids = list(session.scalars(select(Amphora.id).where(*IN_POOL)))
        session.execute(delete(Job).where(Job.action == "build_spare"))
        session.execute(update(Amphora).where(Amphora.id.in_(ids))
                        .values(status=constants.PENDING_DELETE)
                        .execution_options(synchronize_session=False))
    for amphora_id in ids:
        _destroy(ctx, amphora_id)
    return ids


def _destroy(ctx: FlowContext, amphora_id: str) -> None:
    """A spare already PENDING_DELETE: its instance and addresses go, its row is DELETED."""
    with ctx.db.read() as session:
        amphora = session.get(Amphora, amphora_id)
    if amphora is not None:  # else its row is gone already: nothing is left to remove
        amphora_tasks.destroy(ctx, amphora)
    with ctx.db.write() as session:
        session.execute(update(Amphora).where(Amphora.id == amphora_id)
                        .values(status=constants.DELETED)
                        .execution_options(synchronize_session=False))
