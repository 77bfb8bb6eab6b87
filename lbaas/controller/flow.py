"""A flow: an ordered list of steps, each with an ``execute`` and an optional ``revert``.

When a step fails, the steps that ran (the failing one included) are reverted in reverse
order, then the error is raised. A revert that fails is logged and the others still run,
so a flow never stops half-way through putting things back.

Every step is written to be run again: a worker that takes over the job of a dead one
runs the flow from the start, and each step looks at what exists (rows, namespaces,
ports) and does only what is missing. What a step must remember for the steps after it
or for a revert (the amphorae it built, the ones it retired) goes in ``ctx.store``, which
is saved with the job in the same transaction as the rows it names (``ctx.write()``).
A worker that lost its job's lease stops at once, without reverting: the job is another
worker's now.
"""
from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from lbaas import crashpoint
from lbaas.config import Settings
from lbaas.controller.jobs import Lease, LeaseLost
from lbaas.db.engine import Database
from lbaas.drivers import Drivers

LOG = logging.getLogger(__name__)


@dataclass
class FlowContext:
    """What every step gets: the services, the job's lease (None outside a job), and a
    store for values passed between steps (the job's saved state, or part of it)."""

    db: Database
    drivers: Drivers
    settings: Settings
    store: dict[str, Any] = field(default_factory=dict)
    lease: Lease | None = None
    step: str = ""  # "<flow>:<step>" running now, for crash points inside a step
    failure: str = ""  # why the flow is being reverted, for the log line of its ERROR

    @contextlib.contextmanager
    def write(self, *, final: bool = False) -> Iterator[Session]:
        """A write transaction that commits only while the job is still this worker's, and
        saves the store with it; ``final``: the flow's last write, which also ends the job."""
        with self.db.write() as session:
            yield session
            if self.lease is not None:
                (self.lease.end if final else self.lease.keep)(session)
        if final and self.lease is not None:
            self.lease.ended = True  # committed: the job is off the board
    def child(self, key: str) -> FlowContext:
        """A context for a flow run inside this one, with its own part of the store."""
        return FlowContext(db=self.db, drivers=self.drivers, settings=self.settings,
                           store=self.store.setdefault(key, {}), lease=self.lease)

    def check_lease(self) -> None:
        if self.lease is not None:
            self.lease.check()

    def crashpoint(self, point: str) -> None:
        """A crash point inside the running step: ``<flow>:<step>/<point>``."""
        crashpoint.reached(f"{self.step}/{point}")


StepFunction = Callable[[FlowContext], None]


@dataclass(frozen=True)
class Step:
    name: str
    execute: StepFunction
    revert: StepFunction | None = None


def run(name: str, steps: list[Step], context: FlowContext) -> None:
    """Run ``steps`` in order; on failure revert what ran and raise."""
    started: list[Step] = []
    try:
        for step in steps:
            context.check_lease()
            context.step = f"{name}:{step.name}"
            crashpoint.reached(context.step)
            started.append(step)
            began = time.perf_counter()
            step.execute(context)
            LOG.debug("flow %s: step %s took %.3f s", name, step.name, time.perf_counter() - began)
    except LeaseLost:
        LOG.warning("flow %s: another worker took the job over; stopping here", name)
        raise
    except Exception as exc:
        LOG.warning("flow %s failed at step %s (%s); reverting", name, started[-1].name,
                    exc, exc_info=LOG.isEnabledFor(logging.DEBUG))
        context.failure = f"{started[-1].name}: {exc}"
        revert(name, started, context)
        raise


def revert(name: str, steps: list[Step], context: FlowContext) -> None:
    """Revert ``steps`` in reverse order; a revert that fails is logged, the others run.
    Reverts look at what exists, so reverting a step that never ran is harmless."""
    for step in reversed(steps):
        if step.revert is None:
            continue
        try:
            step.revert(context)
        except LeaseLost:
            LOG.warning("flow %s: another worker took the job over while reverting", name)
            raise
        except Exception:
            LOG.exception("flow %s: revert of step %s failed", name, step.name)
