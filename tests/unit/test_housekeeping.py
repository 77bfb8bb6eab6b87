"""Housekeeping with the no-op drivers: spare pool, database cleanup, certificate rotation;
and the agent's certificate route over loopback TLS."""
from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from lbaas import config, constants, service
from lbaas.amphora.agent.config import AgentConfig
from lbaas.amphora.agent.server import AgentServer, server_context
from lbaas.certs import pki, store, tls
from lbaas.cli import app
from lbaas.controller.flow import FlowContext
from lbaas.controller.housekeeping import cert_rotation, cleanup
from lbaas.controller.tasks import amphora as amphora_tasks
from lbaas.controller.tasks import image
from lbaas.db.models import (
    Amphora,
    AmphoraHealth,
    Job,
    Listener,
    ListenerStatistics,
    LoadBalancer,
    Member,
    Pool,
    Tag,
    utcnow,
)
from lbaas.drivers import Drivers
from lbaas.drivers.amphora.rest import AgentError, RestAmphoraDriver
from lbaas.drivers.certificates.base import SERVER_PEM, AmphoraIdentity
from tests.helpers import NOOP_DRIVERS, PROJECT
from tests.helpers.api import create_lb
from tests.helpers.housekeeping import fill_spare_pool, spare_amphorae

DAY = dt.timedelta(days=1)


@pytest.fixture
def context(services: service.Services, drivers: Drivers) -> FlowContext:
    return FlowContext(db=services.db, drivers=drivers, settings=services.settings)


def _amphorae_of(context: FlowContext, lb_id: str) -> list[Amphora]:
    with context.db.read() as session:
        return list(session.scalars(select(Amphora).where(Amphora.load_balancer_id == lb_id)))


def _add_lb(context: FlowContext, **fields: object) -> str:
    with context.db.write() as session:
        lb = LoadBalancer(provisioning_status=constants.ACTIVE, operating_status=constants.ONLINE,
                          project_id=PROJECT, **fields)
        session.add(lb)
    return lb.id


# --- spare pool ----------------------------------------------------------------------------

def test_spare_pool_fills_to_its_size_and_trims_after_a_resize(context):
    context.settings.house_keeping.spare_amphora_pool_size = 3
    fill_spare_pool(context)
    spares = spare_amphorae(context)
    assert len(spares) == 3
    assert all(s.compute_id and s.lb_network_ip and s.role is None for s in spares)
    fill_spare_pool(context)  # full: nothing more
    assert len(spare_amphorae(context)) == 3

    context.settings.house_keeping.spare_amphora_pool_size = 1
    fill_spare_pool(context)
    kept = spare_amphorae(context)
    assert [s.id for s in kept] == [min(spares, key=lambda s: (s.created_at, s.id)).id]
    with context.db.read() as session:
        statuses = sorted(a.status for a in session.scalars(select(Amphora)))
    assert statuses == [constants.DELETED, constants.DELETED, constants.READY]


def _heard(context: FlowContext, amphora_id: str, seconds_ago: float) -> None:
    with context.db.write() as session:
        session.merge(AmphoraHealth(amphora_id=amphora_id, busy=False, sequence=1,
                                    last_update=utcnow() - dt.timedelta(seconds=seconds_ago)))


def test_a_spare_that_stopped_sending_heartbeats_is_replaced(context):
    context.settings.health_manager.heartbeat_timeout = 3
    context.settings.house_keeping.spare_amphora_pool_size = 2
    fill_spare_pool(context)
    silent, alive = sorted(s.id for s in spare_amphorae(context))
    _heard(context, silent, 7)  # over twice heartbeat_timeout
    _heard(context, alive, 5)  # over heartbeat_timeout only: may just be late
    fill_spare_pool(context)
    spares = {s.id for s in spare_amphorae(context)}
    assert alive in spares and silent not in spares and len(spares) == 2
    with context.db.read() as session:
        assert session.get(Amphora, silent).status == constants.DELETED


