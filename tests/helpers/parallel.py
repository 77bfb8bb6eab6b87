"""The suite runs on several pytest-xdist workers at once; a test marked ``alone`` runs
while no other test of the run does.

Such a test measures time on a loaded machine (heartbeats of several controller processes
that must arrive within seconds): beside the other workers' tests it would fail for want
of CPU, not for a fault. Every test holds a share of the run's lock; an ``alone`` test
holds it whole. A gate in front of the lock lets an ``alone`` test that waits go first:
the tests already running finish, new ones wait until it is done.
"""
from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def _flocked(path: Path, mode: int) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def machine_share(run_directory: Path, alone: bool) -> Iterator[None]:
    """Hold the lock of the run whose workers share ``run_directory``: the whole of it
    if ``alone``, else a share."""
    gate, lock = run_directory / "alone.gate", run_directory / "alone.lock"
    with contextlib.ExitStack() as held:
        with _flocked(gate, fcntl.LOCK_EX):
            held.enter_context(_flocked(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH))
        yield
