"""Certificate rotation: amphora server certificates are renewed well before they expire.

Every ``cert_interval`` seconds, each amphora (not DELETED) whose certificate expires
within ``cert_expiry_buffer`` seconds is marked ``cert_busy`` (one conditional UPDATE, so
two housekeepers never rotate the same amphora at once), gets a new certificate from the
certificates driver, pushed through its agent (``PUT /1.0/certificate``; the agent uses it
for new connections, haproxy is not touched), and its ``cert_expiration`` is updated. A
rotation that fails clears ``cert_busy`` and is tried again at the next interval: with the
buffer many intervals long (``lbaas.service.check`` insists on it), an amphora gets many
tries before its certificate could expire and lock the controller out. A ``cert_busy``
left behind by a housekeeper that died is taken over after ``BUSY_LEASE``.

Should a certificate expire all the same (housekeeping stopped for longer than the
buffer), the controller can no longer talk to that agent, so the amphora is replaced
rather than left unmanageable: one serving a load balancer is failed over (a new amphora
with a new certificate takes its place), a spare is removed by the spare pool's check.
"""
from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import Executor
from typing import Any

from sqlalchemy import or_, select, update

from lbaas import constants
from lbaas.controller import actions
from lbaas.controller.flow import FlowContext
from lbaas.db import status
from lbaas.db.models import Amphora, utcnow
from lbaas.db.rows import changed, get_row
from lbaas.drivers.certificates.base import SERVER_PEM

LOG = logging.getLogger(__name__)
# How long a rotation may hold cert_busy before another housekeeper may take it over
# (setting cert_busy stamps updated_at).
BUSY_LEASE = dt.timedelta(minutes=10)


def _due(ctx: FlowContext) -> tuple[Any, ...]:
    now = utcnow()
    buffer = dt.timedelta(seconds=ctx.settings.house_keeping.cert_expiry_buffer)
    return (Amphora.status != constants.DELETED,
            Amphora.cert_expiration < now + buffer,
            or_(Amphora.cert_busy.is_(False), Amphora.updated_at < now - BUSY_LEASE))


def expired(now: dt.datetime) -> Any:
    """The condition on an amphora whose certificate no longer lets the controller in."""
    return Amphora.cert_expiration < now


def replace_expired(ctx: FlowContext) -> list[str]:
    """Queue a failover of every serving amphora whose certificate expired and could not
    be rotated (its load balancer ACTIVE or ERROR: locked PENDING_UPDATE as an API
    failover would; a busy one is tried again at the next pass)."""
    started = []
    with ctx.db.write() as session:
        rows = session.execute(select(Amphora.id, Amphora.load_balancer_id).where(
            expired(utcnow()), Amphora.status == constants.ALLOCATED,
            Amphora.load_balancer_id.is_not(None))).all()
        for amphora_id, lb_id in rows:
            if lb_id is not None and status.test_and_set(session, lb_id, constants.PENDING_UPDATE,
                                                         constants.FAILOVERABLE_STATUSES):
                actions.failover_amphora(session, lb_id=lb_id, amphora_id=amphora_id)
                started.append(amphora_id)
    for amphora_id in started:
        LOG.warning("the certificate of amphora %s expired before it was rotated; failing "
                    "it over", amphora_id)
    return started


def claim_due(ctx: FlowContext) -> list[str]:
    """Mark busy and return the amphorae whose certificate is due for rotation."""
    with ctx.db.read() as session:
        candidates = list(session.scalars(select(Amphora.id).where(*_due(ctx))))
    claimed = []
    for amphora_id in candidates:
        with ctx.db.write() as session:
            if changed(session, update(Amphora).where(Amphora.id == amphora_id, *_due(ctx))
                                .values(cert_busy=True)
                                .execution_options(synchronize_session=False)):
                claimed.append(amphora_id)
    return claimed


def renew(ctx: FlowContext, amphora: Amphora) -> dt.datetime | None:
    """Issue the amphora a new certificate (from the CA that signs now) and push it through
    its agent; returns its expiry (naive UTC), for the row. Raises if that failed."""
    identity = ctx.drivers.certificates.amphora_identity(amphora.id)
    if SERVER_PEM in identity.files:
        ctx.drivers.amphora.upload_cert_amp(amphora, identity.files[SERVER_PEM])
    return identity.expires_at and identity.expires_at.replace(tzinfo=None)


def rotate(ctx: FlowContext, amphora_id: str) -> bool:
    """Renew and push one amphora's certificate; False (logged) if that failed."""
    values: dict[str, Any] = {"cert_busy": False}
    try:
        with ctx.db.read() as session:
            amphora = get_row(session, Amphora, amphora_id)
        values["cert_expiration"] = renew(ctx, amphora)
        LOG.info("rotated the certificate of amphora %s (it expired %s, now %s)",
                 amphora_id, amphora.cert_expiration, values["cert_expiration"])
        return True
    except Exception:
        LOG.exception("could not rotate the certificate of amphora %s; retrying at the next "
                      "interval", amphora_id)
        return False
    finally:
        with ctx.db.write() as session:
            session.execute(update(Amphora).where(Amphora.id == amphora_id).values(**values)
                            .execution_options(synchronize_session=False))


def run(ctx: FlowContext, executor: Executor) -> int:
    """One pass: rotate every due certificate on ``executor``, then replace the amphorae
    whose certificate expired all the same; returns how many rotations succeeded."""
    rotated = sum(executor.map(lambda amphora_id: rotate(ctx, amphora_id), claim_due(ctx)))
    replace_expired(ctx)
    return rotated
