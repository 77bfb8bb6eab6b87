"""The reconciler on real amphorae: what runs on the host is made to match the database."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from lbaas import constants
from lbaas.controller import reconciler
from lbaas.controller.flow import FlowContext
from lbaas.db.models import Amphora, LoadBalancer, Port, utcnow
from lbaas.drivers.compute.netns import namespace_of, namespaces
from tests.dataplane.controllers import arp_answers, serves
from tests.helpers.api import wait_lb_active
from tests.helpers.dataplane import build, crash

pytestmark = pytest.mark.root

LONG_AGO = utcnow() - reconciler.MARGIN - dt.timedelta(seconds=60)


def _run(services, drivers) -> reconciler.Report:
    return reconciler.run(FlowContext(db=services.db, drivers=drivers, settings=services.settings))


def _amphorae(services, lb_id: str) -> list[Amphora]:
    with services.db.read() as session:
        return list(session.scalars(select(Amphora).where(Amphora.load_balancer_id == lb_id)))


def test_an_old_amphora_still_answering_for_a_deleted_vip_is_removed(
        dataplane, topology, services, drivers):
    """The state an interrupted failover used to leave: the load balancer deleted, its old
    amphora PENDING_DELETE and still answering ARP for the VIP, its ports held."""
    made = build(dataplane, topology)
    (amphora,) = _amphorae(services, made["lb"]["id"])
    with services.db.write() as session:
        session.execute(update(Amphora).where(Amphora.id == amphora.id).values(
            status=constants.PENDING_DELETE, updated_at=LONG_AGO))
        session.execute(update(LoadBalancer).where(LoadBalancer.id == made["lb"]["id"]).values(
            provisioning_status=constants.DELETED, updated_at=LONG_AGO))
        session.execute(update(Port).where(Port.device_id.in_([amphora.id, made["lb"]["id"]]))
                        .values(created_at=LONG_AGO))
    assert arp_answers(topology, made["lb"]["vip_address"])
    report = _run(services, drivers)
    assert report.removed_rows == [amphora.id]
    assert namespace_of(amphora.id) not in namespaces()
    assert arp_answers(topology, made["lb"]["vip_address"]) == set()
    with services.db.read() as session:
        assert session.scalars(select(Port.id).where(
            Port.device_id.in_([amphora.id, made["lb"]["id"]]))).all() == []


def test_an_amphora_whose_namespace_vanished_is_failed_over(dataplane, topology, services,
                                                            drivers):
    made = build(dataplane, topology)
    (amphora,) = _amphorae(services, made["lb"]["id"])
    crash(amphora)
    with services.db.write() as session:
        session.execute(update(Amphora).where(Amphora.id == amphora.id)
                        .values(updated_at=LONG_AGO))
    assert _run(services, drivers).failed_over == [amphora.id]
    lb = wait_lb_active(dataplane, made["lb"]["id"])
    assert serves(topology, lb)
    assert {a.status for a in _amphorae(services, lb["id"])} == {constants.DELETED,
                                                                constants.ALLOCATED}


def test_an_amphora_with_no_row_at_all_is_removed(dataplane, topology, services, drivers):
    made = build(dataplane, topology)
    (amphora,) = _amphorae(services, made["lb"]["id"])
    with services.db.write() as session:  # as if its row had been purged
        session.execute(update(LoadBalancer).where(LoadBalancer.id == made["lb"]["id"])
                        .values(provisioning_status=constants.DELETED))
        session.delete(session.get(Amphora, amphora.id))
    assert _run(services, drivers).removed_instances == [amphora.id]
    assert namespace_of(amphora.id) not in namespaces()
    assert not (services.settings.haproxy_amphora.base_path / amphora.id).exists()
