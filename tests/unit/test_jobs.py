"""The job board: jobs are written with the change, leases prove their worker alive, and
a job outlives the worker that dies running it."""
from __future__ import annotations

import datetime as dt
import inspect
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import select

from lbaas import constants
from lbaas.controller import actions, jobs
from lbaas.controller.actions import Action
from lbaas.controller.flow import FlowContext, Step
from lbaas.controller.tasks import lifecycle
from lbaas.controller.worker import FLOWS, MAX_ATTEMPTS, Worker
from lbaas.db.models import Amphora, Job, LoadBalancer, Pool
from tests.helpers import wait_for

MINUTE = dt.timedelta(seconds=60)


def _enqueue(services, action: str = "change", **payload) -> None:
    with services.db.write() as session:
        jobs.enqueue(session, action, **(payload or {"lb_id": "x", "targets": {}}))


def test_a_claimed_job_is_not_claimed_twice(services):
    _enqueue(services)
    first = jobs.claim(services.db, "worker-a", MINUTE)
    assert first is not None and first.lease_owner == "worker-a"
    assert jobs.claim(services.db, "worker-b", MINUTE) is None


def test_job_of_a_dead_worker_is_redelivered(services):
    _enqueue(services)
    # worker-a claims the job and dies: its lease runs out.
    dead = jobs.claim(services.db, "worker-a", dt.timedelta(seconds=-1))
    assert dead is not None
    again = jobs.claim(services.db, "worker-b", MINUTE)
    assert again is not None and again.id == dead.id
    assert again.lease_owner == "worker-b" and again.attempts == 2


def test_a_worker_never_claims_again_a_job_it_runs_itself(services):
    # Its lease ran out (the process stalled), but a sibling thread must not run the
    # same job next to it: that is for another, live worker to decide.
    _enqueue(services)
    job = jobs.claim(services.db, "worker-a", dt.timedelta(seconds=-1))
    assert job is not None
    assert jobs.claim(services.db, "worker-a", MINUTE, running=[job.id]) is None
    assert jobs.seconds_until_claimable(services.db, "worker-b") == 0


def test_a_job_a_worker_holds_but_no_longer_runs_is_run_again_when_its_lease_ends(services):
    """A flow that stopped without letting go of its job (it took itself for overtaken)
    is not renewed, and the same process runs the job again once its lease ran out."""
    _enqueue(services)
    job = jobs.claim(services.db, "worker-a", dt.timedelta(seconds=-1))
    assert jobs.renew(services.db, "worker-a", MINUTE, running=[]) == set()
    again = jobs.claim(services.db, "worker-a", MINUTE, running=[])
    assert again is not None and again.id == job.id and again.attempts == 2


def test_renewing_keeps_a_job_from_other_workers(services):
    _enqueue(services)
    job = jobs.claim(services.db, "worker-a", dt.timedelta(seconds=-1))
    assert jobs.renew(services.db, "worker-a", MINUTE, [job.id]) == {job.id}
    assert jobs.claim(services.db, "worker-b", MINUTE) is None
    assert 50 < jobs.seconds_until_claimable(services.db, "worker-b") <= 60


def test_a_job_taken_over_is_no_longer_renewed_by_its_first_worker(services):
    _enqueue(services)
    first = jobs.claim(services.db, "worker-a", dt.timedelta(seconds=-1))
    taken = jobs.claim(services.db, "worker-b", MINUTE)
    assert jobs.renew(services.db, "worker-a", MINUTE, [first.id]) == set()
    assert jobs.renew(services.db, "worker-b", MINUTE, [taken.id]) == {taken.id}


def test_finished_job_leaves_the_board_only_for_its_owner(services):
    _enqueue(services)
    job = jobs.claim(services.db, "worker-a", MINUTE)
    jobs.finish(services.db, jobs.Lease(job.id, "worker-b", MINUTE))  # not its job
    with services.db.read() as session:
        assert session.query(Job).count() == 1
    jobs.finish(services.db, jobs.Lease(job.id, "worker-a", MINUTE))
    with services.db.read() as session:
        assert session.query(Job).count() == 0


