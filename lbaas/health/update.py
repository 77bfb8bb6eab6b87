"""Heartbeats into the database, in batches (upstream's ``update_health`` and ``update_stats``).

One thread takes whatever heartbeats are waiting (up to ``BATCH_SIZE``) and handles them
together: a handful of reads for the trees of every load balancer involved, then one
short write transaction that

* keeps only heartbeats newer than the amphora's recorded ``sequence`` (replays and
  copies already handled by another health manager are dropped and counted),
* upserts ``amphora_health`` (``last_update`` whenever the heartbeat came in time; upstream
  also wants every enabled listener reported, and so fails over an amphora whose
  configuration lacks one, again and again: here that listener goes ERROR, the reason
  logged),
* writes the operating statuses that changed (``operating_status.derive``),
* adds the counters' deltas to ``listener_statistics`` per (listener, amphora)
  (``active_connections`` is replaced).

The health rows are read ``FOR UPDATE`` in id order, so two health managers sharing the
load serialize per amphora without deadlocks; on SQLite the write lock does the same.
"""
from __future__ import annotations

import datetime as dt
import logging
import queue
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lbaas import constants
from lbaas.amphora.agent.loop import Loop
from lbaas.db import status as db_status
from lbaas.db.engine import Database
from lbaas.db.models import (
    Amphora,
    AmphoraHealth,
    Listener,
    ListenerStatistics,
    LoadBalancer,
    Member,
    Pool,
    utcnow,
)
from lbaas.db.rows import table_of
from lbaas.health import operating_status
from lbaas.health.operating_status import Changes, ListenerState, LoadBalancerState, PoolState
from lbaas.health.receiver import Counters

LOG = logging.getLogger(__name__)
BATCH_SIZE = 500
# How long a batch waits, after its first heartbeat, for more. A write transaction costs
# about the same whatever it carries: at a few hundred heartbeats a second, each would
# otherwise be a transaction of its own (2 ms of this process's CPU each, with 1,000
# amphorae in bench/scale_bench.py), where a window of 50 ms gathers dozens; statuses and
# the failover check see a heartbeat at most that much later.
BATCH_WINDOW = 0.05
# Heartbeats waiting beyond this are dropped (counted "overloaded"): memory stays bounded
# when more arrive than the database takes, and the newest ones are what matter anyway.
MAX_WAITING = 50_000
# A heartbeat received less than this after its load balancer last changed may have been
# built before the change reached the amphora (it carries no time of its own): the
# listeners it lacks are not called ERROR for it. Without this, a listener created with
# its load balancer went ERROR now and then until the next heartbeat (up to
# heartbeat_interval, 10 s by default), when one was in flight as the flow finished.
SETTLE = dt.timedelta(seconds=1)
COUNTER_COLUMNS = {"rx": "bytes_in", "tx": "bytes_out", "totconns": "total_connections",
                   "ereq": "request_errors"}
COLUMNS = (*COUNTER_COLUMNS.values(), "active_connections")


@dataclass
class Heartbeat:
    message: dict[str, Any]
    received_at: float  # time.monotonic()

    @property
    def amphora_id(self) -> str:
        amphora_id: str = self.message["id"]  # receiver.py checked both
        return amphora_id

    @property
    def seq(self) -> int:
        seq: int = self.message["seq"]
        return seq


@dataclass
class AmphoraReport:
    """What one batch says about one amphora: its heartbeats (oldest first) and outcome."""

    heartbeats: list[Heartbeat]
    load_balancer_id: str | None = None
    alive: bool = False
    changes: Changes | None = None
    listener_ids: frozenset[str] = frozenset()

    @property
    def latest(self) -> Heartbeat:
        return self.heartbeats[-1]


