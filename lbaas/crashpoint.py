"""Deliberate crashes, for the tests that kill a controller mid-flow.

``LBAAS_CRASH_AT`` (comma-separated shell patterns) names points at which this process
kills itself with SIGKILL when it reaches them: a real crash, leaving behind exactly what
an operator's ``kill -9`` would. Flows name a point before each step (``<flow>:<step>``)
and a few inside steps that make several resources (``<flow>:<step>/<point>``); the
compute driver names its own (``netns:<point>``).
Unset, as in any real deployment, nothing happens.
"""
from __future__ import annotations

import fnmatch
import logging
import os
import signal

LOG = logging.getLogger(__name__)


def reached(point: str) -> None:
    patterns = [p for p in os.environ.get("LBAAS_CRASH_AT", "").split(",") if p]
    if any(fnmatch.fnmatchcase(point, pattern) for pattern in patterns):
        LOG.warning("crash point %s reached: killing this process (LBAAS_CRASH_AT)", point)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), signal.SIGKILL)
