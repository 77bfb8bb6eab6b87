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
"""
from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import Executor
from typing import Any

from sqlalchemy import or_, select, update

from lbaas import constants
from lbaas.controller.flow import FlowContext
from lbaas.db.models import Amphora, utcnow
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


def claim_due(ctx: FlowContext) -> list[str]:
    """Mark busy and return the amphorae whose certificate is due for rotation."""
    with ctx.db.read() as session:
        candidates = list(session.scalars(select(Amphora.id).where(*_due(ctx))))
    claimed = []
    for amphora_id in candidates:
        with ctx.db.write() as session:
            if session.execute(update(Amphora).where(Amphora.id == amphora_id, *_due(ctx))
                               .values(cert_busy=True)
                               .execution_options(synchronize_session=False)).rowcount:
                claimed.append(amphora_id)
    return claimed


def rotate(ctx: FlowContext, amphora_id: str) -> bool:
    """Renew and push one amphora's certificate; False (logged) if that failed."""
    values: dict[str, Any] = {"cert_busy": False}
    try:
        with ctx.db.read() as session:
            amphora = session.get(Amphora, amphora_id)
        identity = ctx.drivers.certificates.amphora_identity(amphora_id)
        if SERVER_PEM in identity.files:
            ctx.drivers.amphora.upload_cert_amp(amphora, identity.files[SERVER_PEM])
        values["cert_expiration"] = (identity.expires_at
                                     and identity.expires_at.replace(tzinfo=None))
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
    """One pass: rotate every due certificate on ``executor``; returns how many succeeded."""
    return sum(executor.map(lambda amphora_id: rotate(ctx, amphora_id), claim_due(ctx)))