def load_trees(session: Session, lb_ids: Iterable[str]) -> dict[str, LoadBalancerState]:
    """The statuses of these load balancers' trees (DELETED ones left out)."""
    lb_ids = list(lb_ids)
    connection = session.connection()  # Core, not the ORM: these are plain rows, read fast
    trees = {row.id: LoadBalancerState(row.id, row.enabled, row.provisioning_status,
                                       row.operating_status, changed_at=row.changed_at)
             for row in connection.execute(
                 select(LoadBalancer.id, LoadBalancer.enabled, LoadBalancer.provisioning_status,
                        LoadBalancer.operating_status,
                        func.coalesce(LoadBalancer.updated_at, LoadBalancer.created_at)
                        .label("changed_at"))
                 .where(LoadBalancer.id.in_(lb_ids),
                        LoadBalancer.provisioning_status != constants.DELETED)).all()}
    for row in connection.execute(select(Listener.id, Listener.load_balancer_id, Listener.enabled,
                                      Listener.operating_status, Listener.provisioning_status)
                               .where(Listener.load_balancer_id.in_(trees))).all():
        trees[row.load_balancer_id].listeners[row.id] = ListenerState(
            row.enabled, row.operating_status, row.provisioning_status)
    pools: dict[str, PoolState] = {}
    for pool in connection.execute(select(Pool.id, Pool.load_balancer_id, Pool.operating_status)
                               .where(Pool.load_balancer_id.in_(trees))).all():
        pools[pool.id] = trees[pool.load_balancer_id].pools[pool.id] = PoolState(pool.operating_status)
    for member in connection.execute(select(Member.id, Member.pool_id, Member.operating_status)
                                  .where(Member.pool_id.in_(pools))).all():
        pools[member.pool_id].members[member.id] = member.operating_status
    return trees


def _log_missing(amphora_id: str, tree: LoadBalancerState, message: dict[str, Any],
                 changes: Changes) -> None:
    """Say why a listener goes ERROR when its amphora does not serve it (once, when it
    changes): the amphora is alive, its configuration lacks the listener."""
    missing = operating_status.missing_listeners(tree, message)
    for listener_id in missing:
        if changes["listener"].get(listener_id) == constants.ERROR:
            LOG.warning("listener %s is ERROR: amphora %s is alive but does not serve it "
                        "(its heartbeat reports %d listeners, the database expects %d)",
                        listener_id, amphora_id, len(message.get("listeners", {})),
                        sum(1 for listener in tree.listeners.values() if listener.served))


def _counter_rows(report: AmphoraReport, amphora_id: str,
                  heartbeats: list[Heartbeat]) -> dict[str, dict[str, Any]]:
    """Per listener of the amphora's load balancer: the summed deltas of ``heartbeats``."""
    rows: dict[str, dict[str, Any]] = {}
    for heartbeat in heartbeats:
        for listener_id, listener in heartbeat.message.get("listeners", {}).items():
            if listener_id not in report.listener_ids:
                continue
            stats = listener.get("stats", {})
            row = rows.setdefault(listener_id, {"b_listener": listener_id, "b_amphora": amphora_id,
                                                **{f"d_{column}": 0 for column in COLUMNS}})
            for key, column in COUNTER_COLUMNS.items():
                row[f"d_{column}"] += max(0, stats.get(key, 0))
            row["d_active_connections"] = max(0, stats.get("conns", 0))
    return rows


