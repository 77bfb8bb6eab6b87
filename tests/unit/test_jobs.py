"""The job board: jobs are written with the change and survive a worker that dies."""
from __future__ import annotations

import datetime as dt

from lbaas.controller import jobs
from lbaas.db.models import Job


def test_a_claimed_job_is_not_claimed_twice(services):
    with services.db.write() as session:
        jobs.enqueue(session, "change", lb_id="x", targets={})
    lease = dt.timedelta(seconds=60)
    first = jobs.claim(services.db, "worker-a", lease)
    assert first is not None and first.lease_owner == "worker-a"
    assert jobs.claim(services.db, "worker-b", lease) is None


def test_job_of_a_dead_worker_is_redelivered(services):
    with services.db.write() as session:
        jobs.enqueue(session, "change", lb_id="x", targets={})
    # worker-a claims the job and dies: its lease runs out.
    dead = jobs.claim(services.db, "worker-a", dt.timedelta(seconds=-1))
    assert dead is not None
    again = jobs.claim(services.db, "worker-b", dt.timedelta(seconds=60))
    assert again is not None and again.id == dead.id
    assert again.lease_owner == "worker-b" and again.attempts == 2


def test_finished_job_leaves_the_board(services):
    with services.db.write() as session:
        jobs.enqueue(session, "change", lb_id="x", targets={})
    job = jobs.claim(services.db, "worker-a", dt.timedelta(seconds=60))
    jobs.finish(services.db, job)
    with services.db.read() as session:
        assert session.query(Job).count() == 0


def test_rolled_back_change_sends_no_job(services):
    try:
        with services.db.write() as session:
            jobs.enqueue(session, "change", lb_id="x", targets={})
            raise RuntimeError("validation failed after the job was added")
    except RuntimeError:
        pass
    assert jobs.claim(services.db, "worker-a", dt.timedelta(seconds=60)) is None
