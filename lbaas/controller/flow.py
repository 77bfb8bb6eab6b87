"""A flow: an ordered list of steps, each with an ``execute`` and an optional ``revert``.

When a step fails, the steps that ran (the failing one included) are reverted in reverse
order, then the error is raised. A revert that fails is logged and the others still run,
so a flow never stops half-way through putting things back.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lbaas.config import Settings
from lbaas.db.engine import Database
from lbaas.drivers import Drivers

LOG = logging.getLogger(__name__)


@dataclass
class FlowContext:
    """What every step gets: the services and a store for values passed between steps."""

    db: Database
    drivers: Drivers
    settings: Settings
    store: dict[str, Any] = field(default_factory=dict)


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
            started.append(step)
            began = time.perf_counter()
            step.execute(context)
            LOG.debug("flow %s: step %s took %.3f s", name, step.name, time.perf_counter() - began)
    except Exception:
        LOG.exception("flow %s failed at step %s; reverting", name, started[-1].name)
        for step in reversed(started):
            if step.revert is None:
                continue
            try:
                step.revert(context)
            except Exception:
                LOG.exception("flow %s: revert of step %s failed", name, step.name)
        raise
