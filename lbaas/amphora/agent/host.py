"""One agent process per host serving every amphora on it (``[haproxy_amphora]
agent_launcher = host``).

An agent process per amphora costs 9 to 16 MB even when forked from a preloaded parent
(Python's reference counting writes to the pages it shares); one process serving them
all costs each amphora only what is its own: a few threads, its sockets and its TLS
context. Each amphora is served as before: from a thread that entered the amphora's
network namespace (``setns``) and started there what its own agent would
(``AgentServices``): the API on its management address, with its own certificate and
client CA, its heartbeats signed with its own key, its log socket. Its threads and the
commands they run (haproxy, keepalived, ip, nft) inherit that namespace, so the
amphora's API, state and processes are what they were; only the Python heap is shared.
Its log lines go to its own ``agent.log``: a handler picks the file by the namespace of
the thread that logs.

What it serves is kept on disk: a marker file (``host-agent.json``, naming the
namespace) in each amphora's directory. A host agent that starts serves every directory
that has one. It stops serving an amphora whose namespace went as soon as its name is
deleted (an inotify watch: a namespace whose name is gone would otherwise live on, with
its addresses, as long as the agent's threads are in it), and every ``SWEEP_INTERVAL``
seconds it also lets go of one whose directory went and serves again one whose threads
died. The process is a small supervisor and the agent it forks: an agent that dies is
forked again within a second, and the amphorae it served are served again (their haproxy,
in processes of their own, serve on meanwhile); the supervisor holds the control socket,
so requests sent meanwhile wait rather than fail.

The compute driver talks to it over a Unix socket (0600, root), one JSON line per request:
``{"hello": true}`` (the hash of the source it runs), ``{"serve": {"directory", "netns"}}``
(answers once the amphora's API listens), ``{"forget": {"directory"}}``.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import faulthandler
import json
import logging
import logging.handlers
import os
import resource
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lbaas.amphora.agent.config import AgentConfig
from lbaas.amphora.agent.host_process import (
    enter_namespace,
    listen,
    namespace_inode,
    source_hash,
)
from lbaas.amphora.agent.loop import Loop
from lbaas.amphora.agent.services import AgentServices

LOG = logging.getLogger(__name__)
MARKER = "host-agent.json"
CONFIG_NAME = "amphora-agent.conf"
SWEEP_INTERVAL = 10.0
START_TIMEOUT = 30.0
# Each amphora has three threads at rest (API, heartbeats, logs) and one per request: a
# thousand amphorae make thousands of threads. Their stacks are reserved, not used, but a
# smaller reservation keeps the address space in proportion.
THREAD_STACK_SIZE = 1024 * 1024
RESTART_DELAY = 1.0
IN_DELETE = 0x200  # <sys/inotify.h>


class AmphoraLogs(logging.Handler):
    """Sends each record to the log of the amphora whose namespace the logging thread is
    in; the host agent's own records (threads in the host's namespace) to ``fallback``."""

    def __init__(self, fallback: logging.Handler) -> None:
        super().__init__()
        self.fallback = fallback
        self._handlers: dict[int, logging.Handler] = {}

    def add(self, inode: int, handler: logging.Handler) -> None:
        self._handlers[inode] = handler

    def remove(self, inode: int) -> None:
        handler = self._handlers.pop(inode, None)
        if handler is not None:
            handler.close()

    def handle(self, record: logging.LogRecord) -> bool:
        try:
            target = self._handlers.get(namespace_inode(), self.fallback)
        except OSError:
            target = self.fallback
        return bool(target.handle(record))

    def emit(self, record: logging.LogRecord) -> None:  # handle() does it all
        self.handle(record)


def watch_deletions(directory: Path, deleted: Callable[[], None]) -> None:
    """Call ``deleted`` from a thread whenever a name in ``directory`` is removed."""
    libc = ctypes.CDLL(None, use_errno=True)
    descriptor = libc.inotify_init1(os.O_CLOEXEC)
    if descriptor < 0 or libc.inotify_add_watch(descriptor, os.fsencode(directory),
                                                IN_DELETE) < 0:
        error = ctypes.get_errno()
        raise OSError(error, f"cannot watch {directory}: {os.strerror(error)}")

    def run() -> None:
        while True:
            os.read(descriptor, 64 * 1024)  # one or more events: a sweep sees them all
            deleted()

    threading.Thread(target=run, name=f"watch {directory}", daemon=True).start()


class ServedAmphora:
    """One amphora's agent services, run by a thread in the amphora's namespace."""

    def __init__(self, directory: Path, netns: str, logs: AmphoraLogs) -> None:
        self.directory = directory
        self.netns = netns
        self.logs = logs
        self.services: AgentServices | None = None
        self.error: BaseException | None = None
        self._inode: int | None = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"amphora-{directory.name}")

    def start(self) -> None:
        """Start serving; returns once the API listens (raises what stopped it)."""
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise TimeoutError(f"the agent of {self.directory} did not start in "
                               f"{START_TIMEOUT:.0f} s")
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            enter_namespace(self.netns)
            config = AgentConfig.load(self.directory / CONFIG_NAME)
            self._inode = namespace_inode()
            if config.log_file is not None:
                handler = logging.handlers.RotatingFileHandler(
                    config.log_file, maxBytes=config.log_max_bytes,
                    backupCount=config.log_backup_count)
                handler.setFormatter(self.logs.fallback.formatter)
                self.logs.add(self._inode, handler)
            self.services = AgentServices(config)
            self.services.start()
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            self.error = exc
            self._forget_log()
            self._ready.set()
            return
        self._ready.set()
        if self._stopping.is_set():  # given up on while it started (past START_TIMEOUT)
            self.services.stop()
            self._forget_log()
            return
        self.services.serve_forever()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stopping.set()
        if self.services is not None:
            self.services.stop()
        self._thread.join(10)
        self._forget_log()

    def _forget_log(self) -> None:
        if self._inode is not None:
            self.logs.remove(self._inode)


class HostAgent:
    """The amphorae this process serves, keyed by directory."""

    def __init__(self, amphorae_path: Path, logs: AmphoraLogs) -> None:
        self.amphorae_path = amphorae_path
        self.logs = logs
        self._served: dict[Path, ServedAmphora] = {}
        self._locks: dict[Path, threading.Lock] = {}
        self._watched: set[Path] = set()
        self._lock = threading.Lock()

    def _directory(self, value: str) -> Path:
        """An amphora directory under this host's amphorae path (never anything else)."""
        directory = Path(value).resolve()
        if directory.parent != self.amphorae_path or not directory.name:
            raise ValueError(f"{value} is not an amphora directory of {self.amphorae_path}")
        return directory

    def _lock_of(self, directory: Path) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(directory, threading.Lock())

    def serve(self, directory_name: str, netns: str) -> None:
        """Serve the amphora of ``directory`` in namespace ``netns``, unless served."""
        directory = self._directory(directory_name)
        with self._lock_of(directory):
            current = self._served.get(directory)
            if current is not None and current.alive() and current.netns == netns:
                return
            if current is not None:
                current.stop()
            marker = directory / MARKER
            marker.write_text(json.dumps({"netns": netns}) + "\n")
            served = ServedAmphora(directory, netns, self.logs)
            try:
                served.start()
            except BaseException:
                served.stop()
                self._served.pop(directory, None)
                raise
            self._served[directory] = served
        self._watch(Path(netns).parent)

    def _watch(self, directory: Path) -> None:
        with self._lock:
            if directory in self._watched:
                return
            self._watched.add(directory)
        try:
            watch_deletions(directory, self.sweep)
        except OSError as exc:  # the periodic sweep still lets go of them, later
            LOG.error("%s", exc)

    def forget(self, directory_name: str) -> None:
        """Stop serving the amphora of ``directory`` (its namespace may go then)."""
        directory = self._directory(directory_name)
        with self._lock_of(directory):
            (directory / MARKER).unlink(missing_ok=True)
            served = self._served.pop(directory, None)
            if served is not None:
                served.stop()
        with self._lock:
            lock = self._locks.get(directory)
            if lock is not None and not lock.locked():
                del self._locks[directory]

    def restore(self) -> None:
        """Serve every amphora with a marker (this process just started)."""
        if not self.amphorae_path.is_dir():
            return
        for marker in sorted(self.amphorae_path.glob(f"*/{MARKER}")):
            self._serve_again(marker)

    def _serve_again(self, marker: Path) -> None:
        try:
            netns = json.loads(marker.read_text())["netns"]
            if os.path.exists(netns):
                self.serve(str(marker.parent), netns)
        except (OSError, ValueError, KeyError) as exc:
            LOG.error("cannot serve the amphora of %s again: %s", marker.parent, exc)

    def sweep(self) -> None:
        """Stop serving amphorae whose directory or namespace went; serve again those
        whose threads died."""
        with self._lock:
            served = dict(self._served)
        for directory, amphora in served.items():
            if not directory.is_dir() or not os.path.exists(amphora.netns):
                LOG.info("the amphora of %s is gone: not serving it any more", directory)
                with contextlib.suppress(OSError):
                    self.forget(str(directory))
            elif not amphora.alive():
                LOG.warning("the agent threads of %s stopped: serving it again", directory)
                self._serve_again(directory / MARKER)

    def served(self) -> list[str]:
        with self._lock:
            return sorted(str(directory) for directory in self._served)


