"""The reconciler: makes what the host runs match what the database says.

Run once at every worker start (before it takes any job) and periodically by
housekeeping. It compares the amphorae the compute driver finds and the ports the
network driver holds with the rows, and corrects what no flow is going to correct:

- an instance that no live row owns (its row DELETED, purged, or never there) is
  removed with its ports: an old amphora that still holds a VIP it no longer owns stops
  answering before a job gives that address to anything else;
- a row left half-built (PENDING_CREATE, BOOTING) or half-removed (PENDING_DELETE) by a
  flow that no longer runs (its load balancer is not PENDING_*, or for a spare, no boot
  job names it) is removed;
- a row whose instance is gone: a spare is removed (the pool refills), a serving
  amphora is failed over;
- a port whose holder (amphora or load balancer) is gone is released;
- a load balancer PENDING_* with no job that could move it (a job lost to an old bug or
  a hand-edited database) is set ERROR, so that it can be deleted or failed over.

Resources are listed before rows are read, and flows write a row before the resources
it names, so a resource made by a flow in progress always has its row. Rows and ports
changed less than ``MARGIN`` ago are left to the flow that may be working on them, and
a row is read again, in the transaction that marks it, before anything is done to it.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lbaas import constants
from lbaas.controller import actions
from lbaas.controller.actions import Action
from lbaas.controller.flow import FlowContext
from lbaas.controller.tasks.amphora import BUILDING
from lbaas.db import status
from lbaas.db.models import ROW_ONLY, Amphora, Job, LoadBalancer, utcnow
from lbaas.drivers.compute.base import HostUnreachable
from lbaas.drivers.network.base import Port

LOG = logging.getLogger(__name__)
MARGIN = dt.timedelta(seconds=30)


@dataclass
class Report:
    """What one pass corrected (amphora, port and load balancer ids)."""

    removed_instances: list[str] = field(default_factory=list)
    removed_rows: list[str] = field(default_factory=list)
    failed_over: list[str] = field(default_factory=list)
    released_ports: list[str] = field(default_factory=list)
    errored_load_balancers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    id: str
    status: str
    load_balancer_id: str | None
    host: str | None
    changed: dt.datetime


def run(ctx: FlowContext, hosts: list[str | None] | None = None) -> Report:
    """One pass (see the module's docstring), over every host the compute driver
    reconciles, or only ``hosts`` (one that just came back, say)."""
    report = Report()
    compute = ctx.drivers.compute
    instances = {host: compute.instances(host)
                 for host in (compute.reconciled_hosts() if hosts is None else hosts)}
    devices = ctx.drivers.network.devices()
    now = utcnow()
    with ctx.db.read() as session:  # candidates only: each is read again before acting
        amphorae = {row.id: row for row in (_Row(*values) for values in session.execute(
            select(Amphora.id, Amphora.status, Amphora.load_balancer_id, Amphora.cached_zone,
                   func.coalesce(Amphora.updated_at, Amphora.created_at))))}
        balancers = {lb_id: (lb_status, changed) for lb_id, lb_status, changed in session.execute(
            select(LoadBalancer.id, LoadBalancer.provisioning_status,
                   func.coalesce(LoadBalancer.updated_at, LoadBalancer.created_at)))}
    settled = now - MARGIN
    live = {amphora_id for amphora_id, row in amphorae.items()
            if row.status != constants.DELETED}
    _remove_orphan_instances(ctx, instances, live, report)
    _check_amphorae(ctx, amphorae.values(), instances, settled, report)
    _release_orphan_ports(ctx, devices, live, balancers, settled, report)
    _fail_stuck_load_balancers(ctx, balancers, settled, report)
    return report


def _remove_orphan_instances(ctx: FlowContext, instances: dict[str | None, dict[str, bool] | None],
                             live: set[str], report: Report) -> None:
    """Instances that no live row owns (a flow died between building and recording)."""
    for host, found in instances.items():
        for amphora_id in sorted(found or {}):
            if amphora_id not in live:
                LOG.warning("reconciler: amphora %s runs%s but no live row owns it; removing it",
                            amphora_id, f" on {host}" if host else "")
                _remove_instance(ctx, amphora_id, host)
                report.removed_instances.append(amphora_id)


def _check_amphorae(ctx: FlowContext, rows: Iterable[_Row],
                    instances: dict[str | None, dict[str, bool] | None],
                    settled: dt.datetime, report: Report) -> None:
    """Rows left building or deleting by a flow that no longer runs, and rows whose
    instance is gone."""
    for row in rows:
        if row.changed > settled or row.status == constants.DELETED:
            continue
        if row.status in (*BUILDING, constants.PENDING_DELETE):
            if _take_abandoned(ctx, row.id, settled):
                LOG.warning("reconciler: amphora %s was left %s by a flow that no longer "
                            "runs; removing it", row.id, row.status)
                _remove_instance(ctx, row.id, row.host)
                report.removed_rows.append(row.id)
            continue
        # The driver's one machine (None) holds every amphora; else the row's host, if it
        # was asked (a host that is down, or not in ``hosts``, cannot tell).
        found = instances[None] if None in instances else instances.get(row.host)
        if found is not None and not found.get(row.id):
            _lost_instance(ctx, row, settled, report)


def _release_orphan_ports(ctx: FlowContext, devices: dict[str, list[Port]], live: set[str],
                          balancers: dict[str, tuple[str, dt.datetime]],
                          settled: dt.datetime, report: Report) -> None:
    """Ports held for an amphora or a load balancer that is gone."""
    for device_id, ports in devices.items():
        holder_status = balancers.get(device_id, (constants.DELETED,))[0]
        if device_id in live or holder_status != constants.DELETED:
            continue
        for port in ports:
            if port.created_at is None or port.created_at < settled:
                LOG.warning("reconciler: port %s (%s) is held for %s, which is gone; "
                            "releasing it", port.id, port.ip_address, device_id)
                ctx.drivers.network.release_port(port.id)
                report.released_ports.append(port.id)


def _fail_stuck_load_balancers(ctx: FlowContext,
                               balancers: dict[str, tuple[str, dt.datetime]],
                               settled: dt.datetime, report: Report) -> None:
    """Load balancers PENDING_* with no job to finish them."""
    for lb_id, (lb_status, changed) in balancers.items():
        if lb_status in status.PENDING and changed < settled and _fail_stuck(ctx, lb_id, settled):
            LOG.error("reconciler: load balancer %s was %s with no job to finish it; it is "
                      "ERROR now (delete it or fail it over)", lb_id, lb_status)
            report.errored_load_balancers.append(lb_id)


def _queued(session: Session) -> tuple[set[str], set[str]]:
    """The load balancers and the spare amphorae that a job on the board names."""
    balancers, spares = set(), set()
    for action, payload in session.execute(select(Job.action, Job.payload)):
        payload = payload or {}
        if payload.get("lb_id"):
            balancers.add(payload["lb_id"])
        if action == Action.BUILD_SPARE and payload.get("amphora_id"):
            spares.add(payload["amphora_id"])
    return balancers, spares


def _in_flow(session: Session, amphora: Amphora) -> bool:
    """Whether a job may be working on the amphora: its load balancer is PENDING_*, or
    (a spare) a boot job names it."""
    balancers, spares = _queued(session)
    if amphora.load_balancer_id is None:
        return amphora.id in spares
    lb_status = session.scalar(select(LoadBalancer.provisioning_status)
                               .where(LoadBalancer.id == amphora.load_balancer_id))
    return lb_status in status.PENDING or amphora.load_balancer_id in balancers


def _take_abandoned(ctx: FlowContext, amphora_id: str, settled: dt.datetime) -> bool:
    """Mark the amphora DELETED if, read again now, it is still half-built or
    half-removed, unchanged since ``settled`` and no job works on it."""
    with ctx.db.write() as session:
        amphora = session.get(Amphora, amphora_id, options=ROW_ONLY)
        if (amphora is None or amphora.status not in (*BUILDING, constants.PENDING_DELETE)
                or (amphora.updated_at or amphora.created_at) > settled
                or _in_flow(session, amphora)):
            return False
        amphora.status = constants.DELETED
        return True


def _remove_instance(ctx: FlowContext, amphora_id: str, host: str | None) -> None:
    try:
        ctx.drivers.compute.delete(ctx.drivers.compute.compute_id(amphora_id), host=host)
    except HostUnreachable as exc:
        LOG.warning("reconciler: amphora %s: %s; it is removed when its host is back",
                    amphora_id, exc)
    ctx.drivers.amphora.forget(amphora_id)
    for port in ctx.drivers.network.ports_of(amphora_id):
        ctx.drivers.network.release_port(port.id)


def _lost_instance(ctx: FlowContext, row: _Row, settled: dt.datetime, report: Report) -> None:
    """A spare or serving amphora whose instance is gone: the spare is removed (the pool
    refills), the serving one failed over."""
    with ctx.db.write() as session:
        amphora = session.get(Amphora, row.id, options=ROW_ONLY)
        if amphora is None or amphora.status != row.status \
                or (amphora.updated_at or amphora.created_at) > settled:
            return
        if amphora.status == constants.READY and amphora.load_balancer_id is None:
            amphora.status = constants.DELETED
            spare = True
        elif amphora.status == constants.ALLOCATED and amphora.load_balancer_id and \
                status.test_and_set(session, amphora.load_balancer_id, constants.PENDING_UPDATE,
                                    constants.FAILOVERABLE_STATUSES):
            actions.failover_amphora(session, lb_id=amphora.load_balancer_id,
                                     amphora_id=amphora.id)
            spare = False
        else:
            return
    if spare:
        LOG.warning("reconciler: spare amphora %s is gone; removing its row", row.id)
        _remove_instance(ctx, row.id, row.host)
        report.removed_rows.append(row.id)
    else:
        LOG.warning("reconciler: amphora %s of load balancer %s is gone; failing it over",
                    row.id, row.load_balancer_id)
        report.failed_over.append(row.id)


def _fail_stuck(ctx: FlowContext, lb_id: str, settled: dt.datetime) -> bool:
    """Set ERROR a load balancer that, read again now, is PENDING_* since before
    ``settled`` with no job naming it."""
    with ctx.db.write() as session:
        lb = session.get(LoadBalancer, lb_id, options=ROW_ONLY)
        if (lb is None or lb.provisioning_status not in status.PENDING
                or (lb.updated_at or lb.created_at) > settled
                or lb_id in _queued(session)[0]):
            return False
        status.fail(session, lb_id, {"loadbalancer": [lb_id],
                                     **status.pending_tree_objects(session, lb_id)})
        return True
