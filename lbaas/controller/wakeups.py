"""How a job queued in one process wakes the workers of others at once.

- Within one process the ``jobs.Wakeup`` event does it.
- On one host, whatever the database (``lbaas up``'s API process, or the systemd units):
  each worker process binds a Unix datagram socket in ``<state_path>/job-bells/``, and
  ``LocalBell`` sends every one of them a byte once a job is committed.
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
import os
import secrets
import socket
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
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


class LocalBell:
    """Rings the workers of the other processes of this host, and listens for their rings.

    Sockets are named through ``/proc/self/fd/<directory>`` so that a deep
    ``state_path`` cannot exceed a socket path's 108 bytes. A socket whose process died
    refuses the ring and is removed; one whose queue is full has been rung already. A
    directory this process cannot make or open leaves the bell silent: the workers then
    find jobs by polling, as without it.
    """

    SUFFIX = ".sock"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._warned = False
        self._name: str | None = None
        self._dir_fd: int | None = None  # held while listening
        self._listening: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def _open_directory(self) -> int | None:
        """The directory, opened (made first only when missing: a ring is on every
        request that queues a job)."""
        try:
            try:
                return os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                return os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                LOG.warning("job bell %s: %s; workers of other processes will poll for jobs",
                            self.directory, exc.strerror)
            return None

    def ring(self) -> None:
        """A byte to every other listening process; never blocks (a few syscalls a job)."""
        dir_fd = self._open_directory()
        if dir_fd is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
                sender.setblocking(False)
                for name in os.listdir(dir_fd):
                    if not name.endswith(self.SUFFIX) or name == self._name:
                        continue
                    try:
                        sender.sendto(b"!", f"/proc/self/fd/{dir_fd}/{name}")
                    except ConnectionRefusedError:  # nobody bound to it any more
                        _remove(name, dir_fd)
                    except OSError:  # a full queue (rung already), or gone meanwhile
                        pass
        finally:
            os.close(dir_fd)

    def listen(self, wakeup: Wakeup) -> None:
        """Wake ``wakeup`` (this process's workers) on every ring of another process."""
        self._dir_fd = self._open_directory()
        if self._dir_fd is None:
            return
        self._name = f"{os.getpid()}-{secrets.token_hex(4)}{self.SUFFIX}"
        self._listening = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._listening.bind(f"/proc/self/fd/{self._dir_fd}/{self._name}")
        self._thread = threading.Thread(target=self._receive, args=(wakeup,),
                                        name="job-bell-local", daemon=True)
        self._thread.start()
        wakeup.notify_local()  # a job queued before this process listened

    def _receive(self, wakeup: Wakeup) -> None:
        assert self._listening is not None
        while not self._stopped.is_set():
            try:
                self._listening.recv(64)
            except OSError:
                return
            wakeup.notify_local()

    def stop(self) -> None:
        """Stop listening (``shutdown`` wakes the receiving thread) and remove the socket."""
        self._stopped.set()
        if self._listening is None or self._dir_fd is None:
            return
        self._listening.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)
        self._listening.close()
        if self._name is not None:
            _remove(self._name, self._dir_fd)
        os.close(self._dir_fd)
        self._dir_fd = None


def _remove(name: str, dir_fd: int) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
