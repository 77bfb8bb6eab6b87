"""Counters and gauges that every controller process adds to, kept in the database so
that one endpoint (the API's ``/metrics``) shows the whole control plane, whichever
process did the work, and so that counters survive restarts (they only grow).

Histograms are counters too: ``<name>_bucket{le=...}``, ``<name>_sum``, ``<name>_count``.
"""
from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import bindparam, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lbaas.db import locks
from lbaas.db.models import Metric
from lbaas.db.rows import changed, table_of

DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, float("inf"))
# Every metric kept here: its type and what it counts (the API's /metrics help text).
DECLARED = {
    "lbaas_flows_total": ("counter", "Flows the workers ended, by action and outcome "
                                     "(done, reverted, abandoned after too many attempts)."),
    "lbaas_flow_duration_seconds": ("histogram", "How long flows took, by action (builds, "
                                                 "updates, failovers)."),
    "lbaas_heartbeats_total": ("counter", "Amphora heartbeats the health managers received, "
                                          "by result (accepted, or why dropped)."),
    "lbaas_health_manager_lag_seconds": ("gauge", "How long the last heartbeats a health "
                                                  "manager wrote had waited, by host."),
}


_METRICS = table_of(Metric)
# Built once: every flow's end runs it.
_ADD = (update(_METRICS)
        .where(_METRICS.c.name == bindparam("metric"), _METRICS.c.labels == bindparam("key"))
        .values(value=_METRICS.c.value + bindparam("amount", type_=_METRICS.c.value.type)))


def _key(labels: dict[str, str]) -> str:
    return json.dumps(labels, sort_keys=True)


def _check(name: str) -> None:
    base = name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
    if base not in DECLARED:
        raise ValueError(f"undeclared metric {name}: add it to lbaas.db.metrics.DECLARED")


def add(session: Session, name: str, amount: float = 1.0, **labels: str) -> None:
    """Add ``amount`` to the counter ``name`` with ``labels`` (in the caller's transaction)."""
    add_all(session, [(name, amount, labels)])


def add_all(session: Session, increments: Iterable[tuple[str, float, dict[str, str]]]) -> None:
    """Add to several counters with one statement run for each (the driver's
    executemany), making the rows that do not exist yet.

    A flow's metrics are 13 rows (its counter and its histogram): an ORM statement each
    cost a worker a tenth of a short flow's time, and one UPDATE with a CASE per row
    still 3 ms of CPU to build. The writers take turns (a named lock), so two never lock
    the same rows in different orders, nor both make one row."""
    amounts: dict[tuple[str, str], float] = {}
    for name, amount, labels in increments:
        _check(name)
        row = (name, _key(labels))
        amounts[row] = amounts.get(row, 0.0) + amount
    locks.hold(session, "metrics")
    updated = changed(session, _ADD, [{"metric": name, "key": key, "amount": value}
                                      for (name, key), value in amounts.items()])
    # A driver that cannot count the rows of an executemany makes us look.
    if updated == len(amounts) and session.get_bind().dialect.supports_sane_multi_rowcount:
        return
    existing = {(name, key) for name, key in session.execute(
        select(Metric.name, Metric.labels).where(
            tuple_(Metric.name, Metric.labels).in_(list(amounts))))}
    session.add_all(Metric(name=name, labels=key, value=value)
                    for (name, key), value in amounts.items() if (name, key) not in existing)
    session.flush()


def set_value(session: Session, name: str, value: float, **labels: str) -> None:
    """Set the gauge ``name`` with ``labels`` (a process's latest reading)."""
    _check(name)
    key = _key(labels)
    if not changed(session, update(Metric).where(Metric.name == name, Metric.labels == key)
                            .values(value=value)
                            .execution_options(synchronize_session=False)):
        try:
            with session.begin_nested():
                session.add(Metric(name=name, labels=key, value=value))
        except IntegrityError:
            pass  # another process of the same labels just set it


def observe(session: Session, name: str, value: float,
            buckets: Iterable[float] = DURATION_BUCKETS, **labels: str) -> None:
    """One observation of the histogram ``name``."""
    add_all(session, observation(name, value, buckets, **labels))


def observation(name: str, value: float, buckets: Iterable[float] = DURATION_BUCKETS,
                **labels: str) -> list[tuple[str, float, dict[str, str]]]:
    """The increments of one observation: the buckets it falls in, the sum, the count."""
    counted = [(f"{name}_bucket", 1.0, {**labels, "le": "+Inf" if bound == float("inf")
                                                       else str(bound)})
               for bound in buckets if value <= bound]
    return [*counted, (f"{name}_sum", value, labels), (f"{name}_count", 1.0, labels)]


def read(session: Session) -> list[tuple[str, dict[str, str], float]]:
    return [(row.name, json.loads(row.labels), row.value) for row in session.query(Metric)]
