"""The health manager service: receiver, batch updater and failover checker together."""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from lbaas.amphora import heartbeat_settings as heartbeats
from lbaas.amphora.agent.loop import Loop
from lbaas.config import Settings
from lbaas.db import metrics
from lbaas.db.engine import Database
from lbaas.drivers import Drivers
from lbaas.health.failover import FailoverChecker
from lbaas.health.hosts import HostMonitor
from lbaas.health.receiver import Counters, HeartbeatReceiver, decode
from lbaas.health.update import HealthUpdater

LOG = logging.getLogger(__name__)
REPORT_INTERVAL = 60.0
METRICS_INTERVAL = 10.0


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
        self.db, self.host = db, settings.DEFAULT.host
        self._flushed: dict[str, int] = {}
        self._metrics = Loop("hm-metrics", self._flush_metrics, METRICS_INTERVAL)
        # Told what this health manager last did (its entry in ``lbaas status``).
        self.on_activity: Callable[[str], None] = lambda _activity: None

    def _report(self) -> None:
        """Log the heartbeat counters (drops included) when they changed."""
        counts = self.counters.snapshot()
        if counts != self._reported:
            LOG.info("heartbeats: %s", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
            self._reported = counts

    def _flush_metrics(self) -> None:
        """Add what the counters grew by since the last flush to the shared metrics, and
        set this health manager's lag."""
        counts = self.counters.snapshot()
        accepted = counts.get("accepted", 0) - self._flushed.get("accepted", 0)
        self.on_activity(f"{accepted} heartbeat(s) accepted in {METRICS_INTERVAL:g} s, "
                         f"lag {self.updater.lag:.2f} s")
        grown = [("lbaas_heartbeats_total", count - self._flushed.get(result, 0),
                  {"result": result})
                 for result, count in counts.items() if count > self._flushed.get(result, 0)]
        with self.db.write() as session:
            if grown:
                metrics.add_all(session, grown)
            metrics.set_value(session, "lbaas_health_manager_lag_seconds", self.updater.lag,
                              host=self.host)
        self._flushed = counts

    def start(self) -> None:
        self.updater.start()
        self.receiver.start()
        self.checker.start()
        if self.hosts is not None:
            self.hosts.start()
        self._reporter.start()
        self._metrics.start()
        LOG.info("health manager listening on %s:%s (UDP)", *self.receiver.address)

    def stop(self) -> None:
        self._metrics.stop()
        self._reporter.stop()
        if self.hosts is not None:
            self.hosts.stop()
        self.checker.stop()
        self.receiver.stop()
        self.updater.stop()
