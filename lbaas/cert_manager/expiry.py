"""When the certificates listeners and pools use expire: ``lbaas secret expiry`` shows it,
housekeeping logs the ones close to it (every ``[house_keeping] cert_interval``)."""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select

from lbaas import constants
from lbaas.cert_manager import pem
from lbaas.cert_manager.base import CertificateError, CertManager
from lbaas.db.engine import Database
from lbaas.db.models import Listener, Pool, utcnow

LOG = logging.getLogger(__name__)
WARN_WITHIN = dt.timedelta(days=14)
"""A certificate in use that expires sooner is logged (housekeeping, configuration pushes)."""
GONE = (constants.DELETED, constants.PENDING_DELETE)


@dataclass(frozen=True)
class InUse:
    ref: str
    used_by: tuple[str, ...]
    subject: str | None
    expires: dt.datetime | None
    problem: str | None = None
    """Why the reference could not be read (it cannot be served either)."""

    def as_dict(self) -> dict[str, object]:
        return {"ref": self.ref, "used_by": list(self.used_by), "subject": self.subject,
                "expires": self.expires.isoformat() if self.expires else None,
                "problem": self.problem}


def _uses(db: Database) -> dict[tuple[bool, str], list[str]]:
    """(is a certificate with a key, reference) of the listeners and pools -> who uses it."""
    uses: dict[tuple[bool, str], list[str]] = {}

    def add(certificate: bool, refs: tuple[str | None, ...], user: str) -> None:
        for ref in refs:
            if ref:
                uses.setdefault((certificate, ref), []).append(user)

    with db.read() as session:
        for listener in session.scalars(select(Listener).where(
                Listener.protocol == constants.TERMINATED_HTTPS,
                Listener.provisioning_status.not_in(GONE))):
            user = f"listener {listener.id}"
            add(True, (listener.tls_certificate_id, *(listener.sni_container_refs or ())), user)
            add(False, (listener.client_ca_tls_certificate_id,), user)
        for pool in session.scalars(select(Pool).where(Pool.tls_enabled.is_(True),
                                                       Pool.provisioning_status.not_in(GONE))):
            add(True, (pool.tls_certificate_id,), f"pool {pool.id}")
            add(False, (pool.ca_tls_certificate_id,), f"pool {pool.id}")
    return uses


def in_use(db: Database, manager: CertManager) -> list[InUse]:
    """Every certificate (and CA) in use, unreadable ones first, then by expiry."""
    found = []
    for (certificate, ref), users in _uses(db).items():
        who = tuple(dict.fromkeys(users))
        try:
            payload = manager.get_cert(ref).certificate if certificate else manager.get_secret(ref)
            found.append(InUse(ref, who, pem.subject(payload), pem.not_after(payload)))
        except (CertificateError, ValueError) as exc:
            found.append(InUse(ref, who, None, None, str(exc)))
    return sorted(found, key=lambda item: (item.expires is not None,
                                           item.expires or dt.datetime.min))


def log_expiring(db: Database, manager: CertManager, within: dt.timedelta = WARN_WITHIN) -> int:
    """Log a warning per certificate in use that expires within ``within`` (or cannot be
    read); how many."""
    now, count = utcnow(), 0
    for item in in_use(db, manager):
        if item.problem:
            LOG.warning("certificate %s used by %s cannot be read: %s", item.ref,
                        ", ".join(item.used_by), item.problem)
        elif item.expires is not None and item.expires - now < within:
            LOG.warning("certificate %s (%s) used by %s %s on %s", item.ref, item.subject,
                        ", ".join(item.used_by), "expired" if item.expires < now else "expires",
                        item.expires.isoformat())
        else:
            continue
        count += 1
    return count
