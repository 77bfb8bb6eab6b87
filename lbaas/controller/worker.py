"""The worker: claims jobs from the board and runs the flow each one names.

At start it takes back the jobs of its dead predecessors on this host and reconciles the
host with the database (``lbaas.controller.reconciler``); while it runs, a keeper thread
renews the leases of its running jobs. A job that has already been tried
``MAX_ATTEMPTS`` times (its flow crashed every worker that ran it) is not run again but
reverted, so that its objects end in ERROR instead of PENDING_* for ever; so does a job
no flow can run (an action or arguments this version does not know).
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from lbaas import log
from lbaas.config import Settings
from lbaas.controller import jobs, reconciler
from lbaas.controller.actions import Action
from lbaas.controller.flow import FlowContext, Step, revert, run
from lbaas.controller.flows import amphora, change, failover, load_balancer
from lbaas.controller.tasks import lifecycle
from lbaas.db import metrics
from lbaas.db.engine import Database
from lbaas.db.models import Job
from lbaas.drivers import Drivers

LOG = logging.getLogger(__name__)
MAX_ATTEMPTS = 5

FLOWS: dict[Action, Callable[..., list[Step]]] = {
    Action.CREATE_LOAD_BALANCER: load_balancer.create,
    Action.DELETE_LOAD_BALANCER: load_balancer.delete,
    Action.FAILOVER_LOAD_BALANCER: failover.failover_load_balancer,
    Action.FAILOVER_AMPHORA: failover.failover_amphora,
    Action.CHANGE: change.change,
    Action.DELETE_AMPHORA: amphora.delete,
    Action.UPDATE_AMPHORA_CONFIG: amphora.update_config,
    Action.BUILD_SPARE: amphora.build_spare,
}


class Worker:
    """Runs flows on ``flow_threads`` threads until stopped."""

    def __init__(self, settings: Settings, db: Database, drivers: Drivers,
                 wakeup: jobs.Wakeup | None = None) -> None:
        self.settings = settings
        self.db = db
        self.drivers = drivers
        self.wakeup = wakeup or jobs.Wakeup()
        self.owner = jobs.process_owner(settings.DEFAULT.host)
        options = settings.controller_worker
        self.lease = dt.timedelta(seconds=options.job_lease_seconds)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: dict[int, jobs.Lease] = {}
        self._running_lock = threading.Lock()
        # Told what the worker last did (its entry in ``lbaas status``).
        self.on_activity: Callable[[str], None] = lambda _activity: None

    def start(self) -> None:
        taken = jobs.take_back(self.db, self.settings.DEFAULT.host, self.owner)
        if taken:
            LOG.warning("took back %d job(s) of a dead worker on this host: %s",
                        len(taken), ", ".join(map(str, taken)))
        reconciler.run(FlowContext(db=self.db, drivers=self.drivers, settings=self.settings))
        keeper = threading.Thread(target=self._keep_leases, name="worker-leases", daemon=True)
        keeper.start()
        self._threads.append(keeper)
        for index in range(self.settings.controller_worker.flow_threads):
            thread = threading.Thread(target=self._loop, name=f"worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, grace: float | None = None) -> None:
        """Take no more jobs; let the running ones finish for ``grace`` seconds
        (``[DEFAULT] graceful_shutdown_timeout``), then hand the others back: their leases
        are released, so another worker takes them at once, and their flows here stop at
        their next write."""
        grace = self.settings.DEFAULT.graceful_shutdown_timeout if grace is None else grace
        self._stop.set()
        self.wakeup.notify_all_local()
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._running_lock:
            unfinished = dict(self._running)
        if unfinished:
            jobs.hand_back(self.db, self.owner, list(unfinished))
            for lease in unfinished.values():
                lease.lost.set()
            LOG.warning("stopping: handed %d running job(s) back to the other workers: %s",
                        len(unfinished), ", ".join(map(str, unfinished)))
        for thread in self._threads:
            thread.join(5)
        self._threads.clear()

    def _keep_leases(self) -> None:
        """Renew the running jobs' leases a few times per lease; a job found held by
        another worker (this process stalled past its lease) is marked lost, and its
        flow stops at its next step or write."""
        while not self._stop.wait(self.lease.total_seconds() / 4):
            # Only the jobs running before the renewal read the board are checked against
            # what it read: one claimed meanwhile may be missing from its snapshot.
            with self._running_lock:
                running = dict(self._running)
            if not running:
                continue
            try:
                held = jobs.renew(self.db, self.owner, self.lease, running)
            except Exception:
                LOG.exception("could not renew the job leases; retrying")
                continue
            for job_id, lease in running.items():
                if job_id not in held:
                    lease.lost.set()

    def _loop(self) -> None:
        poll = self.settings.controller_worker.job_poll_interval
        while not self._stop.is_set():
            try:
                with self._running_lock:
                    running = list(self._running)
                job = jobs.claim(self.db, self.owner, self.lease, running)
                wait = poll if job else min(
                    poll, jobs.seconds_until_claimable(self.db, self.owner) or poll)
            except Exception:
                LOG.exception("could not claim a job; retrying")
                job, wait = None, poll
            if job is None:
                self.wakeup.wait(wait)
                continue
            if self._stop.is_set():  # claimed while stopping (perhaps a job just handed back)
                jobs.hand_back(self.db, self.owner, [job.id])
                return
            # Another job may be waiting: a sibling looks while this one runs.
            self.wakeup.notify_local()
            self.run_job(job)

    def run_job(self, job: Job) -> None:
        lease = jobs.Lease(job.id, self.owner, self.lease, state=dict(job.state or {}))
        with self._running_lock:
            self._running[job.id] = lease
        # The request that queued the job names its log lines (else the job does).
        token = log.request_id.set(lease.state.get("request_id") or f"job-{job.id}")
        try:
            self._run(job, lease)
        finally:
            log.request_id.reset(token)
            with self._running_lock:
                # Only our own entry: once this job left the board, SQLite may give its id
                # to a new job that another thread already runs.
                if self._running.get(job.id) is lease:
                    del self._running[job.id]

    def _run(self, job: Job, lease: jobs.Lease) -> None:
        try:
            steps = FLOWS[Action(job.action)](**job.payload)
        except (ValueError, TypeError) as exc:  # an unknown action, or arguments that do not fit
            self._cannot_run(job, lease, str(exc))
            return
        context = FlowContext(db=self.db, drivers=self.drivers, settings=self.settings,
                              store=lease.state, lease=lease)
        if job.attempts > 1:
            LOG.warning("job %s (%s) is run again (attempt %d): its worker died", job.id,
                        job.action, job.attempts)
        began, outcome = time.monotonic(), "done"
        try:
            if job.attempts > MAX_ATTEMPTS:
                LOG.error("job %s (%s) was tried %d times; reverting it", job.id, job.action,
                          MAX_ATTEMPTS)
                revert(job.action, steps, context)
                outcome = "abandoned"
            else:
                run(job.action, steps, context)
        except jobs.LeaseLost:
            return  # another worker runs it now
        except Exception:
            LOG.warning("job %s (%s) failed and was reverted", job.id, job.action)
            outcome = "reverted"
        jobs.finish(self.db, lease)
        took = time.monotonic() - began
        self.on_activity(f"job {job.id} ({job.action}) {outcome} in {took:.1f} s")
        self._count(job.action, outcome, took)

    def _cannot_run(self, job: Job, lease: jobs.Lease, reason: str) -> None:
        """A job no flow of this version can run (queued by another version, or by a bug):
        its objects go ERROR with the reason in the log, and it leaves the board."""
        LOG.error("job %s (%s, %s) cannot run: %s; the objects it names are ERROR", job.id,
                  job.action, job.payload, reason)
        with self.db.write() as session:
            lifecycle.fail_unrunnable(session, dict(job.payload or {}))
        jobs.finish(self.db, lease)
        self.on_activity(f"job {job.id} ({job.action}) cannot run: {reason}")
        self._count(job.action, "unrunnable", 0.0)

    def _count(self, action: str, outcome: str, seconds: float) -> None:
        """The shared metrics of flows: how many ended how, and how long they took."""
        try:
            with self.db.write() as session:
                metrics.add_all(session, [
                    ("lbaas_flows_total", 1.0, {"action": action, "outcome": outcome}),
                    *metrics.observation("lbaas_flow_duration_seconds", seconds, action=action)])
        except Exception:  # a metric must never fail a job that has already ended
            LOG.warning("could not record the metrics of a %s flow", action, exc_info=True)