def test_finishing_a_job_its_flow_ended_leaves_a_new_job_with_its_id_alone(services):
    """SQLite gives a removed job's id to the next job; a sibling thread of the same worker
    process (the same owner) may hold that one already. A load balancer whose create job
    was dropped that way stayed PENDING_CREATE until the reconciler set it ERROR."""
    _enqueue(services)
    first = jobs.claim(services.db, "worker-a", MINUTE)
    context = FlowContext(db=services.db, drivers=None, settings=services.settings,  # type: ignore[arg-type]
                          lease=jobs.Lease(first.id, "worker-a", MINUTE))
    with context.write(final=True):
        pass  # the flow's last write removes its job
    _enqueue(services)
    second = jobs.claim(services.db, "worker-a", MINUTE)  # another thread of the process
    assert second.id == first.id  # the hazard is real here
    jobs.finish(services.db, context.lease)
    with services.db.read() as session:
        assert session.get(Job, second.id) is not None


def test_rolled_back_change_sends_no_job(services):
    with pytest.raises(RuntimeError):
        with services.db.write() as session:
            jobs.enqueue(session, "change", lb_id="x", targets={})
            raise RuntimeError("validation failed after the job was added")
    assert jobs.claim(services.db, "worker-a", MINUTE) is None


def test_a_new_worker_takes_back_at_once_the_jobs_of_its_dead_predecessor(services):
    dead = subprocess.run([sys.executable, "-c", "from lbaas.controller import jobs; "
                           "print(jobs.process_owner('host-a'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        alive_owner = f"host-a:{alive.pid}:{jobs._start_time(alive.pid)}"
        for owner in (dead, alive_owner, "host-b:1:1"):
            _enqueue(services)
            jobs.claim(services.db, owner, MINUTE)
        taken = jobs.take_back(services.db, "host-a", jobs.process_owner("host-a"))
        with services.db.read() as session:
            holders = dict(session.execute(select(Job.id, Job.lease_owner)).all())
    finally:
        alive.kill()
        alive.wait()
    # Only the dead process of this host lets go; a live one, or another host's, keeps it.
    assert len(taken) == 1 and holders[taken[0]] is None
    assert sorted(h for h in holders.values() if h) == sorted([alive_owner, "host-b:1:1"])
    assert jobs.claim(services.db, "worker-c", MINUTE).id == taken[0]


def test_a_lost_lease_stops_the_flow_and_rolls_its_write_back(services):
    _enqueue(services)
    job = jobs.claim(services.db, "worker-a", dt.timedelta(seconds=-1))
    # A lease renewed into the past: as if this worker stalled past it after each write.
    lease = jobs.Lease(job.id, "worker-a", dt.timedelta(seconds=-1), state={"built": ["a1"]})
    context = FlowContext(db=services.db, drivers=None, settings=services.settings,  # type: ignore[arg-type]
                          store=lease.state, lease=lease)
    with context.write() as session:
        session.add(LoadBalancer(id="lb-1", provisioning_status="ACTIVE",
                                 operating_status="ONLINE"))
    with services.db.read() as session:
        assert session.get(Job, job.id).state == {"built": ["a1"]}  # saved with the row
    jobs.claim(services.db, "worker-b", dt.timedelta(seconds=-1))  # taken over meanwhile
    with pytest.raises(jobs.LeaseLost):
        with context.write() as session:
            session.add(LoadBalancer(id="lb-2", provisioning_status="ACTIVE",
                                     operating_status="ONLINE"))
    with services.db.read() as session:
        assert session.get(LoadBalancer, "lb-2") is None
        assert session.get(LoadBalancer, "lb-1") is not None


def _pending_lb(services) -> str:
    with services.db.write() as session:
        lb = LoadBalancer(provisioning_status=constants.PENDING_UPDATE,
                          operating_status=constants.ONLINE)
        session.add(lb)
        session.flush()
        jobs.enqueue(session, "change", lb_id=lb.id, targets={"loadbalancer": [lb.id]})
    return lb.id


def test_a_job_that_crashed_every_worker_is_reverted_not_run_again(services, drivers,
                                                                    monkeypatch):
    lb_id = _pending_lb(services)
    ran = []
    monkeypatch.setitem(FLOWS, "change", lambda lb_id, targets: [
        lifecycle.error_on_revert(lb_id, targets), Step("push", lambda ctx: ran.append(1))])
    for attempt in range(MAX_ATTEMPTS):  # each worker that took it died
        jobs.claim(services.db, f"dead-{attempt}", dt.timedelta(seconds=-1))
    worker = Worker(services.settings, services.db, drivers)
    job = jobs.claim(services.db, worker.owner, MINUTE)
    assert job.attempts == MAX_ATTEMPTS + 1
    worker.run_job(job)
    with services.db.read() as session:
        assert session.get(LoadBalancer, lb_id).provisioning_status == constants.ERROR
        assert session.query(Job).count() == 0
    assert ran == []


def test_a_worker_that_lost_its_lease_leaves_the_job_and_statuses_alone(services, drivers,
                                                                       monkeypatch):
    lb_id = _pending_lb(services)
    worker = Worker(services.settings, services.db, drivers)
    job = jobs.claim(services.db, worker.owner, dt.timedelta(seconds=-1))

    def stalled(ctx: FlowContext) -> None:
        jobs.claim(services.db, "worker-b", MINUTE)  # another worker took it meanwhile
        with ctx.write():
            pass
    monkeypatch.setitem(FLOWS, "change", lambda lb_id, targets: [
        Step("error-on-revert", lambda ctx: None, lambda ctx: pytest.fail("reverted")),
        Step("stall", stalled)])
    worker.run_job(job)
    with services.db.read() as session:
        assert session.get(LoadBalancer, lb_id).provisioning_status == constants.PENDING_UPDATE
        assert session.get(Job, job.id).lease_owner == "worker-b"


def test_a_stopping_worker_hands_back_what_outlasts_its_grace(services, drivers, monkeypatch):
    """Stopped (SIGTERM) with a flow still running past ``grace``, a worker releases the
    job: another worker runs it at once and it is not counted as a crash; the first flow
    stops at its next write, which is rolled back."""
    lb_id = _pending_lb(services)
    started, release, ended = threading.Event(), threading.Event(), threading.Event()

    def slow(ctx: FlowContext) -> None:
        started.set()
        release.wait(30)
        try:
            with ctx.write() as session:
                session.get(LoadBalancer, lb_id).name = "written by the stopped worker"
        finally:
            ended.set()
    monkeypatch.setitem(FLOWS, "change", lambda lb_id, targets: [Step("slow", slow)])
    first = Worker(services.settings, services.db, drivers)
    first.start()
    assert started.wait(10)
    first.stop(grace=0.2)
    with services.db.read() as session:
        job = session.scalars(select(Job)).one()
        assert (job.lease_owner, job.attempts) == (None, 0)
    release.set()
    assert ended.wait(10)
    with services.db.read() as session:
        assert session.get(LoadBalancer, lb_id).name is None  # its write was refused
    monkeypatch.setitem(FLOWS, "change", lambda lb_id, targets: [
        lifecycle.settle(lb_id, targets)])
    second = Worker(services.settings, services.db, drivers)
    job = jobs.claim(services.db, second.owner, MINUTE)
    assert job.attempts == 1
    second.run_job(job)
    with services.db.read() as session:
        assert session.get(LoadBalancer, lb_id).provisioning_status == constants.ACTIVE
        assert session.query(Job).count() == 0


def test_every_action_has_its_flow_and_a_typed_function_with_the_flows_parameters():
    assert set(FLOWS) == set(Action)
    for action in Action:
        queue = getattr(actions, action.value)
        queued = list(inspect.signature(queue).parameters)
        assert queued[0] == "session"
        assert queued[1:] == list(inspect.signature(FLOWS[action]).parameters), action


def test_a_typed_function_puts_its_action_and_arguments_on_the_board(services):
    with services.db.write() as session:
        actions.delete_load_balancer(session, lb_id="lb-1", cascade=True)
    with services.db.read() as session:
        job = session.scalars(select(Job)).one()
    assert (job.action, job.payload) == ("delete_load_balancer",
                                         {"lb_id": "lb-1", "cascade": True})


@pytest.mark.parametrize("action, payload", [
    ("resize_load_balancer", {}),  # queued by a newer version
    ("change", {"target": {}}),  # arguments the flow does not take
])
def test_a_job_no_flow_can_run_marks_its_objects_error(services, drivers, action, payload):
    lb_id = _pending_lb(services)
    with services.db.write() as session:
        session.query(Job).delete()
        pool = Pool(load_balancer_id=lb_id, protocol="HTTP", lb_algorithm="ROUND_ROBIN",
                    provisioning_status=constants.PENDING_CREATE,
                    operating_status=constants.OFFLINE)
        session.add(pool)
        session.flush()
        pool_id = pool.id
        session.add(Job(action=action, payload={"lb_id": lb_id, **payload}))
    worker = Worker(services.settings, services.db, drivers)
    worker.run_job(jobs.claim(services.db, worker.owner, MINUTE))
    with services.db.read() as session:
        assert session.get(LoadBalancer, lb_id).provisioning_status == constants.ERROR
        assert session.get(Pool, pool_id).provisioning_status == constants.ERROR
        assert session.query(Job).count() == 0


def test_an_amphora_job_no_flow_can_run_marks_the_amphora_error(services, drivers):
    with services.db.write() as session:
        session.add(Amphora(id="amp-1", status=constants.PENDING_CREATE))
        session.add(Job(action="build_spare", payload={"amphora": "amp-1"}))  # wrong name
        session.add(Job(action="build_spare", payload={"amphora_id": "amp-1", "x": 1}))
    worker = Worker(services.settings, services.db, drivers)
    worker.run_job(jobs.claim(services.db, worker.owner, MINUTE))  # names no amphora
    with services.db.read() as session:
        assert session.get(Amphora, "amp-1").status == constants.PENDING_CREATE
    worker.run_job(jobs.claim(services.db, worker.owner, MINUTE))
    with services.db.read() as session:
        assert session.get(Amphora, "amp-1").status == constants.ERROR
        assert session.query(Job).count() == 0


def test_a_wake_up_wakes_one_waiting_thread_and_is_kept_when_none_waits():
    wakeup = jobs.Wakeup()
    woken: list[str] = []

    def wait(name: str) -> None:
        wakeup.wait(30)
        woken.append(name)
    threads = [threading.Thread(target=wait, args=(f"t{index}",)) for index in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # all three wait
    wakeup.notify_local()
    for thread in threads:
        thread.join(0.5)
    assert len(woken) == 1, woken  # the others still wait
    wakeup.notify_all_local()
    for thread in threads:
        thread.join(10)
    assert len(woken) == 3
    wakeup.notify_local()  # nobody waits: the next one to wait does not sleep
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (wakeup.wait(30), done.set()))
    waiter.start()
    assert done.wait(10)
    waiter.join()


def test_one_job_wakes_one_flow_thread_and_a_burst_is_shared_without_a_poll(
        services, drivers, monkeypatch):
    """A job costs one look at the board per thread that takes a job (plus the sibling
    that thread wakes), not one per idle thread; jobs queued together all run at once,
    each thread that claims one waking the next (the poll is set far beyond the test)."""
    services.settings.controller_worker.job_poll_interval = 120.0
    services.settings.controller_worker.flow_threads = 4
    ran: list[str] = []
    monkeypatch.setitem(FLOWS, "change", lambda lb_id, targets: [
        Step("run", lambda ctx: ran.append(lb_id))])
    looks = []
    claim = jobs.claim
    monkeypatch.setattr(jobs, "claim", lambda *args, **kwargs: looks.append(1) or claim(
        *args, **kwargs))
    worker = Worker(services.settings, services.db, drivers, services.wakeup)
    worker.start()
    try:
        # Each thread looked once at start, and waits (a poll would take 120 s).
        wait_for(lambda: {"looked": len(looks) >= 4}, "looked", True)
        time.sleep(0.2)
        looks.clear()
        _enqueue(services, lb_id="one", targets={})
        services.wakeup.notify()
        wait_for(lambda: {"ran": "one" in ran}, "ran", True)
        time.sleep(0.2)  # any other thread woken would have looked by now
        assert len(looks) <= 3, looks  # taker, the sibling it woke, the taker's next look
        with services.db.write() as session:
            for index in range(6):
                jobs.enqueue(session, "change", lb_id=f"burst-{index}", targets={})
        services.wakeup.notify()
        wait_for(lambda: {"ran": len(ran)}, "ran", 7)
        assert sorted(ran) == [*(f"burst-{index}" for index in range(6)), "one"]
    finally:
        worker.stop(grace=5)
