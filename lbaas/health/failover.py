"""Automatic failover of amphorae whose heartbeats stopped (upstream's ``health_check``).

Every ``health_check_interval`` seconds, after a grace period from start (the heartbeats
of a just-started health manager have not arrived yet), one pass:

1. finishes what earlier passes started: an amphora whose failover ended is forgotten
   (replaced: its health row goes) or marked ERROR (the failover failed);
2. finds the stale amphorae: ALLOCATED, serving a load balancer, ``last_update`` older
   than ``heartbeat_timeout``, not ``busy``;
3. storm guard: if more than ``failover_threshold`` amphorae are silent at once (no
   heartbeat for half ``heartbeat_timeout`` — those about to go stale, as amphorae that
   die together do not all cross the timeout in the same pass — plus failovers still
   running), none is failed over; the stale ones become FAILOVER_STOPPED until an
   operator runs ``lbaas amphora failover-resume`` — a lost management network must not
   rebuild everything;
4. otherwise starts failovers, at most ``failover_threads`` running at once across every
   health manager (the ``busy`` rows): ``busy`` is set with a conditional update and the
   load balancer is test-and-set to PENDING_UPDATE, so two health managers never fail
   over one amphora twice; the worker runs the ``failover_amphora`` job (the replacement
   is built before the old amphora is removed).
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from lbaas import constants
from lbaas.amphora.agent.loop import Loop
from lbaas.config import Settings
from lbaas.controller import actions
from lbaas.db import status
from lbaas.db.engine import Database
from lbaas.db.models import Amphora, AmphoraHealth, LoadBalancer, utcnow
from lbaas.db.rows import changed

LOG = logging.getLogger(__name__)


@dataclass
class PassResult:
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def start_failover(session: Session, amphora_id: str) -> bool:
    """Mark the amphora busy, lock its load balancer and queue the failover job.

    False (and nothing changed) if another health manager holds it or the load balancer
    is busy with another change (the next pass tries again).
    """
    taken = changed(session,
        update(AmphoraHealth)
        .where(AmphoraHealth.amphora_id == amphora_id, AmphoraHealth.busy.is_(False))
        .values(busy=True).execution_options(synchronize_session=False))
    amphora = session.get(Amphora, amphora_id)
    if not taken or amphora is None or amphora.load_balancer_id is None:
        return False
    if not status.test_and_set(session, amphora.load_balancer_id, constants.PENDING_UPDATE,
                               constants.FAILOVERABLE_STATUSES):
        session.execute(update(AmphoraHealth).where(AmphoraHealth.amphora_id == amphora_id)
                        .values(busy=False).execution_options(synchronize_session=False))
        return False
    actions.failover_amphora(session, lb_id=amphora.load_balancer_id,
                              amphora_id=amphora_id)
    return True


def _finish(session: Session, result: PassResult) -> None:
    """Failovers that ended: replaced amphorae are forgotten, failed ones marked ERROR."""
    rows = session.execute(
        select(AmphoraHealth.amphora_id, Amphora.status, LoadBalancer.provisioning_status)
        .join(Amphora, Amphora.id == AmphoraHealth.amphora_id, isouter=True)
        .join(LoadBalancer, LoadBalancer.id == Amphora.load_balancer_id, isouter=True)
        .where(AmphoraHealth.busy.is_(True))).all()
    for amphora_id, amphora_status, lb_status in rows:
        if amphora_status in (None, constants.DELETED):
            session.execute(delete(AmphoraHealth).where(AmphoraHealth.amphora_id == amphora_id))
            result.finished.append(amphora_id)
        elif lb_status is None or not lb_status.startswith("PENDING"):
            LOG.error("failover of amphora %s failed; it is now ERROR", amphora_id)
            session.execute(update(Amphora).where(Amphora.id == amphora_id)
                            .values(status=constants.ERROR)
                            .execution_options(synchronize_session=False))
            session.execute(update(AmphoraHealth).where(AmphoraHealth.amphora_id == amphora_id)
                            .values(busy=False).execution_options(synchronize_session=False))
            result.failed.append(amphora_id)


def silent_amphorae(session: Session, cutoff: dt.datetime,
                    statuses: tuple[str, ...] = (constants.ALLOCATED,)) -> list[str]:
    """Amphorae serving a load balancer, last heard of before ``cutoff``, not being failed over."""
    return list(session.scalars(
        select(AmphoraHealth.amphora_id)
        .join(Amphora, Amphora.id == AmphoraHealth.amphora_id)
        .where(AmphoraHealth.last_update < cutoff, AmphoraHealth.busy.is_(False),
               Amphora.status.in_(statuses), Amphora.load_balancer_id.is_not(None))
        .order_by(AmphoraHealth.last_update)))


def check(session: Session, settings: Settings, now: dt.datetime | None = None) -> PassResult:
    """One pass (see the module's docstring)."""
    options = settings.health_manager
    result = PassResult()
    _finish(session, result)
    now = now or utcnow()
    stale = silent_amphorae(session, now - dt.timedelta(seconds=options.heartbeat_timeout))
    if not stale:
        return result
    running = session.scalar(select(func.count()).select_from(AmphoraHealth)
                             .where(AmphoraHealth.busy.is_(True))) or 0
    silent = len(silent_amphorae(session, now - dt.timedelta(seconds=options.heartbeat_timeout / 2),
                                 (constants.ALLOCATED, constants.FAILOVER_STOPPED)))
    if options.failover_threshold is not None and silent + running > options.failover_threshold:
        LOG.error("%d amphorae stopped sending heartbeats at once (failover_threshold %d): "
                  "automatic failover stopped; they are FAILOVER_STOPPED until `lbaas amphora "
                  "failover-resume`", silent + running, options.failover_threshold)
        session.execute(update(Amphora).where(Amphora.id.in_(stale))
                        .values(status=constants.FAILOVER_STOPPED)
                        .execution_options(synchronize_session=False))
        result.stopped = stale
        return result
    for amphora_id in stale[:max(0, options.failover_threads - running)]:
        if start_failover(session, amphora_id):
            LOG.warning("amphora %s sent no heartbeat for %s s: failing it over",
                        amphora_id, options.heartbeat_timeout)
            result.started.append(amphora_id)
    return result


def resume(db: Database, settings: Settings, amphora_ids: list[str] | None = None) -> PassResult:
    """The operator's go-ahead after a storm: FAILOVER_STOPPED amphorae (all, or these)
    become ALLOCATED, and those still silent are failed over now."""
    cutoff = utcnow() - dt.timedelta(seconds=settings.health_manager.heartbeat_timeout)
    result = PassResult()
    with db.write() as session:
        query = select(Amphora.id, AmphoraHealth.last_update).join(
            AmphoraHealth, AmphoraHealth.amphora_id == Amphora.id, isouter=True).where(
            Amphora.status == constants.FAILOVER_STOPPED)
        if amphora_ids is not None:
            query = query.where(Amphora.id.in_(amphora_ids))
        for amphora_id, last_update in session.execute(query).all():
            session.execute(update(Amphora).where(Amphora.id == amphora_id)
                            .values(status=constants.ALLOCATED)
                            .execution_options(synchronize_session=False))
            if last_update is not None and last_update < cutoff and start_failover(session, amphora_id):
                result.started.append(amphora_id)
            else:
                result.finished.append(amphora_id)
    return result


class FailoverChecker:
    """Runs ``check`` every ``health_check_interval`` once the grace period is over."""

    def __init__(self, settings: Settings, db: Database,
                 notify: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.db = db
        self.notify = notify
        options = settings.health_manager
        grace = options.failover_grace_period
        self.grace_until = time.monotonic() + (options.heartbeat_timeout if grace is None else grace)
        self._loop = Loop("hm-failover", self.run_once, options.health_check_interval)

    def run_once(self) -> PassResult | None:
        if time.monotonic() < self.grace_until:
            return None
        with self.db.write() as session:
            result = check(session, self.settings)
        if result.started and self.notify:
            self.notify()
        return result

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
