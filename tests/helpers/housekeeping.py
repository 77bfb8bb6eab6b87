"""Running the spare pool as housekeeping and a worker would, in the test's process."""
from __future__ import annotations

import time

from sqlalchemy import func, select

from lbaas.controller import jobs
from lbaas.controller.flow import FlowContext
from lbaas.controller.housekeeping import spare_pool
from lbaas.controller.tasks import amphora as amphora_tasks
from lbaas.controller.worker import Worker
from lbaas.db.models import Amphora, Job


def spare_amphorae(context: FlowContext) -> list[Amphora]:
    with context.db.read() as session:
        return list(session.scalars(select(Amphora).where(*amphora_tasks.SPARE)))


def fill_spare_pool(context: FlowContext) -> None:
    """A spare pool check, then its boot jobs run to the end (as a worker runs them)."""
    spare_pool.check(context)
    worker = Worker(context.settings, context.db, context.drivers)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        job = jobs.claim(context.db, worker.owner, worker.lease)
        if job is not None:
            worker.run_job(job)
            continue
        with context.db.read() as session:  # a worker thread (the client's) may run some
            if session.scalar(select(func.count()).select_from(Job)) == 0:
                return
        time.sleep(0.01)
    raise AssertionError("the spare boot jobs did not finish")
