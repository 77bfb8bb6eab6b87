"""The worker: claims jobs from the board and runs the flow each one names."""
from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable

from lbaas.config import Settings
from lbaas.controller import jobs
from lbaas.controller.flow import FlowContext, Step, run
from lbaas.controller.flows import amphora, change, failover, load_balancer
from lbaas.db.engine import Database
from lbaas.db.models import Job
from lbaas.drivers import Drivers

LOG = logging.getLogger(__name__)

FLOWS: dict[str, Callable[..., list[Step]]] = {
    "create_load_balancer": load_balancer.create,
    "delete_load_balancer": load_balancer.delete,
    "failover_load_balancer": failover.failover_load_balancer,
    "failover_amphora": failover.failover_amphora,
    "change": change.change,
    "delete_amphora": amphora.delete,
    "update_amphora_config": amphora.update_config,
}


class Worker:
    """Runs flows on ``flow_threads`` threads until stopped."""

    def __init__(self, settings: Settings, db: Database, drivers: Drivers,
                 wakeup: jobs.Wakeup | None = None) -> None:
        self.settings = settings
        self.db = db
        self.drivers = drivers
        self.wakeup = wakeup or jobs.Wakeup()
        self.owner = f"{settings.DEFAULT.host}:{os.getpid()}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for index in range(self.settings.controller_worker.flow_threads):
            thread = threading.Thread(target=self._loop, name=f"worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for _ in self._threads:
            self.wakeup.notify()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _loop(self) -> None:
        lease = dt.timedelta(seconds=self.settings.controller_worker.job_lease_seconds)
        poll = self.settings.controller_worker.job_poll_interval
        while not self._stop.is_set():
            try:
                job = jobs.claim(self.db, self.owner, lease)
            except Exception:
                LOG.exception("could not claim a job; retrying")
                job = None
            if job is None:
                self.wakeup.wait(poll)
                continue
            self.run_job(job)
            # Another job may be waiting: wake a sibling rather than let it sleep a poll.
            self.wakeup.notify()

    def run_job(self, job: Job) -> None:
        flow = FLOWS.get(job.action)
        if flow is None:
            LOG.error("job %s names an unknown action %r; dropping it", job.id, job.action)
        else:
            context = FlowContext(db=self.db, drivers=self.drivers, settings=self.settings)
            try:
                run(job.action, flow(**job.payload), context)
            except Exception:
                LOG.warning("job %s (%s) failed and was reverted", job.id, job.action)
        jobs.finish(self.db, job)
