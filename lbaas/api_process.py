"""The API in a process of its own under ``lbaas up``, as the systemd units run it.

With the API, the worker and the health manager under one interpreter lock, every
request waited for the others: with 1,000 amphorae heartbeating, a list of 1,000 load
balancers took 300 ms instead of 50, and four clients creating at once waited for the
worker's flows. ``lbaas up`` therefore forks the API off once its database is ready and
before it starts a thread (a fork of a threaded process may inherit a lock some thread
held), closing its pooled connections first (an SQLite connection must not cross a
fork). Jobs the API queues wake the worker through the host's job bell
(``lbaas.controller.wakeups.LocalBell``).

The API process dies with ``lbaas up`` (``PR_SET_PDEATHSIG``), even when that is killed,
so a restarted ``lbaas up`` finds its port free. If the API process dies alone,
``lbaas up`` stops its other services and exits with status 1: its restart is the
supervisor's (systemd, or whoever started ``lbaas up``), as a crash of the whole
process was before.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import threading

from lbaas import service
from lbaas.config import Settings

LOG = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
GROUP_SIGNAL_GRACE = 0.5  # s


class ApiProcess:
    """The forked API process, seen from ``lbaas up``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.status: int | None = None  # os.waitpid's, once it exited
        self.exited = threading.Event()

    @classmethod
    def fork(cls, services: service.Services, sock: socket.socket,
             stopped: threading.Event) -> ApiProcess:
        """Serve the API on ``sock`` from a child process, and set ``stopped`` when it
        exits; this process keeps no copy of the socket."""
        services.db.engine.dispose()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            _serve(services.settings, sock, parent)  # never returns
        sock.close()
        process = cls(pid)
        threading.Thread(target=process._reap, args=(stopped,), name="api-process",
                         daemon=True).start()
        return process

    def _reap(self, stopped: threading.Event) -> None:
        _, self.status = os.waitpid(self.pid, 0)
        self.exited.set()
        stopped.set()

    def describe_exit(self) -> str:
        assert self.status is not None
        if os.WIFSIGNALED(self.status):
            return f"killed by {signal.Signals(os.WTERMSIG(self.status)).name}"
        return f"exited with status {os.waitstatus_to_exitcode(self.status)}"

    def signal(self, signum: int) -> None:
        if not self.exited.is_set():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def stop(self, timeout: float) -> None:
        """SIGTERM (uvicorn finishes the requests in flight), SIGKILL after ``timeout``."""
        self.signal(signal.SIGTERM)
        if not self.exited.wait(timeout):
            LOG.warning("the API process did not stop within %.0f s: killing it", timeout)
            self.signal(signal.SIGKILL)
            self.exited.wait()


def _serve(settings: Settings, sock: socket.socket, parent: int) -> None:
    """The child: the API until SIGINT or SIGTERM, then ``_exit`` (the parent's context
    managers and pooled objects are not this process's to close)."""
    code = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(1)
        services = service.open_services(settings, upgrade=False)
        service.serve_api(services, sock)
        code = 0
    except BaseException:
        LOG.exception("the API process failed")
    finally:
        logging.shutdown()
        os._exit(code)


def died_alone(api: ApiProcess, signalled: threading.Event) -> bool:
    """Whether the API process exited without a SIGINT or SIGTERM to ``lbaas up`` (one
    sent to the whole process group may reach the child first); said in the log."""
    if not api.exited.is_set() or signalled.wait(GROUP_SIGNAL_GRACE):
        return False
    LOG.error("the API process %s; stopping lbaas", api.describe_exit())
    return True
