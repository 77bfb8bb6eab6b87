"""A background loop that can be stopped (standard library only: the amphora agent's
heartbeat sender and the health manager's threads use it)."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

LOG = logging.getLogger(__name__)


class Loop:
    """Calls ``step`` on a daemon thread, ``interval`` seconds apart, until stopped; a
    step that raises is logged and the loop goes on."""

    def __init__(self, name: str, step: Callable[[], object], interval: float = 0.0,
                 first_wait: bool = True) -> None:
        self.name = name
        self.step = step
        self.interval = interval
        self.first_wait = first_wait
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        if self.first_wait and self._stop.wait(self.interval):
            return
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                LOG.exception("%s: a step failed; going on", self.name)
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
