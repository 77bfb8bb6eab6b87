"""The deployment at a glance, read from the database in one transaction: which
controller processes and compute hosts run, the amphorae and when each was last heard,
objects by status, the job board, and what needs an operator's attention.

``lbaas status`` prints it, the API's ``/metrics`` exports it and ``/healthcheck`` shows
its services to admins; all three therefore agree.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lbaas import constants as c
from lbaas.certs import store
from lbaas.config import ConfigError, Settings
from lbaas.db import services
from lbaas.db.models import (
    Amphora,
    AmphoraHealth,
    HealthMonitor,
    Host,
    Job,
    Listener,
    LoadBalancer,
    Member,
    Pool,
    Service,
    utcnow,
)

# Objects counted by (provisioning_status, operating_status).
StatusModel = type[LoadBalancer] | type[Listener] | type[Pool] | type[Member] | type[HealthMonitor]
COUNTED: dict[str, StatusModel] = {"load_balancer": LoadBalancer, "listener": Listener, "pool": Pool,
           "member": Member, "health_monitor": HealthMonitor}
# A PENDING_* object older than this is stuck, not busy.
STUCK_AFTER = dt.timedelta(minutes=5)
# A job waiting (or retried) this long is named as needing attention.
SLOW_JOB = dt.timedelta(seconds=60)
# Services that must run somewhere for changes, failovers and spares to happen.
REQUIRED_SERVICES = {"worker": "no change to a load balancer is applied",
                     "health-manager": "no failed amphora is failed over",
                     "housekeeping": "spares, cleanup and certificate rotation stop"}


@dataclass(frozen=True)
class ServiceState:
    id: str
    kind: str
    host: str
    pid: int
    started_at: dt.datetime
    last_seen: dt.datetime
    alive: bool
    activity: str | None


@dataclass(frozen=True)
class HostState:
    name: str
    kind: str
    status: str
    last_seen: dt.datetime | None
    amphorae: int
    capacity: int | None


@dataclass(frozen=True)
class AmphoraState:
    id: str
    status: str
    role: str | None
    load_balancer_id: str | None
    host: str | None
    last_heard: dt.datetime | None
    cert_expiration: dt.datetime | None


@dataclass(frozen=True)
class JobState:
    id: int
    action: str
    created_at: dt.datetime
    attempts: int
    owner: str | None
    last_error: str | None


@dataclass
class Overview:
    now: dt.datetime
    services: list[ServiceState]
    hosts: list[HostState]
    amphorae: list[AmphoraState]
    # object kind -> (provisioning_status, operating_status) -> count
    objects: dict[str, Counter[tuple[str, str]]]
    jobs: list[JobState]
    stuck: list[tuple[str, str, dt.datetime]]  # (id, provisioning_status, updated_at) of LBs
    spare_pool_size: int
    heartbeat_timeout: float
    cert_expiry_buffer: float
    ca_expiry: dict[str, dt.datetime] = field(default_factory=dict)  # of this host's files
    attention: list[str] = field(default_factory=list)

    def age(self, when: dt.datetime | None) -> float | None:
        return None if when is None else (self.now - when).total_seconds()

    @property
    def spares(self) -> int:
        return sum(1 for amphora in self.amphorae if amphora.status == c.READY)

    @property
    def soonest_cert_expiry(self) -> dt.datetime | None:
        return min((a.cert_expiration for a in self.amphorae if a.cert_expiration), default=None)

    def silent_amphorae(self) -> list[AmphoraState]:
        """Amphorae serving a load balancer that have not been heard for longer than the
        heartbeat timeout (the health manager fails them over, unless it is not running)."""
        return [a for a in self.amphorae if a.status == c.ALLOCATED and a.last_heard is not None
                and (self.age(a.last_heard) or 0.0) > self.heartbeat_timeout]

    def alive(self, kind: str) -> list[ServiceState]:
        return [s for s in self.services if s.kind == kind and s.alive]


def service_states(session: Session) -> list[ServiceState]:
    fresh = services.alive_after()
    return [ServiceState(row.id, row.kind, row.host, row.pid, row.started_at, row.last_seen,
                         row.last_seen > fresh, row.activity)
            for row in session.scalars(select(Service).order_by(Service.kind, Service.host))]


def _amphorae(session: Session) -> list[AmphoraState]:
    rows = session.execute(
        select(Amphora, AmphoraHealth.last_update)
        .outerjoin(AmphoraHealth, AmphoraHealth.amphora_id == Amphora.id)
        .where(Amphora.status != c.DELETED).order_by(Amphora.created_at))
    return [AmphoraState(amphora.id, amphora.status, amphora.role, amphora.load_balancer_id,
                         amphora.cached_zone, heard, amphora.cert_expiration)
            for amphora, heard in rows]


def _counts(session: Session, model: StatusModel) -> Counter[tuple[str, str]]:
    rows = session.execute(select(model.provisioning_status, model.operating_status,
                                  func.count()).group_by(model.provisioning_status,
                                                         model.operating_status))
    return Counter({(prov, oper): count for prov, oper, count in rows if prov != c.DELETED})


def read(session: Session, settings: Settings) -> Overview:
    """The whole picture, with its ``attention`` list filled in."""
    now = utcnow()
    stuck = [(lb.id, lb.provisioning_status, lb.updated_at or lb.created_at)
             for lb in session.scalars(select(LoadBalancer).where(
                 LoadBalancer.provisioning_status.in_(
                     (c.PENDING_CREATE, c.PENDING_UPDATE, c.PENDING_DELETE))))
             if now - (lb.updated_at or lb.created_at) > STUCK_AFTER]
    overview = Overview(
        now=now, services=service_states(session),
        hosts=[HostState(h.name, h.kind, h.status, h.last_seen, h.amphorae, h.capacity)
               for h in session.scalars(select(Host).order_by(Host.name))],
        amphorae=_amphorae(session),
        objects={kind: _counts(session, model) for kind, model in COUNTED.items()},
        jobs=[JobState(job.id, job.action, job.created_at, job.attempts, job.lease_owner,
                       job.last_error)
              for job in session.scalars(select(Job).order_by(Job.id))],
        stuck=stuck,
        spare_pool_size=settings.house_keeping.spare_amphora_pool_size,
        heartbeat_timeout=settings.health_manager.heartbeat_timeout,
        cert_expiry_buffer=settings.house_keeping.cert_expiry_buffer,
        ca_expiry=_ca_expiry(settings))
    overview.attention = _attention(overview)
    return overview


def _ca_expiry(settings: Settings) -> dict[str, dt.datetime]:
    try:
        return store.ca_expiries(store.resolve(settings))
    except ConfigError:  # half-supplied options: the services refuse to start and say why
        return {}


def _ids(ids: list[str], limit: int = 3) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _attention(view: Overview) -> list[str]:
    """One line per thing an operator should look at, most urgent first."""
    notes = [f"no {kind} is running: {consequence}"
             for kind, consequence in REQUIRED_SERVICES.items() if not view.alive(kind)]
    errored = sum(count for (prov, _oper), count in view.objects["load_balancer"].items()
                  if prov == c.ERROR)
    if errored:
        notes.append(f"{errored} load balancer(s) in ERROR: `openstack loadbalancer list "
                     "--provisioning-status ERROR`, then failover or delete them")
    if view.stuck:
        notes.append(f"load balancer(s) PENDING_* for over {STUCK_AFTER.seconds // 60} minutes: "
                     f"{_ids([lb_id for lb_id, _, _ in view.stuck])}")
    down = [host.name for host in view.hosts if host.kind == "compute" and host.status != "UP"]
    if down:
        notes.append(f"compute host(s) not UP: {_ids(down)}")
    silent = view.silent_amphorae()
    if silent:
        notes.append(f"amphora(e) silent for over {view.heartbeat_timeout:g} s: "
                     f"{_ids([a.id for a in silent])}")
    broken = [a.id for a in view.amphorae if a.status in (c.ERROR, c.FAILOVER_STOPPED)]
    if broken:
        notes.append(f"amphora(e) in ERROR or FAILOVER_STOPPED: {_ids(broken)} "
                     "(`lbaas amphora failover-resume` resumes the stopped ones)")
    if view.spares < view.spare_pool_size:
        notes.append(f"spare pool {view.spares}/{view.spare_pool_size}")
    expiry = view.soonest_cert_expiry
    if expiry is not None and (expiry - view.now).total_seconds() < view.cert_expiry_buffer:
        notes.append(f"an amphora certificate expires at {expiry:%Y-%m-%d %H:%M} UTC and has "
                     "not been rotated yet")
    notes += [f"the {name} expires at {end:%Y-%m-%d %H:%M} UTC: plan its replacement"
              for name, end in view.ca_expiry.items()
              if end - view.now < store.CA_EXPIRY_WARNING]
    slow = [job for job in view.jobs if view.now - job.created_at > SLOW_JOB or job.attempts > 1]
    if slow:
        notes.append(f"{len(slow)} job(s) waiting over {SLOW_JOB.seconds} s or retried: "
                     + _ids([f"{job.id} ({job.action})" for job in slow]))
    return notes

