"""The same code on PostgreSQL and MariaDB: schema, lifecycle, the lock, quotas, the job
board, and housekeepers and workers of several controllers side by side."""
from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from lbaas import config, constants
from lbaas.controller import jobs
from lbaas.controller.flow import FlowContext
from lbaas.controller.housekeeping import cert_rotation, cleanup, spare_pool
from lbaas.controller.wakeups import PostgresListener, RabbitBell
from lbaas.db import metrics
from lbaas.db.models import Amphora, Base, Job, utcnow
from lbaas.network import management, ports
from tests.helpers import in_threads, wait_for
from tests.helpers.api import create_lb, race_updates, wait_lb_active
from tests.helpers.network import RecordingBridges

# The module's PostgreSQL and MariaDB servers are started once: its tests run on one
# xdist worker.
pytestmark = pytest.mark.xdist_group("backends")


def test_migrations_create_exactly_the_models(services):
    with services.db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_load_balancer_lifecycle(client):
    lb = create_lb(client, name="on-a-real-database", tags=["a", "b"])
    assert client.put(f"/v2/lbaas/loadbalancers/{lb['id']}",
                      json={"loadbalancer": {"name": "renamed"}}).status_code == 200
    assert wait_lb_active(client, lb["id"])["name"] == "renamed"
    listed = client.get("/v2/lbaas/loadbalancers", params={"tags": "a,b", "limit": 1}).json()
    assert [item["id"] for item in listed["loadbalancers"]] == [lb["id"]]
    assert client.delete(f"/v2/lbaas/loadbalancers/{lb['id']}?cascade=true").status_code == 204
    wait_for(lambda: {"code": client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").status_code},
             "code", 404)


def test_concurrent_updates_never_both_win(api_only, services):
    race_updates(api_only, services)


def test_concurrent_workers_claim_every_job_exactly_once(services):
    # (The database is the module's: earlier tests may have left jobs no worker ran.)
    with services.db.write() as session:
        for index in range(40):
            jobs.enqueue(session, "change", lb_id=f"lb-{index}", targets={})
    with services.db.read() as session:
        queued = set(session.scalars(select(Job.id).where(Job.lease_owner.is_(None))))
    claims: list[int] = []
    start = threading.Barrier(8)

    def work(number: int) -> None:
        owner = f"worker-{number}"
        start.wait()
        while True:
            job = jobs.claim(services.db, owner, dt.timedelta(seconds=60))
            if job is not None:
                claims.append(job.id)
                continue
            with services.db.read() as session:  # None may mean "another took that one"
                if session.scalar(select(Job.id).where(Job.lease_owner.is_(None))) is None:
                    return
    in_threads(8, work)
    assert len(claims) == len(set(claims)) and set(claims) == queued


def test_two_housekeepers_fill_the_spare_pool_once(services, drivers):
    services.settings.house_keeping.spare_amphora_pool_size = 3
    context = FlowContext(db=services.db, drivers=drivers, settings=services.settings)
    start = threading.Barrier(2)

    def housekeeper(_: int) -> None:
        for _round in range(5):
            start.wait()
            spare_pool.check(context)
    in_threads(2, housekeeper)
    with services.db.read() as session:
        spares = list(session.scalars(select(Amphora.id).where(*spare_pool.IN_POOL)))
        boots = [job.payload["amphora_id"] for job in session.scalars(
            select(Job).where(Job.action == "build_spare"))]
    assert len(spares) == 3 and sorted(boots) == sorted(spares)


def test_services_of_one_host_starting_together_register_it_once(services, database_url):
    """systemd starts a host's services at once; each registers the management network
    and holds the host's address. None may fail because another just did it."""
    errors: list[Exception] = []
    start = threading.Barrier(4)
    settings = config.load(environ={
        "LBAAS__DEFAULT__state_path": str(services.settings.DEFAULT.state_path),
        "LBAAS__database__connection": database_url, "LBAAS__DEFAULT__host": "starting-together",
        "LBAAS__networking__controller_ip": "172.29.232.9"})

    def service_start(_: int) -> None:
        start.wait()
        try:
            management.ensure_management_network(services.db, settings, RecordingBridges())
        except Exception as exc:  # noqa: BLE001 - the test reports every failure
            errors.append(exc)
    in_threads(4, service_start)
    assert errors == []
    with services.db.read() as session:
        assert [port.ip_address for port in ports.ports_of(session, "starting-together")] \
            == ["172.29.232.9"]


def test_two_housekeepers_purge_and_rotate_each_row_once(services, drivers):
    context = FlowContext(db=services.db, drivers=drivers, settings=services.settings)
    old = utcnow() - dt.timedelta(days=30)
    with services.db.write() as session:
        for _ in range(10):
            session.add(Amphora(status=constants.DELETED, created_at=old, updated_at=old))
            session.add(Amphora(status=constants.ALLOCATED, cert_expiration=utcnow()))
    start = threading.Barrier(2)
    purged: list[int] = []
    claimed: list[list[str]] = []

    def housekeeper(_: int) -> None:
        start.wait()
        purged.append(cleanup.delete_old_amphorae(services.db, 3600))
        claimed.append(cert_rotation.claim_due(context))
    in_threads(2, housekeeper)
    assert sum(purged) == 10
    assert len(claimed[0]) + len(claimed[1]) == 10 and not set(claimed[0]) & set(claimed[1])


def test_a_job_queued_in_one_process_wakes_the_workers_of_another(services, request):
    """PostgreSQL: the job's transaction NOTIFYs the listening workers; MariaDB: through
    RabbitMQ ([DEFAULT] transport_url). Either way on commit, not before, and not after a
    poll interval."""
    woken = threading.Event()

    class Recording(jobs.Wakeup):  # the other process's workers
        def notify_local(self) -> None:
            woken.set()
    if PostgresListener.applies(services.db):
        listener: Any = PostgresListener(services.db, Recording())
        listener.start()
        queued_by = jobs.Wakeup()  # NOTIFY goes with the job's transaction
    else:
        url = request.getfixturevalue("rabbitmq_url")
        listener, bell = RabbitBell(url), RabbitBell(url)
        listener.listen(Recording())
        bell.start()
        queued_by = jobs.Wakeup(bell.ring)  # as the API rings after its commit
    try:
        assert woken.wait(10)  # listening: it first wakes the workers for what they missed
        woken.clear()
        with services.db.write() as session:
            jobs.enqueue(session, "change", lb_id="x", targets={})
            assert not woken.wait(0.5)
        queued_by.notify()
        assert woken.wait(5)
    finally:
        listener.stop()
        if not PostgresListener.applies(services.db):
            bell.stop()


def test_workers_counting_flows_at_once_lose_no_count(services):
    """The flows' metrics are written in one UPDATE; the first writers of a label set
    race to make its rows, the next ones to add to them, and every count is kept."""
    start = threading.Barrier(6)

    def work(number: int) -> None:
        start.wait()
        for _ in range(5):
            with services.db.write() as session:
                metrics.add_all(session, [
                    ("lbaas_flows_total", 1.0, {"action": "race", "outcome": "done"}),
                    *metrics.observation("lbaas_flow_duration_seconds", 0.3, action="race")])
    in_threads(6, work)
    with services.db.read() as session:
        values = {(name, labels.get("le")): value for name, labels, value in metrics.read(session)
                  if labels.get("action") == "race"}
    assert values[("lbaas_flows_total", None)] == 30
    assert values[("lbaas_flow_duration_seconds_count", None)] == 30
    assert values[("lbaas_flow_duration_seconds_sum", None)] == pytest.approx(9.0)
    assert values[("lbaas_flow_duration_seconds_bucket", "0.5")] == 30
    assert ("lbaas_flow_duration_seconds_bucket", "0.25") not in values