def test_spares_are_kept_when_the_health_manager_hears_nobody(context):
    context.settings.health_manager.heartbeat_timeout = 3
    context.settings.house_keeping.spare_amphora_pool_size = 2
    fill_spare_pool(context)
    before = {s.id for s in spare_amphorae(context)}
    for amphora_id in before:
        _heard(context, amphora_id, 7)  # the health manager stopped, not the spares
    fill_spare_pool(context)
    assert {s.id for s in spare_amphorae(context)} == before


def test_a_spare_that_fails_to_boot_leaves_nothing(context, drivers):
    context.settings.house_keeping.spare_amphora_pool_size = 2

    def broken(amphora: Amphora) -> None:
        raise RuntimeError("agent never answered")
    drivers.amphora.wait_ready = broken
    fill_spare_pool(context)
    with context.db.read() as session:
        assert list(session.scalars(select(Amphora))) == []


def test_single_create_takes_a_spare_and_the_pool_refills(client, context):
    context.settings.house_keeping.spare_amphora_pool_size = 2
    fill_spare_pool(context)
    spare_ids = {s.id for s in spare_amphorae(context)}

    lb = create_lb(client)
    (amphora,) = _amphorae_of(context, lb["id"])
    assert amphora.id in spare_ids
    assert (amphora.status, amphora.role) == (constants.ALLOCATED, constants.ROLE_STANDALONE)
    assert len(spare_amphorae(context)) == 1

    fill_spare_pool(context)
    assert len(spare_amphorae(context)) == 2


def test_without_spares_a_create_boots_an_amphora(client, context):
    lb = create_lb(client)
    (amphora,) = _amphorae_of(context, lb["id"])
    assert amphora.status == constants.ALLOCATED and amphora.compute_id


def test_concurrent_claims_never_take_the_same_spare(context):
    context.settings.house_keeping.spare_amphora_pool_size = 2
    fill_spare_pool(context)
    lb_ids = [_add_lb(context) for _ in range(8)]
    taken: list[str | None] = [None] * len(lb_ids)
    start = threading.Barrier(len(lb_ids))

    def claim(index: int) -> None:
        start.wait()
        taken[index] = amphora_tasks.claim_spare(context, lb_ids[index],
                                                 constants.ROLE_STANDALONE, None, set(),
                                                 image.Build(None, "amphora"))
    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(lb_ids))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [amphora_id for amphora_id in taken if amphora_id]
    assert len(claimed) == 2 and len(set(claimed)) == 2
    for index, amphora_id in enumerate(taken):
        if amphora_id:
            assert [a.id for a in _amphorae_of(context, lb_ids[index])] == [amphora_id]


def test_spares_are_spread_over_the_compute_hosts(context):
    context.settings.compute.hosts = ["host-a", "host-b"]
    context.settings.house_keeping.spare_amphora_pool_size = 3
    fill_spare_pool(context)
    assert sorted(s.cached_zone for s in spare_amphorae(context)) == ["host-a", "host-a", "host-b"]
    context.settings.house_keeping.spare_amphora_pool_size = 4
    fill_spare_pool(context)
    assert sorted(s.cached_zone for s in spare_amphorae(context)) == ["host-a", "host-a",
                                                               "host-b", "host-b"]


def test_active_standby_takes_spares_on_two_different_hosts(context):
    context.settings.compute.hosts = ["host-a", "host-b"]
    context.settings.house_keeping.spare_amphora_pool_size = 3
    fill_spare_pool(context)
    with context.db.write() as session:
        for spare, host in zip(session.scalars(select(Amphora).order_by(Amphora.created_at,
                                                                       Amphora.id)),
                               ("host-a", "host-a", "host-b"), strict=True):
            spare.cached_zone = host
    lb_id = _add_lb(context, topology=constants.TOPOLOGY_ACTIVE_STANDBY)
    amphora_tasks.build_missing(lb_id).execute(context)
    pair = _amphorae_of(context, lb_id)
    assert sorted((a.role, a.cached_zone) for a in pair) == [
        (constants.ROLE_BACKUP, "host-b"), (constants.ROLE_MASTER, "host-a")]
    assert [s.cached_zone for s in spare_amphorae(context)] == ["host-a"]


# --- database cleanup ----------------------------------------------------------------------

