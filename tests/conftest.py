"""Fixtures shared by every test: a service on a private SQLite database."""
from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lbaas import config, service
from lbaas.api.app import create_app
from lbaas.drivers import Drivers
from lbaas.drivers import load as load_drivers
from tests.helpers import NOOP_DRIVERS, PROJECT
from tests.helpers.dataplane import AMPHORAE_ROOT
from tests.helpers.openapi import checked
from tests.helpers.parallel import machine_share
from tests.helpers.service import Service, free_port, running, write_config


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The data-plane tests' shared amphorae directory goes with the run (each test
    removed its own part): in the one process, or in the controller of a parallel run,
    which finishes after its workers. Another run's amphorae keep it."""
    if not hasattr(session.config, "workerinput"):
        with contextlib.suppress(OSError):
            AMPHORAE_ROOT.rmdir()


@pytest.fixture
def settings(tmp_path: Path) -> config.Settings:
    """Built-in defaults with the no-op drivers and state (the SQLite database) in a
    private directory; data-plane tests override this with the real drivers."""
    return config.load(environ={"LBAAS__DEFAULT__state_path": str(tmp_path), **NOOP_DRIVERS})


@pytest.fixture
def drivers(services: service.Services) -> Drivers:
    """The configured (no-op) drivers; a test may replace a method to make a step fail."""
    return load_drivers(services.settings, services.db)


@pytest.fixture
def services(settings: config.Settings) -> Iterator[service.Services]:
    services = service.open_services(settings)
    yield services
    services.db.dispose()


@pytest.fixture
def client(services: service.Services, drivers: Drivers) -> Iterator[TestClient]:
    """An API client with a worker running the flows, as ``lbaas up`` runs them."""
    worker = services.worker(drivers)
    worker.start()
    try:
        with checked(TestClient(create_app(services.api_state),
                                headers={"X-Project-Id": PROJECT})) as test_client:
            yield test_client
    finally:
        worker.stop()


@pytest.fixture
def api_only(services: service.Services) -> Iterator[TestClient]:
    """An API client with no worker: objects stay in their PENDING_* states."""
    with checked(TestClient(create_app(services.api_state),
                            headers={"X-Project-Id": PROJECT})) as c:
        yield c


@pytest.fixture(scope="module")
def rabbitmq_url() -> Iterator[str]:
    """A private RabbitMQ, for the workers' wake-ups on MariaDB ([DEFAULT] transport_url)."""
    from tests.db import servers
    with tempfile.TemporaryDirectory(prefix="lbaas-rabbitmq-") as workdir:
        with servers.rabbitmq(Path(workdir)) as url:
            yield url


@pytest.fixture(autouse=True)
def _parallel_share(request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Under pytest-xdist, a test marked ``alone`` runs while no other test does
    (tests/helpers/parallel.py); a run on one process needs no lock. The workers' base
    temporary directories share a parent, private to the run."""
    if not hasattr(request.config, "workerinput"):
        yield
        return
    if (request.config.option.loadgroup and request.node.get_closest_marker("xdist_group")
            and "@" not in request.node.nodeid):
        # pytest-xdist marks a grouped test by a suffix of its node id, which some pytest
        # releases drop: the tests of a group share a module's fixture (a cluster of
        # hosts, a Keystone), and spread over the workers each would start its own.
        pytest.fail("--dist loadgroup did not group this test: this pytest and pytest-xdist "
                    "do not work together; install the versions pyproject.toml pins "
                    "(make test does)", pytrace=False)
    alone = request.node.get_closest_marker("alone") is not None
    with machine_share(tmp_path_factory.getbasetemp().parent, alone):
        yield


@pytest.fixture(scope="module")
def lbaas_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """``lbaas up`` in a subprocess on a free loopback port with a private state
    directory, for tests that drive it with real clients."""
    workdir = tmp_path_factory.mktemp("lbaas-up")
    port = free_port()
    config = write_config(workdir, port)
    with running(Service(url=f"http://127.0.0.1:{port}", workdir=workdir, config=config)) as service:
        yield service
