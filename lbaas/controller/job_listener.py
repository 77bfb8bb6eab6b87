"""Wakes a worker when another process queues a job, on PostgreSQL (``LISTEN``).

The API's transaction that adds a job also sends ``NOTIFY lbaas_jobs``
(``jobs.enqueue``), delivered when it commits. A worker in another process, or on another
host, listens on its own connection and starts at once instead of at its next poll. A
lost connection is opened again (the worker polls meanwhile, so no job waits for ever).
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from lbaas.controller.jobs import CHANNEL, Wakeup
from lbaas.db.engine import Database

LOG = logging.getLogger(__name__)
RECONNECT_DELAY = 1.0


class JobListener:
    def __init__(self, db: Database, wakeup: Wakeup) -> None:
        self.db = db
        self.wakeup = wakeup
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-listener", daemon=True)

    @staticmethod
    def applies(db: Database) -> bool:
        return db.engine.dialect.name == "postgresql"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:
                LOG.warning("job listener: %s; listening again in %.0f s", exc, RECONNECT_DELAY)
                self._stop.wait(RECONNECT_DELAY)

    def _listen(self) -> None:
        raw = self.db.engine.raw_connection()
        try:
            connection: Any = raw.driver_connection
            connection.autocommit = True
            connection.execute(f"LISTEN {CHANNEL}")
            self.wakeup.notify()  # a job queued while nobody listened
            while not self._stop.is_set():
                for _ in connection.notifies(timeout=1.0, stop_after=1):
                    self.wakeup.notify()
        finally:
            raw.invalidate()  # a LISTENing session never goes back to the pool
