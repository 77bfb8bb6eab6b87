"""Assembles the services from the configuration and runs them."""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from lbaas import cert_manager, compute_flavors, config, host
from lbaas import drivers as driver_registry
from lbaas.amphora import heartbeat_settings as heartbeats
from lbaas.amphora import keepalived_config
from lbaas.amphora.agent.loop import Loop
from lbaas.config import ConfigError, Settings
from lbaas.controller import housekeeping
from lbaas.controller.jobs import Wakeup
from lbaas.controller.wakeups import LocalBell, PostgresListener, RabbitBell, kombu_url
from lbaas.controller.worker import Worker
from lbaas.db import keypairs, migrate
from lbaas.db import services as presence
from lbaas.db.engine import Database
from lbaas.health.hosts import HostMonitor
from lbaas.health.manager import HealthManager
from lbaas.images.store import ImageError, ImageStore, check_tag
from lbaas.network import management

if TYPE_CHECKING:
    from lbaas.api.common import ApiState

LOG = logging.getLogger(__name__)
JOB_BELLS = "job-bells"  # under state_path: lbaas.controller.wakeups.LocalBell


@dataclass
class Services:
    settings: Settings
    db: Database
    wakeup: Wakeup
    local_bell: LocalBell
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
    if settings.controller_worker.amp_image_tag:
        try:
            check_tag(settings.controller_worker.amp_image_tag)
        except ImageError as exc:
            raise ConfigError(f"[controller_worker] amp_image_tag: {exc}") from exc
    if settings.controller_worker.amp_flavor_id not in compute_flavors.flavors(settings):
        raise ConfigError(f"[controller_worker] amp_flavor_id = "
                          f"{settings.controller_worker.amp_flavor_id} names no flavor of "
                          f"[compute] flavors ({', '.join(settings.compute.flavors) or 'none'})")
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
    if management.uses_local_network(settings):
        management.layout(settings.networking)  # one line naming the option, not a traceback


def check_privileges(settings: Settings) -> None:
    """The real drivers make bridges, namespaces and firewall rules: they need root."""
    if management.uses_local_network(settings) and os.geteuid() != 0:
        raise ConfigError("the real drivers make bridges, namespaces and firewall rules: run "
                          "lbaas as root, or choose the no-op drivers ([controller_worker] "
                          "*_driver, README \"Configuration\") for API-only use")


def open_services(settings: Settings, *, upgrade: bool = True) -> Services:
    """Connect to the database (bringing its schema up to date when ``upgrade``). Without
    ``upgrade`` the database must exist: a command run with the wrong configuration says
    so instead of making an empty one."""
    check(settings)
    sqlite = make_url(settings.database_url)
    if (not upgrade and sqlite.get_backend_name() == "sqlite" and sqlite.database
            and not Path(sqlite.database).exists()):
        source = settings.source or f"none found at {config.DEFAULT_CONFIG_FILE}"
        raise ConfigError(f"there is no database at {sqlite.database} (configuration file: "
                          f"{source}); give the --config-file of the running service, or "
                          "start it (`lbaas up`, or `lbaas db upgrade`) with this one first")
    db = Database(settings.database_url)
    if upgrade:
        migrate.upgrade(db.engine)
    elif migrate.current_revision(db.engine) != migrate.head_revision():
        raise ConfigError("the database schema is not current; run `lbaas db upgrade` first")
    bell = None
    if settings.DEFAULT.transport_url:
        bell = RabbitBell(settings.DEFAULT.transport_url.get_secret_value())
        bell.start()
    local_bell = LocalBell(settings.DEFAULT.state_path / JOB_BELLS)
    rings = (local_bell.ring, *((bell.ring,) if bell is not None else ()))
    return Services(settings=settings, db=db, wakeup=Wakeup(*rings), local_bell=local_bell,
                    bell=bell)


class Presence:
    """This process listed as a running ``kind`` of service (lbaas.db.services) while it
    runs, with what it last did (``note``), for /healthcheck and ``lbaas status``."""

    def __init__(self, db: Database, kind: str, host: str) -> None:
        self.db, self.kind, self.host = db, kind, host
        self.activity: str | None = None
        self._loop = Loop(f"presence-{kind}", self._stamp, presence.INTERVAL, first_wait=False)

    def _stamp(self) -> None:
        presence.stamp(self.db, self.kind, self.host, self.activity)

    def note(self, activity: str) -> None:
        self.activity = activity[:255]

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
        try:
            presence.forget(self.db, self.kind, self.host)
        except Exception:  # the database may be why we stop; the row then just ages out
            LOG.warning("could not remove this %s from the running services", self.kind)