def _age(context: FlowContext, model: type, row_id: str, seconds: int) -> None:
    with context.db.write() as session:
        session.execute(model.__table__.update().where(model.id == row_id)
                        .values(updated_at=utcnow() - dt.timedelta(seconds=seconds)))


def _deleted_lb_with_children(context: FlowContext, age: int) -> tuple[str, str]:
    with context.db.write() as session:
        lb = LoadBalancer(provisioning_status=constants.DELETED, operating_status="OFFLINE",
                          project_id=PROJECT, tags=["old"])
        session.add(lb)
        session.flush()
        pool = Pool(load_balancer_id=lb.id, protocol="HTTP", lb_algorithm="ROUND_ROBIN",
                    provisioning_status=constants.ACTIVE, operating_status="ONLINE")
        session.add(pool)
        session.flush()
        listener = Listener(load_balancer_id=lb.id, protocol="HTTP", protocol_port=80,
                            default_pool_id=pool.id, provisioning_status=constants.ACTIVE,
                            operating_status="ONLINE")
        session.add_all([listener, Member(pool_id=pool.id, ip_address="10.0.0.1",
                                          protocol_port=80, provisioning_status="ACTIVE",
                                          operating_status="ONLINE")])
        session.flush()
        session.add(ListenerStatistics(listener_id=listener.id, amphora_id="a" * 36))
        amphora = Amphora(status=constants.DELETED, load_balancer_id=lb.id)
        session.add(amphora)
    _age(context, LoadBalancer, lb.id, age)
    return lb.id, amphora.id


def test_cleanup_purges_old_deleted_load_balancers_with_their_rows_and_keeps_young_ones(context):
    old, old_amphora = _deleted_lb_with_children(context, age=200)
    young, _ = _deleted_lb_with_children(context, age=50)
    active = _add_lb(context)
    _age(context, LoadBalancer, active, 200)

    assert cleanup.cleanup_load_balancers(context.db, expiry_age=100) == 1
    with context.db.read() as session:
        assert {lb.id for lb in session.scalars(select(LoadBalancer))} == {young, active}
        assert session.scalars(select(Listener).where(Listener.load_balancer_id == old)).all() == []
        assert session.scalars(select(Pool).where(Pool.load_balancer_id == old)).all() == []
        assert len(session.scalars(select(Member)).all()) == 1  # the young LB's
        assert len(session.scalars(select(ListenerStatistics)).all()) == 1
        assert session.scalars(select(Tag).where(Tag.resource_id == old)).all() == []
        # The amphora row stays until its own expiry, without the reference.
        assert session.get(Amphora, old_amphora).load_balancer_id is None


def test_cleanup_purges_old_deleted_amphorae_unless_they_still_send_heartbeats(context):
    def amphora(status: str, age: int, heartbeat_age: int | None = None) -> str:
        with context.db.write() as session:
            row = Amphora(status=status)
            session.add(row)
            session.flush()
            if heartbeat_age is not None:
                session.add(AmphoraHealth(amphora_id=row.id, last_update=utcnow()
                                          - dt.timedelta(seconds=heartbeat_age)))
        _age(context, Amphora, row.id, age)
        return row.id

    purged = amphora(constants.DELETED, 200)
    purged_with_health = amphora(constants.DELETED, 200, heartbeat_age=300)
    zombie = amphora(constants.DELETED, 200, heartbeat_age=10)
    young = amphora(constants.DELETED, 50)
    alive = amphora(constants.ALLOCATED, 200)

    assert cleanup.delete_old_amphorae(context.db, expiry_age=100) == 2
    with context.db.read() as session:
        assert {a.id for a in session.scalars(select(Amphora))} == {zombie, young, alive}
        assert [h.amphora_id for h in session.scalars(select(AmphoraHealth))] == [zombie]
    assert purged and purged_with_health


# --- certificate rotation ------------------------------------------------------------------

