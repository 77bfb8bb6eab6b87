"""Two controller hosts on one PostgreSQL or MariaDB: each runs ``lbaas api``, ``lbaas
worker``, ``lbaas health-manager`` and ``lbaas housekeeping`` as separate processes.

Both housekeepers keep one spare pool (never built twice), both health managers hear
every amphora (either alone keeps them alive) and fail a dead one over once, and when
one host's processes are all killed while load balancers are being created and failed
over, the other host finishes every job: each load balancer ACTIVE and serving, nothing
leaked, one amphora per VIP.
"""
from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from lbaas import constants, service
from lbaas.db.models import Amphora, AmphoraHealth, Job, utcnow
from tests.dataplane.controllers import (
    CONVERGE,
    LBS,
    Controllers,
    active,
    amphorae_of,
    assert_converged,
    create,
    module_services,
    reserve_second_host,
    serves,
    shared_topology,
)
from tests.db import servers
from tests.helpers import PROJECT, wait_for
from tests.helpers.dataplane import Topology, crash, dataplane_environ
from tests.helpers.service import free_port

# Heartbeats every 0.5 s, stale after 3 s: timed on a machine that runs nothing else.
pytestmark = [pytest.mark.root, pytest.mark.alone]

SERVICES = ("api", "worker", "health-manager", "housekeeping")
SPARES = 2
HEARTBEAT_TIMEOUT = 3.0


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix=f"lbaas-{request.param}-") as workdir:
        with getattr(servers, request.param)(Path(workdir)) as url:
            yield url


@pytest.fixture(scope="module")
def environ(database_url: str, tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> dict[str, str]:
    """PostgreSQL wakes workers of the other host with NOTIFY; MariaDB with RabbitMQ
    (``[DEFAULT] transport_url``). Workers poll only every 2 s, so a job waiting for a
    poll would show in the time the test takes."""
    environ = reserve_second_host(dataplane_environ(tmp_path_factory.mktemp("controllers")))
    if database_url.startswith("mysql"):
        environ["LBAAS__DEFAULT__transport_url"] = request.getfixturevalue("rabbitmq_url")
    network = environ["LBAAS__networking__lb_network_cidr"].rsplit(".", 1)[0]
    return {**environ, "LBAAS__database__connection": database_url,
            "LBAAS__controller_worker__job_poll_interval": "2",
            # Amphorae send every heartbeat to both health managers (one per host).
            "LBAAS__health_manager__controller_ip_port_list":
                f"{network}.1:15556, {network}.2:15556",
            "LBAAS__health_manager__heartbeat_interval": "0.5",
            "LBAAS__health_manager__heartbeat_timeout": str(HEARTBEAT_TIMEOUT),
            "LBAAS__health_manager__health_check_interval": "0.5",
            "LBAAS__house_keeping__spare_amphora_pool_size": str(SPARES),
            "LBAAS__house_keeping__spare_check_interval": "1"}


@pytest.fixture(scope="module")
def db_services(environ: dict[str, str]) -> Iterator[service.Services]:
    with module_services(environ) as services:  # the schema, migrated
        yield services


@pytest.fixture(scope="module")
def topology(db_services: service.Services,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    with shared_topology(db_services, tmp_path_factory.mktemp("backends")) as made:
        yield made


class Host:
    """One controller host: its four services and a client of its API."""

    def __init__(self, controllers: Controllers, port: int, name: str | None) -> None:
        self.controllers, self.port, self.name = controllers, port, name
        self.processes: dict[str, Any] = {}
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{port}",
                                headers={"X-Project-Id": PROJECT}, timeout=30)

    def start(self, *services: str) -> None:
        for command in services or SERVICES:
            options = {"LBAAS__api_settings__bind_port": str(self.port)} \
                if command == "api" else {}
            self.processes[command] = self.controllers.start(command, host=self.name, **options)
        if "api" in (services or SERVICES):
            wait_for(lambda: {"up": self._answers()}, "up", True, timeout=CONVERGE)

    def _answers(self) -> bool:
        try:
            return self.api.get("/").status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self, *services: str) -> None:
        self.controllers.kill([self.processes.pop(name) for name in services or SERVICES])


