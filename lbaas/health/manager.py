"""The health manager service: receiver, batch updater and failover checker together."""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from lbaas.amphora.agent.loop import Loop
from lbaas.config import Settings
from lbaas.db.engine import Database
from lbaas.drivers import Drivers
from lbaas.health import settings as heartbeats
from lbaas.health.failover import FailoverChecker
from lbaas.health.hosts import HostMonitor
from lbaas.health.receiver import Counters, HeartbeatReceiver, decode
from lbaas.health.update import HealthUpdater

LOG = logging.getLogger(__name__)
REPORT_INTERVAL = 60.0


class HealthManager:
    def __init__(self, settings: Settings, db: Database,
                 notify_worker: Callable[[], None] | None = None,
                 drivers: Drivers | None = None) -> None:
        options = settings.health_manager
        self.counters = Counters()
        secret = heartbeats.heartbeat_key(settings)
        self.updater = HealthUpdater(db, self.counters, options.heartbeat_interval,
                                     functools.partial(decode, secret=secret,
                                                       counters=self.counters))
        self.receiver = HeartbeatReceiver(
            (heartbeats.bind_ip(settings), options.bind_port), self.updater.submit,
            self.counters, threads=options.health_update_threads,
            receive_buffer=options.sock_rlimit)
        self.checker = FailoverChecker(settings, db, notify_worker)
        # compute_agent_driver: the compute hosts' liveness too (lbaas.health.hosts).
        self.hosts = (HostMonitor(settings, db, drivers, notify_worker)
                      if drivers is not None and HostMonitor.applies(settings) else None)
        self._reported: dict[str, int] = {}
        self._reporter = Loop("hm-report", self._report, REPORT_INTERVAL)

    def _report(self) -> None:
        """Log the heartbeat counters (drops included) when they changed."""
        counts = self.counters.snapshot()
        if counts != self._reported:
            LOG.info("heartbeats: %s", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
            self._reported = counts

    def start(self) -> None:
        self.updater.start()
        self.receiver.start()
        self.checker.start()
        if self.hosts is not None:
            self.hosts.start()
        self._reporter.start()
        LOG.info("health manager listening on %s:%s (UDP)", *self.receiver.address)

    def stop(self) -> None:
        self._reporter.stop()
        if self.hosts is not None:
            self.hosts.stop()
        self.checker.stop()
        self.receiver.stop()
        self.updater.stop()