class Recorder:
    """Stands for the certificates and amphora drivers: issues and records pushes."""

    def __init__(self, expires_in: dt.timedelta) -> None:
        self.expires_in = expires_in
        self.pushed: list[tuple[str, bytes]] = []
        self.fail_for: set[str] = set()

    def amphora_identity(self, amphora_id: str) -> AmphoraIdentity:
        return AmphoraIdentity(files={SERVER_PEM: f"pem of {amphora_id}".encode()},
                               expires_at=dt.datetime.now(dt.timezone.utc) + self.expires_in)

    def upload_cert_amp(self, amphora: Amphora, pem: bytes) -> None:
        if amphora.id in self.fail_for:
            raise AgentError("unreachable")
        self.pushed.append((amphora.id, pem))


@pytest.fixture
def recorder(drivers: Drivers) -> Recorder:
    recorder = Recorder(expires_in=30 * DAY)
    drivers.certificates.amphora_identity = recorder.amphora_identity
    drivers.amphora.upload_cert_amp = recorder.upload_cert_amp
    return recorder


def _amphora_expiring(context: FlowContext, in_: dt.timedelta, status: str = constants.ALLOCATED,
                      busy: bool = False) -> str:
    with context.db.write() as session:
        row = Amphora(status=status, cert_expiration=utcnow() + in_, cert_busy=busy)
        session.add(row)
    return row.id


def test_rotation_renews_certificates_within_the_buffer_only(context, recorder):
    context.settings.house_keeping.cert_expiry_buffer = int((14 * DAY).total_seconds())
    due = _amphora_expiring(context, DAY)
    spare = _amphora_expiring(context, DAY, status=constants.READY)
    expired = _amphora_expiring(context, -DAY)
    later = _amphora_expiring(context, 20 * DAY)
    deleted = _amphora_expiring(context, DAY, status=constants.DELETED)
    busy = _amphora_expiring(context, DAY, busy=True)

    assert cert_rotation.run(context, _executor()) == 3
    assert sorted(amphora_id for amphora_id, _ in recorder.pushed) == sorted([due, spare, expired])
    assert (due, f"pem of {due}".encode()) in recorder.pushed
    with context.db.read() as session:
        rows = {a.id: a for a in session.scalars(select(Amphora))}
    for amphora_id in (due, spare, expired):
        assert rows[amphora_id].cert_expiration > utcnow() + 29 * DAY
        assert not rows[amphora_id].cert_busy
    for amphora_id in (later, deleted, busy):
        assert rows[amphora_id].cert_expiration < utcnow() + 21 * DAY
    assert rows[busy].cert_busy


def test_a_failed_rotation_frees_the_amphora_for_the_next_pass(context, recorder):
    amphora_id = _amphora_expiring(context, DAY)
    recorder.fail_for.add(amphora_id)
    assert cert_rotation.run(context, _executor()) == 0
    with context.db.read() as session:
        row = session.get(Amphora, amphora_id)
        assert not row.cert_busy and row.cert_expiration < utcnow() + 2 * DAY
    recorder.fail_for.clear()
    assert cert_rotation.run(context, _executor()) == 1


def test_a_busy_flag_left_by_a_dead_housekeeper_is_taken_over(context, recorder):
    amphora_id = _amphora_expiring(context, DAY, busy=True)
    _age(context, Amphora, amphora_id, int(cert_rotation.BUSY_LEASE.total_seconds()) + 60)
    assert cert_rotation.run(context, _executor()) == 1


def test_an_amphora_whose_certificate_expired_unrotated_is_failed_over(context, recorder):
    lb_id = _add_lb(context)
    amphora_id = _amphora_expiring(context, -DAY)
    rotatable = _amphora_expiring(context, -DAY)
    with context.db.write() as session:
        session.get(Amphora, amphora_id).load_balancer_id = lb_id
    recorder.fail_for.add(amphora_id)  # the agent refuses us now: rotation cannot help
    assert cert_rotation.run(context, _executor()) == 1
    with context.db.read() as session:
        assert session.get(LoadBalancer, lb_id).provisioning_status == constants.PENDING_UPDATE
        queued = [job.payload for job in session.scalars(select(Job))]
    assert queued == [{"lb_id": lb_id, "amphora_id": amphora_id}]
    assert rotatable in {pushed for pushed, _ in recorder.pushed}
    assert cert_rotation.run(context, _executor()) == 0  # the load balancer is busy: no 2nd job
    with context.db.read() as session:
        assert len(list(session.scalars(select(Job)))) == 1