class HealthUpdater:
    """Takes valid heartbeats (``submit``) and writes them in batches on its own thread."""

    def __init__(self, db: Database, counters: Counters, heartbeat_interval: float,
                 decode: Callable[[bytes], dict[str, Any] | None]) -> None:
        self.db = db
        self.counters = counters
        self.heartbeat_interval = heartbeat_interval
        self.decode = decode
        # Raw datagrams: one object each, cheap to hold while a batch is written.
        self.queue: queue.SimpleQueue[tuple[bytes, float]] = queue.SimpleQueue()
        self._newest: dict[str, int] = {}
        # How long the last batch's oldest heartbeat waited between arrival and its write.
        self.lag = 0.0
        self.batch_window = BATCH_WINDOW
        self._loop = Loop("hm-updater", self.process_waiting)

    def submit(self, datagram: bytes, received_at: float) -> None:
        if self.queue.qsize() >= MAX_WAITING:
            self.counters.add("overloaded")
            return
        self.queue.put((datagram, received_at))

    # -- the batch ---------------------------------------------------------------------

    def _new_to_us(self, heartbeats: list[Heartbeat]) -> dict[str, AmphoraReport]:
        """Group by amphora, dropping what this process already saw a newer one of."""
        reports: dict[str, AmphoraReport] = {}
        for heartbeat in sorted(heartbeats, key=lambda item: item.seq):
            newest = self._newest.get(heartbeat.amphora_id)
            if newest is not None and heartbeat.seq <= newest:
                self.counters.add("duplicate" if heartbeat.seq == newest else "replayed")
                continue
            self._newest[heartbeat.amphora_id] = heartbeat.seq
            reports.setdefault(heartbeat.amphora_id, AmphoraReport([])).heartbeats.append(heartbeat)
        return reports

    def _judge(self, reports: dict[str, AmphoraReport]) -> None:
        """Look up each amphora and derive its load balancer's status changes."""
        with self.db.read() as session:
            amphorae = {row.id: row for row in session.connection().execute(
                select(Amphora.id, Amphora.load_balancer_id, Amphora.status)
                .where(Amphora.id.in_(list(reports)))).all()}
            trees = load_trees(session, {row.load_balancer_id for row in amphorae.values()
                                         if row.load_balancer_id})
        now, wall = time.monotonic(), utcnow()
        for amphora_id in list(reports):
            row = amphorae.get(amphora_id)
            if row is None or row.status == constants.DELETED:
                self.counters.add("unknown_amphora", len(reports.pop(amphora_id).heartbeats))
                self._newest.pop(amphora_id, None)
                continue
            report = reports[amphora_id]
            late = now - report.latest.received_at > self.heartbeat_interval
            if late:
                self.counters.add("late")
            tree = trees.get(row.load_balancer_id) if row.load_balancer_id else None
            report.load_balancer_id = tree.id if tree else None
            if tree is None:  # a spare: alive, nothing else to record
                report.alive = not late
                continue
            report.alive = not late
            received = wall - dt.timedelta(seconds=now - report.latest.received_at)
            settling = tree.changed_at is not None and tree.changed_at > received - SETTLE
            report.changes = operating_status.derive(tree, report.latest.message, settling)
            _log_missing(amphora_id, tree, report.latest.message, report.changes)
            operating_status.apply(tree, report.changes)
            report.listener_ids = frozenset(tree.listeners)

    def _write(self, session: Session, reports: dict[str, AmphoraReport]) -> int:
        """Record the batch; returns how many heartbeats were accepted."""
        ids = sorted(reports)
        recorded = dict(session.connection().execute(
            select(AmphoraHealth.amphora_id, AmphoraHealth.sequence)
            .where(AmphoraHealth.amphora_id.in_(ids))
            .order_by(AmphoraHealth.amphora_id).with_for_update()).all())
        now = utcnow()
        new_rows, updates, counter_rows = [], [], {}
        changes: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        accepted = 0
        for amphora_id in ids:
            report = reports[amphora_id]
            fresh = [hb for hb in report.heartbeats if hb.seq > recorded.get(amphora_id, -1)]
            stale = len(report.heartbeats) - len(fresh)
            if stale:
                self.counters.add("replayed", stale)
            if not fresh:
                continue
            accepted += len(fresh)
            values = {"b_id": amphora_id, "sequence": fresh[-1].seq}
            if amphora_id not in recorded:
                new_rows.append({"amphora_id": amphora_id, "sequence": fresh[-1].seq,
                                 "last_update": now, "busy": False})
            elif report.alive:
                updates.append({**values, "last_update": now})
            else:
                updates.append({**values, "last_update": None})
            for kind, by_id in (report.changes or {}).items():
                for object_id, new_status in by_id.items():
                    changes[kind][new_status].append(object_id)
            for listener_id, row in _counter_rows(report, amphora_id, fresh).items():
                counter_rows[(listener_id, amphora_id)] = row
        if new_rows:
            session.execute(insert(AmphoraHealth), new_rows)
        self._update_health(session, updates)
        for kind, by_status in changes.items():
            model = db_status.KINDS[kind]
            for new_status, object_ids in by_status.items():
                session.execute(update(model).where(model.id.in_(object_ids))
                                .values(operating_status=new_status)
                                .execution_options(synchronize_session=False))
        self._add_statistics(session, counter_rows)
        return accepted

    @staticmethod
    def _update_health(session: Session, updates: list[dict[str, Any]]) -> None:
        table = table_of(AmphoraHealth)
        alive = [row for row in updates if row["last_update"] is not None]
        silent = [{"b_id": row["b_id"], "sequence": row["sequence"]}
                  for row in updates if row["last_update"] is None]
        where = table.c.amphora_id == bindparam("b_id")
        if alive:
            session.connection().execute(table.update().where(where), alive)
        if silent:
            session.connection().execute(table.update().where(where), silent)

    @staticmethod
    def _add_statistics(session: Session, rows: dict[tuple[str, str], dict[str, Any]]) -> None:
        if not rows:
            return
        table = table_of(ListenerStatistics)
        amphora_ids = {amphora_id for _, amphora_id in rows}
        existing = {tuple(row) for row in session.connection().execute(
            select(table.c.listener_id, table.c.amphora_id)
            .where(table.c.amphora_id.in_(amphora_ids))).all()}
        new = [{"listener_id": row["b_listener"], "amphora_id": row["b_amphora"],
                **{column: row[f"d_{column}"] for column in COLUMNS}}
               for key, row in rows.items() if key not in existing]
        if new:
            session.execute(insert(ListenerStatistics), new)
        increments = [row for key, row in rows.items() if key in existing]
        if increments:
            session.connection().execute(
                table.update()
                .where(table.c.listener_id == bindparam("b_listener"),
                       table.c.amphora_id == bindparam("b_amphora"))
                .values(active_connections=bindparam("d_active_connections"),
                        **{column: table.c[column] + bindparam(f"d_{column}")
                           for column in COUNTER_COLUMNS.values()}),
                increments)

    def process(self, heartbeats: list[Heartbeat]) -> None:
        """Handle one batch of valid heartbeats."""
        reports = self._new_to_us(heartbeats)
        if reports:
            self._judge(reports)
        if not reports:
            return
        for attempt in (1, 2):
            try:
                with self.db.write() as session:
                    accepted = self._write(session, reports)
                break
            except IntegrityError:  # another health manager inserted the same row first
                if attempt == 2:
                    raise
        self.counters.add("accepted", accepted)

    # -- the thread --------------------------------------------------------------------

    def _next_batch(self) -> list[Heartbeat]:
        """The valid heartbeats among the datagrams waiting: at least one waited for, and
        those that come within ``batch_window`` of it."""
        try:
            raw = [self.queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.batch_window
        while len(raw) < BATCH_SIZE:
            remaining = deadline - time.monotonic()
            try:
                raw.append(self.queue.get(timeout=remaining) if remaining > 0
                           else self.queue.get_nowait())
            except queue.Empty:
                break
        return [Heartbeat(message, received_at) for datagram, received_at in raw
                if (message := self.decode(datagram)) is not None]

    def process_waiting(self) -> None:
        """Wait (briefly) for heartbeats and handle those waiting as one batch."""
        batch = self._next_batch()
        if batch:
            try:
                self.process(batch)
            except Exception:  # a failed batch is lost (the next heartbeats come soon)
                self.counters.add("failed", len(batch))
                raise
            self.lag = time.monotonic() - min(heartbeat.received_at for heartbeat in batch)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
