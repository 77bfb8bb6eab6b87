"""Named locks that controllers on several hosts take in the database.

A lock is a row of ``controller_lock`` read ``FOR UPDATE``: whoever holds it keeps it
until its transaction ends, and the others wait there. On SQLite a write transaction
already holds the database's single write lock, which gives the same guarantee.
"""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lbaas.db.models import ControllerLock


def hold(session: Session, name: str) -> None:
    """Take the lock ``name`` until the end of ``session``'s (write) transaction."""
    if session.get(ControllerLock, name, with_for_update=True) is not None:
        return
    try:
        with session.begin_nested():  # the first user of the lock makes its row
            session.add(ControllerLock(name=name))
    except IntegrityError:
        pass  # another controller made it first
    session.get(ControllerLock, name, with_for_update=True, populate_existing=True)
