"""Which controller processes run: each records itself (``stamp``) every ``INTERVAL``
seconds and removes its row when it stops (``forget``). One that has not stamped for
three intervals is taken for dead (killed, or its host down)."""
from __future__ import annotations

import datetime as dt
import os

from sqlalchemy import delete, update

from lbaas.db.engine import Database
from lbaas.db.models import Service, utcnow
from lbaas.db.rows import changed

INTERVAL = 5.0


def alive_after() -> dt.datetime:
    return utcnow() - dt.timedelta(seconds=3 * INTERVAL)


def service_id(kind: str, host: str) -> str:
    return f"{kind}@{host}:{os.getpid()}"


def stamp(db: Database, kind: str, host: str, activity: str | None) -> None:
    """This process is alive (and last did ``activity``); rows of this host's dead
    processes of the same kind are forgotten."""
    this = service_id(kind, host)
    with db.write() as session:
        if not changed(session, update(Service).where(Service.id == this)
                                .values(last_seen=utcnow(), activity=activity)):
            session.add(Service(id=this, kind=kind, host=host, pid=os.getpid(),
                                activity=activity))
        session.execute(delete(Service).where(Service.host == host, Service.kind == kind,
                                              Service.last_seen < alive_after()))


def forget(db: Database, kind: str, host: str) -> None:
    """This process stops: it is no longer listed."""
    with db.write() as session:
        session.execute(delete(Service).where(Service.id == service_id(kind, host)))
