"""The job board between the API and the workers, kept in the database.

The API adds a job in the same transaction as the change it describes, so a change is
never written without its job nor a job sent for a change that rolled back. Workers
claim jobs by taking a lease; a job whose worker died is claimed again once its lease
runs out. Within one process a ``Wakeup`` lets the worker start at once instead of
waiting for its next poll.
"""
from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from lbaas.db.engine import Database
from lbaas.db.models import Job, utcnow


class Wakeup:
    """Tells a worker in the same process that a job is waiting."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def notify(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)
        self._event.clear()


def enqueue(session: Session, action: str, **payload: Any) -> None:
    """Add a job to the caller's transaction."""
    session.add(Job(action=action, payload=payload))


def _claimable(now: dt.datetime) -> Any:
    return or_(Job.lease_expires.is_(None), Job.lease_expires < now)


def claim(db: Database, owner: str, lease: dt.timedelta) -> Job | None:
    """Take the oldest job that nobody holds (or whose holder's lease ran out)."""
    now = utcnow()
    with db.read() as session:
        if session.scalar(select(Job.id).where(_claimable(now)).limit(1)) is None:
            return None  # nothing to take: no write transaction (on SQLite, no write lock)
    with db.write() as session:
        job = session.scalars(
            select(Job).where(_claimable(now))
            .order_by(Job.id).limit(1).with_for_update(skip_locked=True)
        ).first()
        if job is None:
            return None
        claimed = session.execute(
            update(Job)
            .where(Job.id == job.id, _claimable(now))
            .values(lease_owner=owner, lease_expires=now + lease, attempts=Job.attempts + 1)
        ).rowcount
        if not claimed:
            return None
        session.refresh(job)
        return job


def finish(db: Database, job: Job) -> None:
    """The job ran (successfully or reverted): remove it from the board."""
    with db.write() as session:
        session.execute(Job.__table__.delete().where(Job.id == job.id))