@contextlib.contextmanager
def present(services: Services, kind: str) -> Iterator[Presence]:
    """This process listed as a running ``kind`` while the block runs."""
    listed = Presence(services.db, kind, services.settings.DEFAULT.host)
    listed.start()
    try:
        yield listed
    finally:
        listed.stop()


@contextlib.contextmanager
def running_health_manager(services: Services) -> Iterator[HealthManager]:
    """A started health manager (heartbeats, operating status, failover), stopped on exit."""
    host.prepare(services.settings, services.db)
    drivers = (driver_registry.load(services.settings, services.db)
               if HostMonitor.applies(services.settings) else None)
    manager = HealthManager(services.settings, services.db, services.wakeup.notify, drivers)
    manager.start()
    try:
        with present(services, "health-manager") as listed:
            manager.on_activity = listed.note
            yield manager
    finally:
        manager.stop()


@contextlib.contextmanager
def running_worker(services: Services,
                   drivers: driver_registry.Drivers | None = None) -> Iterator[Worker]:
    """A started worker (after preparing the host for amphorae), stopped on exit."""
    host.prepare(services.settings, services.db)
    _warn_without_image(services.settings)
    _warn_without_keypair(services)
    worker = services.worker(drivers)
    listener = PostgresListener(services.db, services.wakeup)
    if PostgresListener.applies(services.db):
        listener.start()
    if services.bell is not None:
        services.bell.listen(services.wakeup)
    services.local_bell.listen(services.wakeup)
    worker.start()
    try:
        with present(services, "worker") as listed:
            worker.on_activity = listed.note
            yield worker
    finally:
        worker.stop()
        services.local_bell.stop()
        if PostgresListener.applies(services.db):
            listener.stop()


def _warn_without_image(settings: Settings) -> None:
    """A configured amp_image_tag that names no image is said at start, not only by the
    first amphora build that fails for it."""
    tag = settings.controller_worker.amp_image_tag
    if not tag:
        return
    try:
        ImageStore.from_settings(settings).newest(tag)
    except ImageError as exc:
        LOG.warning("[controller_worker] amp_image_tag: %s; until then every amphora build "
                    "fails", exc)


def _warn_without_keypair(services: Services) -> None:
    """Likewise a configured amp_ssh_key_name that names no keypair."""
    name = services.settings.controller_worker.amp_ssh_key_name
    if not name:
        return
    try:
        keypairs.get(services.db, name)
    except keypairs.KeypairError as exc:
        LOG.warning("[controller_worker] amp_ssh_key_name: %s; until then every amphora "
                    "build fails", exc)


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
        with present(services, "housekeeping"):
            yield keeper
    finally:
        keeper.stop()


def bind_api(settings: Settings) -> socket.socket:
    """The API's listening socket, bound before anything says it listens; a port taken or
    an address not on this host is one line saying what to change."""
    api = settings.api_settings
    family = socket.AF_INET6 if ":" in api.bind_host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((api.bind_host, api.bind_port))
    except OSError as exc:
        sock.close()
        why = {errno.EADDRINUSE: "is taken by another process; stop it or choose another "
                                 "[api_settings] bind_port",
               errno.EADDRNOTAVAIL: "is not an address of this host; fix [api_settings] "
                                    "bind_host",
               errno.EACCES: "needs root (a port below 1024); choose [api_settings] bind_port "
                             "above 1023"}.get(exc.errno or 0, f"cannot be bound ({exc.strerror})")
        raise ConfigError(f"{api.bind_host}:{api.bind_port} {why}") from exc
    sock.listen(2048)
    return sock


def serve_api(services: Services, sock: socket.socket) -> None:
    """Serve the API on ``sock`` until SIGINT or SIGTERM (blocks), then return, so that
    the caller stops its other services gracefully too."""
    import uvicorn

    from lbaas.api import server
    from lbaas.api.app import create_app
    app = create_app(services.api_state)
    # uvicorn stops on these and then raises them again for the handler it found: a
    # default one would end the process before the worker hands its jobs back.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    with present(services, "api"):
        uvicorn.Server(uvicorn.Config(app, log_level="warning", http=server.http_protocol(),
                                      access_log=services.settings.DEFAULT.debug)
                       ).run(sockets=[sock])
