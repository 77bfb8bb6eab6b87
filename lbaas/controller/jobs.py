"""The job board between the API and the workers, kept in the database.

The API adds a job in the same transaction as the change it describes, so a change is
never written without its job nor a job sent for a change that rolled back. Workers
claim jobs by taking a lease, which proves them alive: short (``job_lease_seconds``),
renewed while the job runs, and checked in every transaction the flow writes, so a job
whose worker died is taken over within seconds, and a worker that lost its lease (it
stalled past it) stops before writing anything more. A worker starting on a host takes
back at once the jobs of its dead predecessors on that host (same host, a pid that is no
longer running).

Wake-ups: within one process a ``Wakeup`` starts a worker at once; workers of other
processes are woken by PostgreSQL's NOTIFY or RabbitMQ (``lbaas.controller.wakeups``),
else they poll every ``job_poll_interval``.
"""
from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from lbaas import log
from lbaas.db.engine import Database
from lbaas.db.models import Job, utcnow
from lbaas.db.rows import changed, table_of

CHANNEL = "lbaas_jobs"


class LeaseLost(Exception):
    """Another worker took the job over: this one must stop without touching anything."""


class Wakeup:
    """Tells the workers that a job is waiting: those of this process, and through
    ``bells`` (``lbaas.controller.wakeups``) those of other processes.

    Each wake-up wakes one waiting thread; a thread that claims a job wakes the next
    (``Worker``), so a job costs one look at the board and a burst of jobs as many looks
    as it has jobs, instead of every idle thread looking for every job. A wake-up that
    finds no thread waiting is kept for the next one that waits.
    """

    def __init__(self, *bells: Callable[[], None]) -> None:
        self._condition = threading.Condition()
        self._pending = False
        self._bells = bells

    def notify(self) -> None:
        """A job was queued (and committed)."""
        self.notify_local()
        for bell in self._bells:
            bell()

    def notify_local(self) -> None:
        """Wake one of this process's workers (a sibling, or a wake-up from elsewhere)."""
        with self._condition:
            self._pending = True
            self._condition.notify()

    def notify_all_local(self) -> None:
        """Wake every waiting thread of this process (the workers are stopping)."""
        with self._condition:
            self._pending = True
            self._condition.notify_all()

    def wait(self, timeout: float) -> None:
        with self._condition:
            if not self._pending:
                self._condition.wait(timeout)
            self._pending = False


def enqueue(session: Session, action: str, **payload: Any) -> None:
    """Add a job to the caller's transaction (on PostgreSQL, with a wake-up on commit); it
    carries the request id of the work that queued it, for the worker's log lines."""
    caller = log.request_id.get()
    session.add(Job(action=action, payload=payload,
                    state={"request_id": caller} if caller != "-" else None))
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a reused pid apart)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def process_owner(host: str) -> str:
    """This process's name on the board: ``host:pid:start time``."""
    return f"{host}:{os.getpid()}:{_start_time(os.getpid())}"


def _is_running(owner: str) -> bool:
    """Whether the process ``owner`` names (on this host) still runs."""
    _, pid, started = owner.rsplit(":", 2)
    return pid.isdigit() and _start_time(int(pid)) == started


def _claimable(owner: str, now: dt.datetime, running: Collection[int]) -> Any:
    """Nobody holds the job, or its holder's lease ran out; a job of this process whose
    lease ran out is taken again only if none of its threads runs it (a flow that stopped
    without letting go of its job), never next to a thread that still does."""
    expired_elsewhere = and_(Job.lease_expires < now, Job.lease_owner != owner)
    expired_here = and_(Job.lease_expires < now, Job.lease_owner == owner,
                        Job.id.not_in(list(running)))
    return or_(Job.lease_owner.is_(None), Job.lease_expires.is_(None),
               expired_elsewhere, expired_here)


