"""How a job queued in one process wakes the workers of others at once.

- Within one process (``lbaas up``) the ``jobs.Wakeup`` event does it.
- PostgreSQL: the transaction that adds a job also sends ``NOTIFY lbaas_jobs``
  (``jobs.enqueue``), delivered when it commits; each worker process LISTENs on a
  connection of its own (``PostgresListener``).
- RabbitMQ, with ``[DEFAULT] transport_url`` (upstream's option, for MariaDB, which has
  no NOTIFY): once the job is committed, a message on the fanout exchange ``lbaas_jobs``
  reaches a queue of every worker process (``RabbitBell``). The message only says "look";
  the job itself is always read from the database, so a lost message costs a poll.
- Otherwise a worker in another process finds the job at its next poll
  (``[controller_worker] job_poll_interval``).

A lost connection is opened again; meanwhile the workers poll, so no job waits for ever.
"""
from __future__ import annotations

import logging
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any

from lbaas.controller.jobs import CHANNEL, Wakeup
from lbaas.db.engine import Database

LOG = logging.getLogger(__name__)
RECONNECT_DELAY = 1.0


class _Loop:
    """A daemon thread running ``body`` again (after RECONNECT_DELAY) until stopped."""

    def __init__(self, name: str, body: Callable[[], None]) -> None:
        self.body = body
        self.stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self._thread.ident is not None:  # started
            self._thread.join(5)

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.body()
            except Exception as exc:
                LOG.warning("%s: %s; trying again in %.0f s", self._thread.name, exc,
                            RECONNECT_DELAY)
                self.stopped.wait(RECONNECT_DELAY)


class PostgresListener:
    """LISTENs for the jobs' NOTIFY and wakes this process's workers."""

    def __init__(self, db: Database, wakeup: Wakeup) -> None:
        self.db = db
        self.wakeup = wakeup
        self._loop = _Loop("job-listener", self._listen)

    @staticmethod
    def applies(db: Database) -> bool:
        return db.engine.dialect.name == "postgresql"

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def _listen(self) -> None:
        raw = self.db.engine.raw_connection()
        try:
            connection: Any = raw.driver_connection
            connection.autocommit = True
            connection.execute(f"LISTEN {CHANNEL}")
            self.wakeup.notify_local()  # a job queued while nobody listened
            while not self._loop.stopped.is_set():
                for _ in connection.notifies(timeout=1.0, stop_after=1):
                    self.wakeup.notify_local()
        finally:
            raw.invalidate()  # a LISTENing session never goes back to the pool


def kombu_url(transport_url: str) -> str:
    """Upstream's ``rabbit://user:pw@host1:5672,user:pw@host2:5672/vhost?ssl=1`` as kombu's
    failover list ``amqp://user:pw@host1:5672/vhost;amqp://...`` (ssl as a query)."""
    parsed = urllib.parse.urlsplit(transport_url)
    if parsed.scheme not in ("rabbit", "amqp"):
        raise ValueError(f"[DEFAULT] transport_url {parsed.scheme}://... is not supported; "
                         "use rabbit://user:password@host:5672/vhost")
    hosts = parsed.netloc.split(",")
    query = f"?{parsed.query}" if parsed.query else ""
    return ";".join(f"amqp://{host}{parsed.path or '/'}{query}" for host in hosts)


class RabbitBell:
    """Rings (publishes) after jobs are queued, and listens for the rings of others.

    ``ring`` never blocks the caller (an API request): a publisher thread sends one
    message for any number of rings since its last one.
    """

    EXCHANGE = CHANNEL

    def __init__(self, transport_url: str) -> None:
        import kombu  # imported here: only deployments with a transport_url need it

        self._kombu = kombu
        self.url = kombu_url(transport_url)
        self.exchange = kombu.Exchange(self.EXCHANGE, type="fanout", durable=False)
        self._rung = threading.Event()
        self._publisher = _Loop("job-bell", self._publish)
        self._listener: _Loop | None = None

    def start(self) -> None:
        self._publisher.start()

    def ring(self) -> None:
        self._rung.set()

    def listen(self, wakeup: Wakeup) -> None:
        """Wake ``wakeup`` (this process's workers) on every ring, from any process."""
        self._listener = _Loop("job-bell-listener", lambda: self._consume(wakeup))
        self._listener.start()

    def stop(self) -> None:
        for loop in (self._publisher, self._listener):
            if loop is not None:
                loop.stop()

    def _publish(self) -> None:
        with self._kombu.Connection(self.url, connect_timeout=5) as connection:
            producer = connection.Producer()
            while not self._publisher.stopped.is_set():
                if self._rung.wait(1.0):
                    self._rung.clear()
                    producer.publish({}, exchange=self.exchange, routing_key="",
                                     declare=[self.exchange], retry=False)

    def _consume(self, wakeup: Wakeup) -> None:
        assert self._listener is not None
        with self._kombu.Connection(self.url, connect_timeout=5) as connection:
            queue = self._kombu.Queue(exchange=self.exchange, exclusive=True, auto_delete=True)

            def woken(_body: Any, message: Any) -> None:
                message.ack()
                wakeup.notify_local()
            with connection.Consumer(queue, callbacks=[woken]):
                wakeup.notify_local()  # a job queued while nobody listened
                while not self._listener.stopped.is_set():
                    try:
                        connection.drain_events(timeout=1.0)
                    except TimeoutError:
                        continue
