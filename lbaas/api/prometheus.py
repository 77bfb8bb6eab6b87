"""What ``GET /metrics`` exports, read from the database at each scrape, so that any API
process shows the whole deployment whichever process did the work:

- the counters every controller adds to (lbaas.db.metrics): flows by action and outcome
  and their durations (builds, failovers), heartbeats, health-manager lag;
- the state of the deployment (lbaas.db.overview): running services, compute hosts,
  objects by status, amphorae and the age of their last heartbeat, spares, the job
  board, certificate expiry, what needs attention;
- per load balancer: each listener's traffic counters (from the amphorae's heartbeats)
  and each member's health.
"""
from __future__ import annotations

import calendar
import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector as BaseCollector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lbaas import constants as c
from lbaas.config import Settings
from lbaas.db import metrics, overview
from lbaas.db.engine import Database
from lbaas.db.models import Amphora, Listener, ListenerStatistics, Member, Pool

LISTENER_LABELS = ["project_id", "loadbalancer_id", "listener_id", "protocol", "port"]
LISTENER_COUNTERS = {  # ListenerStatistics column -> (metric, help)
    "total_connections": ("lbaas_listener_connections", "Connections a listener accepted."),
    "bytes_in": ("lbaas_listener_bytes_in", "Bytes a listener received from clients."),
    "bytes_out": ("lbaas_listener_bytes_out", "Bytes a listener sent to clients."),
    "request_errors": ("lbaas_listener_request_errors",
                       "Requests a listener refused or could not parse."),
}
MEMBER_LABELS = ["project_id", "loadbalancer_id", "pool_id", "member_id", "address", "port"]
UP_STATUSES = (c.ONLINE, c.NO_MONITOR, c.DRAINING)


