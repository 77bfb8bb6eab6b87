"""The spare pool: amphorae booted ahead of time, with no load balancer, ready to be taken.

``[house_keeping] spare_amphora_pool_size`` spares are kept READY: booted, management port
plugged, agent answering, certificate issued, ``load_balancer_id`` NULL. Load balancer
creates and failovers take one (``tasks.amphora.claim_spare``) instead of booting an
amphora, and the next check boots a replacement. Upstream had this pool until Xena; it
was dropped because Nova server groups cannot adopt a booted VM, so anti-affinity was
lost. Here a spare remembers its host (``cached_zone``) and an ACTIVE_STANDBY pair takes
spares on two different hosts.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import delete, select, update

from lbaas import constants
from lbaas.controller.flow import FlowContext
from lbaas.controller.tasks import amphora as amphora_tasks
from lbaas.db.models import Amphora, new_id

LOG = logging.getLogger(__name__)
# Spares booted at once when the pool is short (each boot mostly waits on its agent).
BOOT_THREADS = 4
IN_POOL = (Amphora.load_balancer_id.is_(None),
           Amphora.status.in_((constants.PENDING_CREATE, constants.BOOTING, constants.READY)))


def check(ctx: FlowContext) -> None:
    """Boot the spares the pool lacks; remove those beyond its size (after a resize)."""
    size = ctx.settings.house_keeping.spare_amphora_pool_size
    # Counting and adding the rows of the missing spares happen in one write transaction,
    # so two checks running at once do not both fill the same gap (on SQLite; another
    # database may overfill a little, and the next check trims the excess).
    with ctx.db.write() as session:
        pool = list(session.scalars(select(Amphora.id).where(*IN_POOL)
                                    .order_by(Amphora.created_at, Amphora.id)))
        missing = [new_id() for _ in range(size - len(pool))]
        session.add_all(Amphora(id=amphora_id, status=constants.PENDING_CREATE)
                        for amphora_id in missing)
    if missing:
        LOG.info("spare pool: %d of %d present; booting %d", len(pool), size, len(missing))
        with ThreadPoolExecutor(min(len(missing), BOOT_THREADS), "spare-boot") as executor:
            list(executor.map(lambda amphora_id: _boot(ctx, amphora_id), missing))
    for amphora_id in pool[size:]:
        _remove(ctx, amphora_id)


def _boot(ctx: FlowContext, amphora_id: str) -> None:
    try:
        amphora_tasks.boot(ctx, amphora_id)
    except Exception:
        LOG.exception("spare amphora %s failed to boot; removing it", amphora_id)
        with ctx.db.read() as session:
            amphora = session.get(Amphora, amphora_id)
        amphora_tasks.destroy(ctx, amphora)
        with ctx.db.write() as session:
            session.execute(delete(Amphora).where(Amphora.id == amphora_id))
        return
    with ctx.db.write() as session:
        # Conditional: READY only if nobody changed the row meanwhile.
        session.execute(update(Amphora).where(Amphora.id == amphora_id,
                                              Amphora.status == constants.BOOTING,
                                              Amphora.load_balancer_id.is_(None))
                        .values(status=constants.READY)
                        .execution_options(synchronize_session=False))


def _remove(ctx: FlowContext, amphora_id: str) -> None:
    """Remove a spare beyond the pool's size, unless a flow claimed it first."""
    with ctx.db.write() as session:
        taken = session.execute(
            update(Amphora).where(Amphora.id == amphora_id, *amphora_tasks.SPARE)
            .values(status=constants.PENDING_DELETE)
            .execution_options(synchronize_session=False)).rowcount
    if not taken:
        return
    with ctx.db.read() as session:
        amphora = session.get(Amphora, amphora_id)
    amphora_tasks.destroy(ctx, amphora)
    with ctx.db.write() as session:
        session.execute(update(Amphora).where(Amphora.id == amphora_id)
                        .values(status=constants.DELETED)
                        .execution_options(synchronize_session=False))
    LOG.info("spare pool: removed spare amphora %s (beyond the pool size)", amphora_id)
