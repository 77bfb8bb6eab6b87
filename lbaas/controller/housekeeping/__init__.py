"""Housekeeping (upstream's ``octavia-housekeeping``): three loops on their own threads.

- spare pool, every ``spare_check_interval`` (``spare_pool``),
- database cleanup, every ``cleanup_interval`` (``cleanup``),
- certificate rotation, every ``cert_interval``, on ``cert_rotate_threads`` threads
  (``cert_rotation``), with a warning for each tenant certificate in use that expires
  within 14 days (``lbaas.cert_manager.expiry``),
- the reconciler, every ``reconcile_interval`` (``lbaas.controller.reconciler``).

Each loop runs once at start, then at its interval; an error is logged and the loop goes
on at its next turn.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from lbaas import cert_manager
from lbaas.cert_manager import expiry as tls_expiry
from lbaas.config import ConfigError, Settings
from lbaas.controller import reconciler
from lbaas.controller.flow import FlowContext
from lbaas.controller.housekeeping import cert_rotation, cleanup, spare_pool
from lbaas.db.engine import Database
from lbaas.drivers import Drivers

LOG = logging.getLogger(__name__)
# The least number of rotation passes that fall within cert_expiry_buffer: a certificate
# gets that many tries before it can expire.
MIN_ROTATION_TRIES = 3


def check(settings: Settings) -> None:
    """Refuse settings under which an amphora certificate could expire before rotation."""
    keeping, validity = settings.house_keeping, settings.certificates.cert_validity_time
    if keeping.cert_expiry_buffer >= validity:
        raise ConfigError(
            f"[house_keeping] cert_expiry_buffer ({keeping.cert_expiry_buffer} s) must be shorter "
            f"than [certificates] cert_validity_time ({validity} s), or every certificate is "
            "rotated as soon as it is issued")
    if keeping.cert_interval * MIN_ROTATION_TRIES > keeping.cert_expiry_buffer:
        raise ConfigError(
            f"[house_keeping] cert_interval ({keeping.cert_interval} s) must be at most "
            f"cert_expiry_buffer / {MIN_ROTATION_TRIES} ({keeping.cert_expiry_buffer} s / "
            f"{MIN_ROTATION_TRIES}), so that a certificate gets several tries before it expires")


class HouseKeeping:
    def __init__(self, settings: Settings, db: Database, drivers: Drivers,
                 notify_worker: Callable[[], None] | None = None) -> None:
        self.context = FlowContext(db=db, drivers=drivers, settings=settings)
        self.notify_worker = notify_worker
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._rotators = ThreadPoolExecutor(settings.house_keeping.cert_rotate_threads,
                                            "cert-rotate")

    def spare_check(self) -> None:
        if spare_pool.check(self.context) and self.notify_worker:
            self.notify_worker()

    def database_cleanup(self) -> None:
        keeping = self.context.settings.house_keeping
        cleanup.delete_old_amphorae(self.context.db, keeping.amphora_expiry_age)
        cleanup.cleanup_load_balancers(self.context.db, keeping.load_balancer_expiry_age)

    def cert_rotation(self) -> None:
        cert_rotation.run(self.context, self._rotators)
        # Tenants' certificates cannot be rotated for them: say which expire soon.
        tls_expiry.log_expiring(self.context.db,
                                cert_manager.load(self.context.settings, self.context.db))

    def reconcile(self) -> None:
        if reconciler.run(self.context).failed_over and self.notify_worker:
            self.notify_worker()

    def start(self) -> None:
        keeping = self.context.settings.house_keeping
        for name, interval, job in (("spare-pool", keeping.spare_check_interval, self.spare_check),
                                    ("db-cleanup", keeping.cleanup_interval, self.database_cleanup),
                                    ("cert-rotation", keeping.cert_interval, self.cert_rotation),
                                    ("reconciler", keeping.reconcile_interval, self.reconcile)):
            thread = threading.Thread(target=self._loop, args=(name, interval, job),
                                      name=f"housekeeping-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        self._rotators.shutdown(wait=True)

    def _loop(self, name: str, interval: float, job: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                job()
            except Exception:
                LOG.exception("housekeeping %s failed; trying again in %s s", name, interval)
            self._stop.wait(interval)
