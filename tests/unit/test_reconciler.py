"""The reconciler's judgement of rows, with the no-op drivers (no instance to compare):
what no flow will finish is corrected, what a flow may still be working on is left."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from lbaas import constants
from lbaas.controller import jobs, reconciler
from lbaas.controller.flow import FlowContext
from lbaas.db.models import Amphora, Job, LoadBalancer, Member, Pool, utcnow

LONG_AGO = utcnow() - reconciler.MARGIN - dt.timedelta(seconds=60)


@pytest.fixture
def context(services, drivers) -> FlowContext:
    return FlowContext(db=services.db, drivers=drivers, settings=services.settings)


def _lb(context: FlowContext, status: str, changed: dt.datetime = LONG_AGO) -> str:
    with context.db.write() as session:
        lb = LoadBalancer(provisioning_status=status, operating_status=constants.ONLINE,
                          created_at=changed, updated_at=changed)
        session.add(lb)
    return lb.id


def _amphora(context: FlowContext, status: str, lb_id: str | None,
             changed: dt.datetime = LONG_AGO) -> str:
    with context.db.write() as session:
        amphora = Amphora(status=status, load_balancer_id=lb_id, created_at=changed,
                          updated_at=changed)
        session.add(amphora)
    return amphora.id


def _status(context: FlowContext, model: type, row_id: str) -> str:
    with context.db.read() as session:
        row = session.get(model, row_id)
        return row.status if model is Amphora else row.provisioning_status


def test_a_load_balancer_pending_with_no_job_is_set_error_with_its_pending_children(context):
    stuck = _lb(context, constants.PENDING_UPDATE)
    with context.db.write() as session:
        pool = Pool(load_balancer_id=stuck, protocol="HTTP", lb_algorithm="ROUND_ROBIN",
                    provisioning_status=constants.PENDING_UPDATE, operating_status="ONLINE")
        session.add(pool)
        session.flush()
        member = Member(pool_id=pool.id, ip_address="10.0.0.1", protocol_port=80,
                        provisioning_status=constants.PENDING_CREATE, operating_status="ONLINE")
        session.add(member)
    queued = _lb(context, constants.PENDING_UPDATE)
    with context.db.write() as session:
        jobs.enqueue(session, "change", lb_id=queued, targets={})
    recent = _lb(context, constants.PENDING_CREATE, changed=utcnow())
    report = reconciler.run(context)
    assert report.errored_load_balancers == [stuck]
    assert _status(context, LoadBalancer, stuck) == constants.ERROR
    assert _status(context, Member, member.id) == constants.ERROR
    assert _status(context, LoadBalancer, queued) == constants.PENDING_UPDATE
    assert _status(context, LoadBalancer, recent) == constants.PENDING_CREATE


@pytest.mark.parametrize("status", [constants.PENDING_CREATE, constants.BOOTING,
                                    constants.PENDING_DELETE])
def test_an_amphora_left_half_built_or_half_removed_by_a_dead_flow_is_removed(context, status):
    settled = _lb(context, constants.ACTIVE)
    busy = _lb(context, constants.PENDING_UPDATE)
    with context.db.write() as session:
        jobs.enqueue(session, "failover_load_balancer", lb_id=busy)
    abandoned = _amphora(context, status, settled)
    in_flow = _amphora(context, status, busy)
    fresh = _amphora(context, status, settled, changed=utcnow())
    assert reconciler.run(context).removed_rows == [abandoned]
    assert _status(context, Amphora, abandoned) == constants.DELETED
    assert _status(context, Amphora, in_flow) == status
    assert _status(context, Amphora, fresh) == status


def test_a_spare_is_removed_only_when_no_boot_job_names_it(context):
    booting = _amphora(context, constants.BOOTING, None)
    with context.db.write() as session:
        jobs.enqueue(session, "build_spare", amphora_id=booting)
    orphan = _amphora(context, constants.PENDING_CREATE, None)
    assert reconciler.run(context).removed_rows == [orphan]
    assert _status(context, Amphora, booting) == constants.BOOTING
    with context.db.read() as session:
        assert session.scalar(select(Job.action)) == "build_spare"


def test_serving_amphorae_are_not_judged_without_a_compute_driver_that_can_tell(context):
    """The no-op driver builds nothing: its amphorae are never taken for lost."""
    lb_id = _lb(context, constants.ACTIVE)
    amphora_id = _amphora(context, constants.ALLOCATED, lb_id)
    assert reconciler.run(context) == reconciler.Report()
    assert _status(context, Amphora, amphora_id) == constants.ALLOCATED