@pytest.fixture
def hosts(environ: dict[str, str], db_services: service.Services,
          tmp_path: Path) -> Iterator[tuple[Host, Host]]:
    controllers = Controllers(environ, tmp_path)
    # APIs on free ports: another test run on this machine may have its controllers up too.
    first, second = Host(controllers, free_port(), None), Host(controllers, free_port(), "ctl-b")
    try:
        first.start()
        second.start()
        yield first, second
    finally:
        try:
            survivor = second if "worker" in second.processes else first
            for lb in survivor.api.get(LBS).json()["loadbalancers"]:
                survivor.api.delete(f"{LBS}/{lb['id']}?cascade=true")
                wait_for(lambda lb=lb: {"code": survivor.api.get(f"{LBS}/{lb['id']}").status_code},
                         "code", 404, timeout=CONVERGE)
        finally:
            controllers.stop()


def spare_rows(services: service.Services) -> dict[str, int]:
    with services.db.read() as session:
        return dict(session.execute(select(Amphora.status, func.count()).where(
            Amphora.load_balancer_id.is_(None)).group_by(Amphora.status)).all())


def queued_jobs(services: service.Services) -> int:
    with services.db.read() as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def fresh_heartbeats(services: service.Services, amphora_ids: list[str]) -> bool:
    cutoff = utcnow() - dt.timedelta(seconds=HEARTBEAT_TIMEOUT / 2)
    with services.db.read() as session:
        heard = set(session.scalars(select(AmphoraHealth.amphora_id).where(
            AmphoraHealth.last_update > cutoff)))
    return set(amphora_ids) <= heard


def test_two_controller_hosts_share_the_work_and_survive_one_hosts_death(
        hosts, db_services, topology):
    first, second = hosts
    # Both housekeepers run the spare pool: it is filled once, not twice.
    wait_for(lambda: spare_rows(db_services), constants.READY, SPARES, timeout=CONVERGE)
    assert spare_rows(db_services) == {constants.READY: SPARES}

    one = active(first.api, create(first.api, topology)["id"])
    two = active(second.api, create(second.api, topology)["id"])
    assert serves(topology, one) and serves(topology, two)
    amphorae = [a.id for lb in (one, two) for a in amphorae_of(db_services, lb["id"])]

    # Each health manager alone hears every amphora: with the other one dead for longer
    # than heartbeat_timeout, no amphora goes stale and nothing is failed over.
    for _alone, dead in ((second, first), (first, second)):
        dead.kill("health-manager")
        wait_for(lambda: {"fresh": fresh_heartbeats(db_services, amphorae)}, "fresh", True)
        time.sleep(HEARTBEAT_TIMEOUT + 1)  # the survivor's failover checks run meanwhile
        assert fresh_heartbeats(db_services, amphorae)
        dead.start("health-manager")
    assert sorted(a.id for lb in (one, two) for a in amphorae_of(db_services, lb["id"])) \
        == sorted(amphorae)

    # A dead amphora is failed over exactly once, though both health managers see it.
    (dying,) = amphorae_of(db_services, one["id"])
    crash(dying)
    wait_for(lambda: {"replaced": [a.id for a in amphorae_of(db_services, one["id"])]
                                   != [dying.id]}, "replaced", True, timeout=CONVERGE)
    one = active(first.api, one["id"])
    with db_services.db.read() as session:
        rows = session.execute(select(Amphora.id, Amphora.status).where(
            Amphora.load_balancer_id == one["id"])).all()
    assert sorted(status for _, status in rows) == [constants.ALLOCATED, constants.DELETED]

    # The first host dies while jobs of both hosts are in flight: creates and a failover.
    three = create(first.api, topology)
    four = create(second.api, topology)
    assert first.api.put(f"{LBS}/{two['id']}/failover").status_code == 202
    first.kill()
    for lb in (one, two, three, four):
        assert serves(topology, active(second.api, lb["id"]))
    # The spares that replace those taken may still be booting (queued by either host's
    # housekeeping): converged means once every job, theirs too, is done.
    wait_for(lambda: spare_rows(db_services), constants.READY, SPARES, timeout=CONVERGE)
    wait_for(lambda: {"jobs": queued_jobs(db_services)}, "jobs", 0, timeout=CONVERGE)
    assert spare_rows(db_services) == {constants.READY: SPARES}
    assert_converged(db_services, topology)