def test_a_spare_whose_certificate_expired_is_replaced(context):
    context.settings.house_keeping.spare_amphora_pool_size = 2
    fill_spare_pool(context)
    stale, fresh = sorted(s.id for s in spare_amphorae(context))
    with context.db.write() as session:
        session.get(Amphora, stale).cert_expiration = utcnow() - DAY
    fill_spare_pool(context)
    spares = {s.id for s in spare_amphorae(context)}
    assert fresh in spares and stale not in spares and len(spares) == 2


def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(2)


@pytest.mark.parametrize(("options", "message"), [
    ({"LBAAS__house_keeping__cert_expiry_buffer": "2592000"}, "cert_expiry_buffer"),
    ({"LBAAS__house_keeping__cert_interval": "600000"}, "cert_interval"),
])
def test_settings_that_could_let_a_certificate_expire_are_refused(tmp_path, options, message):
    settings = config.load(environ={"LBAAS__DEFAULT__state_path": str(tmp_path),
                                    **NOOP_DRIVERS, **options})
    with pytest.raises(config.ConfigError, match=message):
        service.check(settings)


# --- the agent's certificate route ---------------------------------------------------------

AMPHORA_ID = "5b6d4c3e-0f1a-4e2b-9c8d-7a6b5c4d3e2f"


def test_agent_serves_a_rotated_certificate_to_new_connections(tmp_path: Path):
    settings = config.load(environ={"LBAAS__DEFAULT__state_path": str(tmp_path)})
    paths = store.ensure(settings)
    ca = store.load_server_ca(settings)
    first = pki.issue_amphora_certificate(ca, AMPHORA_ID, 3600)
    (tmp_path / "server.pem").write_bytes(first.pem)
    agent_config = AgentConfig(amphora_id=AMPHORA_ID, base_path=tmp_path / "amphora",
                               bind_host="127.0.0.1", bind_port=0,
                               agent_server_cert=tmp_path / "server.pem",
                               agent_server_ca=paths.client_ca)
    server = AgentServer(agent_config, server_context(agent_config))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        haproxy = settings.haproxy_amphora.model_copy(update={"bind_port": port})
        driver = RestAmphoraDriver(haproxy, paths.client_cert, paths.server_ca)
        amphora = Amphora(id=AMPHORA_ID, lb_network_ip="127.0.0.1")

        def served_expiry() -> dt.datetime:
            context = tls.controller_context(paths.client_cert, paths.server_ca, AMPHORA_ID)
            with context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10)
                                     ) as stream:
                return ssl.cert_time_to_seconds(stream.getpeercert()["notAfter"])

        assert served_expiry() == int(first.expires_at.timestamp())
        with pytest.raises(AgentError, match="400"):
            driver.upload_cert_amp(amphora, b"not a certificate")
        with pytest.raises(AgentError, match="400"):  # a key that is not the certificate's
            other = pki.issue_amphora_certificate(ca, AMPHORA_ID, 3600)
            driver.upload_cert_amp(amphora, first.certificate + other.private_key)
        assert (tmp_path / "server.pem").read_bytes() == first.pem

        second = pki.issue_amphora_certificate(ca, AMPHORA_ID, 7200)
        driver.upload_cert_amp(amphora, second.pem)
        assert (tmp_path / "server.pem").read_bytes() == second.pem
        assert (tmp_path / "server.pem").stat().st_mode & 0o777 == 0o600
        assert served_expiry() == int(second.expires_at.timestamp())
        driver.forget(AMPHORA_ID)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_lbaas_housekeeping_refuses_such_settings_naming_the_option(tmp_path):
    result = CliRunner().invoke(app, ["housekeeping"], env={
        "LBAAS__DEFAULT__state_path": str(tmp_path), **NOOP_DRIVERS,
        "LBAAS__house_keeping__cert_interval": "600000"})
    assert result.exit_code == 2
    assert "[house_keeping] cert_interval" in " ".join(result.output.split())