def claim(db: Database, owner: str, lease: dt.timedelta,
          running: Collection[int] = ()) -> Job | None:
    """Take the oldest job that nobody holds (or whose holder's lease ran out); ``running``:
    the jobs this process's threads run now."""
    now = utcnow()
    claimable = _claimable(owner, now, running)
    with db.read() as session:
        if session.scalar(select(Job.id).where(claimable).limit(1)) is None:
            return None  # nothing to take: no write transaction (on SQLite, no write lock)
    with db.write() as session:
        job = session.scalars(
            select(Job).where(claimable)
            .order_by(Job.id).limit(1).with_for_update(skip_locked=True)
        ).first()
        if job is None:
            return None
        claimed = changed(session,
            update(Job)
            .where(Job.id == job.id, claimable)
            .values(lease_owner=owner, lease_expires=now + lease, attempts=Job.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if not claimed:
            return None
        session.refresh(job)
        return job


def seconds_until_claimable(db: Database, owner: str) -> float | None:
    """How long until the first lease held by another worker runs out (None: none held)."""
    with db.read() as session:
        expires = session.scalar(select(func.min(Job.lease_expires))
                                 .where(Job.lease_owner != owner))
    return None if expires is None else max(0.0, (expires - utcnow()).total_seconds())


def renew(db: Database, owner: str, lease: dt.timedelta, running: Collection[int]) -> set[int]:
    """Extend the leases of the jobs ``owner`` runs; returns those it still holds. A job it
    holds but no longer runs is left to expire, so that it is run again."""
    mine = and_(Job.lease_owner == owner, Job.id.in_(list(running)))
    with db.write() as session:
        session.execute(update(Job).where(mine)
                        .values(lease_expires=utcnow() + lease)
                        .execution_options(synchronize_session=False))
        return set(session.scalars(select(Job.id).where(mine)))


def take_back(db: Database, host: str, owner: str) -> list[int]:
    """Release the jobs held by processes of ``host`` that no longer run (a worker that was
    killed or crashed), so that they are claimed now rather than when their lease runs out."""
    with db.write() as session:
        held = session.execute(select(Job.id, Job.lease_owner).where(
            Job.lease_owner.like(f"{host}:%"), Job.lease_owner != owner)).all()
        dead = [job_id for job_id, holder in held if holder and not _is_running(holder)]
        if dead:
            session.execute(update(Job).where(Job.id.in_(dead))
                            .values(lease_owner=None, lease_expires=None)
                            .execution_options(synchronize_session=False))
    return dead


def hand_back(db: Database, owner: str, job_ids: list[int]) -> None:
    """A stopping worker lets go of jobs it has not finished: any worker may claim them now.
    The attempt is not counted: a job handed back did not crash a worker."""
    with db.write() as session:
        session.execute(update(Job).where(Job.id.in_(job_ids), Job.lease_owner == owner)
                        .values(lease_owner=None, lease_expires=None,
                                attempts=Job.attempts - 1)
                        .execution_options(synchronize_session=False))


def finish(db: Database, lease: Lease) -> None:
    """The job ran (successfully or reverted): remove it from the board, if still ours and
    not removed already by the flow's last write. Once removed, SQLite may give its id to
    a new job, which a sibling thread of this process (the same owner) may already hold:
    deleting by id and owner again would drop that job unrun."""
    if lease.ended:
        return
    with db.write() as session:
        session.execute(delete(Job).where(Job.id == lease.job_id,
                                          Job.lease_owner == lease.owner))


# A flow's every write keeps its lease: these are built once (an ORM statement built for
# each write cost more CPU than the rest of a small write transaction).
_JOBS = table_of(Job)
_YOURS = (_JOBS.c.id == bindparam("job_id"), _JOBS.c.lease_owner == bindparam("owner"))
_KEEP = update(_JOBS).where(*_YOURS).values(
    lease_expires=bindparam("expires", type_=_JOBS.c.lease_expires.type),
    state=bindparam("state", type_=_JOBS.c.state.type))
_END = delete(_JOBS).where(*_YOURS)


@dataclass
class Lease:
    """A worker's hold on one job, checked and renewed in the flow's own transactions."""

    job_id: int
    owner: str
    duration: dt.timedelta
    state: dict[str, Any] = field(default_factory=dict)
    lost: threading.Event = field(default_factory=threading.Event)
    ended: bool = False  # the flow's last write removed the job (and was committed)

    def keep(self, session: Session) -> None:
        """In the caller's transaction: the job is still ours (else ``LeaseLost``, and the
        transaction rolls back), its lease is renewed and ``state`` saved with the rows."""
        held = changed(session, _KEEP, {"job_id": self.job_id, "owner": self.owner,
                                        "expires": utcnow() + self.duration,
                                        "state": self.state})
        if not held:
            self.lost.set()
        self.check()

    def end(self, session: Session) -> None:
        """In the caller's transaction: remove the job (the flow's last write)."""
        ended = changed(session, _END, {"job_id": self.job_id, "owner": self.owner})
        if not ended:
            self.lost.set()
        self.check()

    def check(self) -> None:
        if self.lost.is_set():
            raise LeaseLost(f"job {self.job_id} was taken over by another worker")