class Collector(BaseCollector):
    """A prometheus-client collector over one database."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings

    def collect(self) -> Iterator[Metric]:
        with self.db.read() as session:
            view = overview.read(session, self.settings)
            shared = metrics.read(session)
            listeners = _listener_rows(session)
            members = _member_rows(session)
        yield from _shared(shared)
        yield from _deployment(view)
        yield from _listeners(listeners)
        yield from _members(members)


def _shared(rows: list[tuple[str, dict[str, str], float]]) -> Iterator[Metric]:
    """The stored counters, gauges and histograms, by their declarations."""
    by_name: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for name, labels, value in rows:
        by_name[name].append((labels, value))
    for name, (kind, help_text) in metrics.DECLARED.items():
        if kind == "histogram":
            yield _histogram(name, help_text, by_name)
            continue
        label_names = sorted({key for labels, _ in by_name[name] for key in labels})
        family: CounterMetricFamily | GaugeMetricFamily = (
            CounterMetricFamily(name, help_text, labels=label_names) if kind == "counter"
            else GaugeMetricFamily(name, help_text, labels=label_names))
        for labels, value in by_name[name]:
            family.add_metric([labels.get(key, "") for key in label_names], value)
        yield family


def _histogram(name: str, help_text: str,
               by_name: dict[str, list[tuple[dict[str, str], float]]]) -> HistogramMetricFamily:
    """Reassemble ``<name>_bucket``/``_sum`` rows (lbaas.db.metrics.observe) by label set."""
    buckets: dict[tuple[tuple[str, str], ...], list[tuple[str, float]]] = defaultdict(list)
    for labels, value in by_name[f"{name}_bucket"]:
        bound = labels.pop("le")
        buckets[tuple(sorted(labels.items()))].append((bound, value))
    sums = {tuple(sorted(labels.items())): value for labels, value in by_name[f"{name}_sum"]}
    label_names = sorted({key for key_items in buckets for key, _ in key_items})
    family = HistogramMetricFamily(name, help_text, labels=label_names)
    for key_items, bounds in buckets.items():
        labels = dict(key_items)
        bounds.sort(key=lambda bound: float(bound[0]))
        family.add_metric([labels.get(key, "") for key in label_names], bounds,
                          sums.get(key_items, 0.0))
    return family


def _gauge(name: str, help_text: str, labels: list[str],
           samples: Iterator[tuple[list[str], float]] | list[tuple[list[str], float]]
           ) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


def _deployment(view: overview.Overview) -> Iterator[Metric]:
    yield _gauge("lbaas_service_up", "Controller processes: 1 while one stamps its presence, "
                 "0 once it stopped doing so.", ["kind", "host", "pid"],
                 [([s.kind, s.host, str(s.pid)], float(s.alive)) for s in view.services])
    yield _gauge("lbaas_service_last_seen_seconds", "Seconds since a controller process "
                 "last stamped its presence.", ["kind", "host", "pid"],
                 [([s.kind, s.host, str(s.pid)], view.age(s.last_seen) or 0.0)
                  for s in view.services])
    yield _gauge("lbaas_compute_host_up", "Compute hosts: 1 when their agent answers.",
                 ["host"], [([h.name], float(h.status == "UP"))
                            for h in view.hosts if h.kind == "compute"])
    yield _gauge("lbaas_objects", "Objects by kind and status.",
                 ["kind", "provisioning_status", "operating_status"],
                 [([kind, prov, oper], float(count)) for kind, counts in view.objects.items()
                  for (prov, oper), count in sorted(counts.items())])
    by_status = Counter((a.status, a.role or "") for a in view.amphorae)
    yield _gauge("lbaas_amphorae", "Amphorae by status and role.", ["status", "role"],
                 [([status, role], float(n)) for (status, role), n in sorted(by_status.items())])
    yield _gauge("lbaas_amphora_heartbeat_age_seconds", "Seconds since an amphora's last "
                 "heartbeat.", ["amphora_id", "loadbalancer_id", "host"],
                 [([a.id, a.load_balancer_id or "", a.host or ""], view.age(a.last_heard) or 0.0)
                  for a in view.amphorae if a.last_heard is not None])
    yield _gauge("lbaas_amphora_cert_expiry_timestamp_seconds", "When an amphora's "
                 "certificate expires (Unix time).", ["amphora_id"],
                 [([a.id], _unix(a.cert_expiration)) for a in view.amphorae
                  if a.cert_expiration is not None])
    yield _gauge("lbaas_spare_amphorae", "Booted amphorae waiting for a load balancer.", [],
                 [([], float(view.spares))])
    yield _gauge("lbaas_spare_amphorae_wanted", "[house_keeping] spare_amphora_pool_size.", [],
                 [([], float(view.spare_pool_size))])
    queued = Counter(job.action for job in view.jobs)
    yield _gauge("lbaas_jobs", "Jobs on the board (queued or running), by action.",
                 ["action"], [([action], float(n)) for action, n in sorted(queued.items())])
    oldest = min((job.created_at for job in view.jobs), default=None)
    yield _gauge("lbaas_job_oldest_age_seconds", "Age of the oldest job on the board "
                 "(0 when empty).", [], [([], view.age(oldest) or 0.0)])
    yield _gauge("lbaas_attention", "Things `lbaas status` says need an operator.", [],
                 [([], float(len(view.attention)))])


def _unix(when: dt.datetime) -> float:
    """A naive UTC time (as the database keeps them) as Unix time."""
    return float(calendar.timegm(when.timetuple()))


def _listener_rows(session: Session) -> list[tuple[Listener, dict[str, int]]]:
    """Each listener's counters summed over its amphorae; active connections only from
    amphorae serving it now."""
    sums = {row.listener_id: row for row in session.execute(
        select(ListenerStatistics.listener_id,
               *(func.sum(getattr(ListenerStatistics, column)).label(column)
                 for column in LISTENER_COUNTERS))
        .group_by(ListenerStatistics.listener_id))}
    active = dict(session.execute(
        select(ListenerStatistics.listener_id, func.sum(ListenerStatistics.active_connections))
        .join(Amphora, Amphora.id == ListenerStatistics.amphora_id)
        .where(Amphora.status == c.ALLOCATED).group_by(ListenerStatistics.listener_id)).all())
    rows = []
    for listener in session.scalars(select(Listener).where(
            Listener.provisioning_status != c.DELETED).order_by(Listener.created_at)):
        summed = sums.get(listener.id)
        counters = {column: int(getattr(summed, column) or 0) if summed else 0
                    for column in LISTENER_COUNTERS}
        counters["active_connections"] = int(active.get(listener.id) or 0)
        rows.append((listener, counters))
    return rows


def _listeners(rows: list[tuple[Listener, dict[str, int]]]) -> Iterator[Metric]:
    def labels(listener: Listener) -> list[str]:
        return [listener.project_id or "", listener.load_balancer_id, listener.id,
                listener.protocol, str(listener.protocol_port)]

    yield _gauge("lbaas_listener_active_connections", "Connections a listener has open now.",
                 LISTENER_LABELS, [(labels(lst), float(n["active_connections"]))
                                   for lst, n in rows])
    for column, (name, help_text) in LISTENER_COUNTERS.items():
        family = CounterMetricFamily(name, help_text, labels=LISTENER_LABELS)
        for listener, counters in rows:
            family.add_metric(labels(listener), float(counters[column]))
        yield family


def _member_rows(session: Session) -> list[tuple[Member, str]]:
    return [(member, lb_id) for member, lb_id in session.execute(
        select(Member, Pool.load_balancer_id).join(Pool, Pool.id == Member.pool_id)
        .where(Member.provisioning_status != c.DELETED).order_by(Member.created_at))]


def _members(rows: list[tuple[Member, str]]) -> Iterator[Metric]:
    yield _gauge("lbaas_member_up", "Members: 1 when their health lets them take traffic "
                 "(ONLINE, NO_MONITOR, DRAINING), 0 otherwise.", MEMBER_LABELS + ["status"],
                 [([m.project_id or "", lb_id, m.pool_id, m.id, m.ip_address,
                    str(m.protocol_port), m.operating_status],
                   float(m.operating_status in UP_STATUSES and m.enabled)) for m, lb_id in rows])