def _handler(agent: HostAgent, hashed: str) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            try:
                request = json.loads(self.rfile.readline() or b"{}")
                answer = _answer(agent, hashed, request)
            except Exception as exc:  # noqa: BLE001 - the caller reads why
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            self.wfile.write(json.dumps(answer).encode() + b"\n")

    return Handler


def _answer(agent: HostAgent, hashed: str, request: dict[str, Any]) -> dict[str, Any]:
    if request.get("hello"):
        return {"source_hash": hashed}
    if "serve" in request:
        agent.serve(request["serve"]["directory"], request["serve"]["netns"])
        return {"served": request["serve"]["directory"]}
    if "forget" in request:
        agent.forget(request["forget"]["directory"])
        return {"forgotten": request["forget"]["directory"]}
    if request.get("served"):
        return {"served": agent.served()}
    raise ValueError(f"unknown request {sorted(request)}")


class ControlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _serve(listener: socket.socket, amphorae_path: Path, log_path: Path) -> None:
    """The agent itself (in the supervisor's child)."""
    # `kill -USR1 <agent>`: every thread's stack into the console log, to see what an
    # amphora's threads wait for.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    own = logging.handlers.RotatingFileHandler(log_path, maxBytes=10 * 1024 * 1024,
                                               backupCount=2)
    own.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logs = AmphoraLogs(own)
    logging.basicConfig(level=logging.INFO, handlers=[logs])
    # Every amphora's sockets are this process's descriptors.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    threading.stack_size(THREAD_STACK_SIZE)
    agent = HostAgent(amphorae_path, logs)
    server = ControlServer(listener.getsockname(), _handler(agent, source_hash()),
                           bind_and_activate=False)
    server.socket.close()
    server.socket = listener

    def restore() -> None:  # beside the requests: serving an amphora twice is a no-op
        began = time.monotonic()
        agent.restore()
        LOG.info("host agent serving %d amphorae of %s (restored in %.1f s)",
                 len(agent.served()), amphorae_path, time.monotonic() - began)
        Loop("sweep", agent.sweep, SWEEP_INTERVAL).start()

    threading.Thread(target=restore, name="restore", daemon=True).start()
    server.serve_forever()


def _supervise(run: Any) -> None:
    """Fork ``run``, and fork it again whenever it dies, until SIGTERM (which stops it)."""
    child = 0

    def terminate(signum: int, frame: Any) -> None:
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)
        os._exit(0)

    signal.signal(signal.SIGTERM, terminate)
    while True:
        child = os.fork()
        if child == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                run()
            finally:
                os._exit(1)
        _, status = os.waitpid(child, 0)
        print(f"host agent {child} ended ({status:#x}); starting another", file=sys.stderr,
              flush=True)
        time.sleep(RESTART_DELAY)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lbaas.amphora.agent.host")
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--pid-file", type=Path, required=True)
    parser.add_argument("--amphorae", type=Path, required=True,
                        help="the directory of this host's amphorae")
    args = parser.parse_args(argv)
    args.pid_file.write_text(f"{os.getpid()}\n")
    log_path = args.socket.with_name("agent.log")
    # Made by the supervisor: an agent forked again takes it over, and requests sent
    # meanwhile wait in its backlog instead of being refused.
    listener = listen(args.socket)
    _supervise(lambda: _serve(listener, args.amphorae.resolve(), log_path))


if __name__ == "__main__":
    main()
