"""Fleet upgrade: every load balancer whose amphorae do not all run the image their tag
selects now (a new build was tagged) is failed over, batch after batch.

A load balancer's failover builds each replacement from the newest image of its tag, one
amphora at a time, the one not holding the VIP first (lbaas.controller.flows.failover), so
an ACTIVE_STANDBY pair keeps serving throughout. The rollout goes one batch at a time:
the next batch starts only once every load balancer of this one is ACTIVE again, all its
amphorae run the wanted image, and (when a health manager is hearing amphorae at all)
each sent a heartbeat since its batch began. The first failure stops the rollout (a load
balancer that is not ACTIVE to begin with, one that went ERROR, one still outdated after
its failover, or a batch taking longer than the timeout), saying which and why; what was
upgraded stays upgraded, and running the command again carries on.
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from lbaas import constants
from lbaas.config import Settings
from lbaas.controller import actions
from lbaas.controller.tasks import image
from lbaas.controller.tasks.amphora import live_amphorae
from lbaas.db import status
from lbaas.db.engine import Database
from lbaas.db.models import ROW_ONLY, AmphoraHealth, LoadBalancer, utcnow

POLL_SECONDS = 0.5


class UpgradeStopped(Exception):
    """The rollout stopped; the message says at which load balancer and why."""


@dataclass(frozen=True)
class Outdated:
    """A load balancer whose amphorae are not all on ``wanted`` (None: the host's binaries)."""

    lb_id: str
    name: str
    images: tuple[str | None, ...]  # its amphorae's images now
    wanted: str | None
    status: str = constants.ACTIVE  # its provisioning status when listed


def outdated(settings: Settings, db: Database, lb_ids: Sequence[str] = ()) -> list[Outdated]:
    """The load balancers (of ``lb_ids``; none given: all) that an upgrade would fail over,
    oldest first. An id that names no live load balancer is an UpgradeStopped."""
    with db.read() as session:
        query = select(LoadBalancer.id, LoadBalancer.name,
                       LoadBalancer.provisioning_status).where(
            LoadBalancer.provisioning_status != constants.DELETED)
        if lb_ids:
            query = query.where(LoadBalancer.id.in_(lb_ids))
        balancers = session.execute(query.order_by(LoadBalancer.created_at,
                                                   LoadBalancer.id)).all()
        unknown = sorted(set(lb_ids) - {lb_id for lb_id, _, _ in balancers})
        if unknown:
            raise UpgradeStopped(f"no load balancer {', '.join(unknown)}")
        images = {lb_id: tuple(amphora.image_id for amphora in live_amphorae(session, lb_id))
                  for lb_id, _, _ in balancers}
    found = []
    for lb_id, name, provisioning in balancers:
        wanted = image.build_for(settings, db, lb_id).image_id
        if any(current != wanted for current in images[lb_id]):
            found.append(Outdated(lb_id, name or "", images[lb_id], wanted, provisioning))
    return found


def upgrade(settings: Settings, db: Database, targets: Sequence[Outdated], batch: int,
            notify: Callable[[], None], progress: Callable[[str], None],
            timeout: float = 600.0) -> None:
    """Fail ``targets`` over ``batch`` at a time (see the module); UpgradeStopped at the
    first failure."""
    batches = [list(targets[start:start + batch]) for start in range(0, len(targets), batch)]
    for number, members in enumerate(batches, start=1):
        began = utcnow()
        for target in members:
            _start(db, target)
        notify()
        progress(f"batch {number}/{len(batches)}: failing over "
                 + ", ".join(_named(target) for target in members))
        _wait(settings, db, members, began, timeout)
        progress(f"batch {number}/{len(batches)}: done, "
                 + ", ".join(f"{_named(t)} on {_image(t.wanted)}" for t in members))


def _start(db: Database, target: Outdated) -> None:
    with db.write() as session:
        if not status.test_and_set(session, target.lb_id, constants.PENDING_UPDATE,
                                   (constants.ACTIVE,)):
            lb = session.get(LoadBalancer, target.lb_id, options=ROW_ONLY)
            now = lb.provisioning_status if lb else constants.DELETED
            what = ("wait for the change running on it to finish" if now.startswith("PENDING")
                    else "fail it over (openstack loadbalancer failover) or delete it")
            raise UpgradeStopped(f"load balancer {_named(target)} is {now}, not ACTIVE: "
                                 f"{what}, then run the upgrade again")
        actions.failover_load_balancer(session, lb_id=target.lb_id)


def _wait(settings: Settings, db: Database, members: list[Outdated], began: dt.datetime,
          timeout: float) -> None:
    """Until every load balancer of the batch is ACTIVE, on its image and heard from."""
    deadline = time.monotonic() + timeout
    waiting = {target.lb_id: target for target in members}
    while waiting:
        for lb_id, target in list(waiting.items()):
            if _finished(settings, db, target, began):
                del waiting[lb_id]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise UpgradeStopped(f"{', '.join(map(_named, waiting.values()))} not ACTIVE and "
                                 f"serving on the new image after {timeout:.0f} s; the rollout "
                                 "stopped (see the worker's log)")
        time.sleep(POLL_SECONDS)


def _finished(settings: Settings, db: Database, target: Outdated, began: dt.datetime) -> bool:
    with db.read() as session:
        lb = session.get(LoadBalancer, target.lb_id, options=ROW_ONLY)
        now = lb.provisioning_status if lb else constants.DELETED
        if now in (constants.ERROR, constants.DELETED, constants.PENDING_DELETE):
            raise UpgradeStopped(f"load balancer {_named(target)} went {now} during its "
                                 "failover; the rollout stopped (see the worker's log)")
        if now != constants.ACTIVE:
            return False
        amphorae = live_amphorae(session, target.lb_id)
        hearing = session.scalar(select(func.max(AmphoraHealth.last_update))) is not None
        heard = {row.amphora_id for row in session.scalars(select(AmphoraHealth).where(
            AmphoraHealth.amphora_id.in_([a.id for a in amphorae]),
            AmphoraHealth.last_update >= began))}
    if hearing and any(amphora.id not in heard for amphora in amphorae):
        return False  # not serving yet as far as the health manager knows
    still = [a.id for a in amphorae if a.image_id != target.wanted]
    if still:
        raise UpgradeStopped(f"load balancer {_named(target)} is ACTIVE but amphorae "
                             f"{', '.join(still)} are not on image {_image(target.wanted)} "
                             "(was the tag moved meanwhile?); the rollout stopped")
    return True


def _named(target: Outdated) -> str:
    return f"{target.lb_id} ({target.name})" if target.name else target.lb_id


def _image(image_id: str | None) -> str:
    return image_id or "the host's binaries"
