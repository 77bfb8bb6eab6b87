"""Assembles the services from the configuration and runs them."""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lbaas import cert_manager
from lbaas import drivers as driver_registry
from lbaas import host
from lbaas.amphora import keepalived_config
from lbaas.config import ConfigError, Settings
from lbaas.controller import housekeeping
from lbaas.controller.jobs import Wakeup
from lbaas.controller.wakeups import PostgresListener, RabbitBell, kombu_url
from lbaas.controller.worker import Worker
from lbaas.db import migrate
from lbaas.db.engine import Database
from lbaas.health import settings as heartbeats
from lbaas.health.hosts import HostMonitor
from lbaas.health.manager import HealthManager

if TYPE_CHECKING:
    from lbaas.api.common import ApiState

LOG = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    wakeup: Wakeup
    bell: RabbitBell | None = None

    @property
    def api_state(self) -> ApiState:
        from lbaas.api.common import ApiState
        return ApiState(settings=self.settings, db=self.db, wakeup=self.wakeup)

    def worker(self, drivers: driver_registry.Drivers | None = None) -> Worker:
        return Worker(self.settings, self.db,
                      drivers or driver_registry.load(self.settings, self.db), self.wakeup)


def check(settings: Settings) -> None:
    """Refuse to start on a configuration we cannot honour, saying what to change."""
    if settings.api_settings.auth_strategy == "keystone":
        # Imported here: keystonemiddleware alone takes a third of a second to import, and a
        # worker, health manager or housekeeping process never needs it.
        from lbaas.api import keystone, policy
        keystone.check_options(settings.keystone_authtoken)
        policy.check_file(settings)
    housekeeping.check(settings)
    heartbeats.check(settings)
    cert_manager.check(settings)
    topology = settings.controller_worker.loadbalancer_topology
    if topology not in ("SINGLE", "ACTIVE_STANDBY"):
        raise ConfigError("[controller_worker] loadbalancer_topology must be SINGLE or ACTIVE_STANDBY")
    try:
        keepalived_config.check_settings(settings.keepalived_vrrp)
    except keepalived_config.InvalidVrrpConfiguration as exc:
        raise ConfigError(str(exc)) from exc
    if settings.DEFAULT.transport_url:
        try:
            kombu_url(settings.DEFAULT.transport_url.get_secret_value())
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc


def open_services(settings: Settings, *, upgrade: bool = True) -> Services:
    """Connect to the database (bringing its schema up to date when ``upgrade``)."""
    check(settings)
    db = Database(settings.database_url, echo=settings.database.connection_debug >= 50)
    if upgrade:
        migrate.upgrade(db.engine)
    elif migrate.current_revision(db.engine) != migrate.head_revision():
        raise ConfigError("the database schema is not current; run `lbaas db upgrade` first")
    bell = None
    if settings.DEFAULT.transport_url:
        bell = RabbitBell(settings.DEFAULT.transport_url.get_secret_value())
        bell.start()
    return Services(settings=settings, db=db, wakeup=Wakeup(bell and bell.ring), bell=bell)


@contextlib.contextmanager
def running_health_manager(services: Services) -> Iterator[HealthManager]:
    """A started health manager (heartbeats, operating status, failover), stopped on exit."""
    host.prepare(services.settings, services.db)
    drivers = (driver_registry.load(services.settings, services.db)
               if HostMonitor.applies(services.settings) else None)
    manager = HealthManager(services.settings, services.db, services.wakeup.notify, drivers)
    manager.start()
    try:
        yield manager
    finally:
        manager.stop()


@contextlib.contextmanager
def running_worker(services: Services,
                   drivers: driver_registry.Drivers | None = None) -> Iterator[Worker]:
    """A started worker (after preparing the host for amphorae), stopped on exit."""
    host.prepare(services.settings, services.db)
    worker = services.worker(drivers)
    listener = PostgresListener(services.db, services.wakeup)
    if PostgresListener.applies(services.db):
        listener.start()
    if services.bell is not None:
        services.bell.listen(services.wakeup)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        if PostgresListener.applies(services.db):
            listener.stop()


@contextlib.contextmanager
def running_housekeeping(services: Services, drivers: driver_registry.Drivers | None = None
                         ) -> Iterator[housekeeping.HouseKeeping]:
    """Started housekeeping (spare pool, cleanup, certificate rotation), stopped on exit."""
    host.prepare(services.settings, services.db)
    keeper = housekeeping.HouseKeeping(
        services.settings, services.db,
        drivers or driver_registry.load(services.settings, services.db), services.wakeup.notify)
    keeper.start()
    try:
        yield keeper
    finally:
        keeper.stop()


def serve_api(services: Services) -> None:
    """Serve the API until interrupted (blocks)."""
    import uvicorn

    from lbaas.api import server
    from lbaas.api.app import create_app
    api = services.settings.api_settings
    app = create_app(services.api_state)
    uvicorn.run(app, host=api.bind_host, port=api.bind_port, log_level="warning",
                access_log=services.settings.DEFAULT.debug, http=server.http_protocol())
