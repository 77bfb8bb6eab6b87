"""How the netns compute driver starts an amphora's agent (``[haproxy_amphora]
agent_launcher``): ``exec``, a new Python process per amphora; ``zygote``, a fork of a
preloaded parent per host (lbaas.amphora.agent.zygote), which shares most of its memory;
``host``, one agent process per host serving every amphora from its namespace
(lbaas.amphora.agent.host), which shares all of it.

The zygote and the host agent are started on first use, detached (they outlive the
controller process that started them, as agents do) with their socket and pid file
beside the amphorae's directory; one whose preloaded source differs from this code's is
replaced first. Processes of one host take turns starting them (a file lock), threads of
one process too.
"""
from __future__ import annotations

import abc
import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lbaas import filelock
from lbaas.amphora.agent import host, zygote
from lbaas.amphora.agent.host_process import source_hash

START_TIMEOUT = 10.0
# An agent's threads (HTTPS server, heartbeats, logs) each get a malloc arena of their own
# by default, pages that stay touched; one arena is plenty for what an agent allocates.
AGENT_ENVIRONMENT = {"MALLOC_ARENA_MAX": "1"}


class LauncherError(Exception):
    pass


class HostProcessLauncher(abc.ABC):
    """A process per host that the compute driver asks, over its Unix socket, to start
    amphorae's agents; ``module`` is what it runs."""

    module = ""
    suffix = ""

    def __init__(self, amphorae_path: Path, python: str) -> None:
        self.amphorae_path = amphorae_path
        base = amphorae_path.with_name(amphorae_path.name + self.suffix)
        self.socket_path = base / f"{self.suffix.lstrip('.')}.sock"
        self.pid_path = base / f"{self.suffix.lstrip('.')}.pid"
        self.python = python
        self._source = source_hash()
        self._lock = threading.Lock()

    def arguments(self) -> list[str]:
        return []

    @abc.abstractmethod
    def start(self, namespace: str, directory: Path) -> object:
        """Have the agent of the amphora of ``directory`` run in ``namespace``."""

    def request(self, request: Mapping[str, object], what: str) -> dict[str, Any]:
        """Ask the process (started, or replaced, first); its answer, or LauncherError."""
        with self._lock, self._host_lock():
            if self._ask({"hello": True}, missing_ok=True) != {"source_hash": self._source}:
                self._replace()
        answer = self._ask(request)
        if "error" in answer:
            raise LauncherError(f"the {self.module} process could not {what}: "
                                f"{answer['error']}")
        return answer

    def stop(self) -> None:
        """Stop the process (the amphorae's haproxy and keepalived keep running)."""
        pid = self._pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        self.socket_path.unlink(missing_ok=True)
        self.pid_path.unlink(missing_ok=True)

    def _host_lock(self) -> contextlib.AbstractContextManager[None]:
        return filelock.held(self.socket_path.parent / "launcher.lock", directory_mode=0o700)

    def _ask(self, request: Mapping[str, object], missing_ok: bool = False) -> dict[str, Any]:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.settimeout(30)
                client.connect(str(self.socket_path))
                client.sendall(json.dumps(request).encode() + b"\n")
                with client.makefile("rb") as stream:
                    line = stream.readline()
        except OSError as exc:
            if missing_ok:
                return {}
            raise LauncherError(f"the {self.module} process at {self.socket_path} does not "
                                f"answer: {exc}") from exc
        answer = json.loads(line or b"{}")
        return answer if isinstance(answer, dict) else {}

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text())
            return pid if self.module.encode() in Path(
                f"/proc/{pid}/cmdline").read_bytes() else None
        except (OSError, ValueError):
            return None

    def _replace(self) -> None:
        """Stop a process of other code (or a dead one's files), start one of this code."""
        self.stop()
        log = self.socket_path.with_suffix(".log")
        with log.open("ab") as output:
            subprocess.run(["setsid", "-f", self.python, "-m", self.module, "--socket",
                            str(self.socket_path), "--pid-file", str(self.pid_path),
                            *self.arguments()],
                           stdin=subprocess.DEVNULL, stdout=output, stderr=output, check=True,
                           env={**os.environ, **AGENT_ENVIRONMENT})
        deadline = time.monotonic() + START_TIMEOUT
        while self._ask({"hello": True}, missing_ok=True) != {"source_hash": self._source}:
            if time.monotonic() > deadline:
                raise LauncherError(f"the {self.module} process did not start in "
                                    f"{START_TIMEOUT:.0f} s; see {log}")
            time.sleep(0.02)


class ZygoteLauncher(HostProcessLauncher):
    """Agents forked by the zygote: each its own process in its amphora's namespace."""

    module = zygote.__name__
    suffix = ".zygote"

    def start(self, namespace: str, directory: Path) -> int:
        """Fork an agent into ``namespace`` for the amphora of ``directory``; its pid."""
        answer = self.request({"netns": f"/run/netns/{namespace}", "directory": str(directory),
                               "config": str(directory / "amphora-agent.conf"),
                               "console": str(directory / "agent-console.log")},
                              f"start the agent of {directory}")
        if "pid" not in answer:
            raise LauncherError(f"the agent zygote did not start the agent of {directory}")
        return int(answer["pid"])


class HostAgentLauncher(HostProcessLauncher):
    """Amphorae served by the host agent."""

    module = host.__name__
    suffix = ".host-agent"

    def arguments(self) -> list[str]:
        return ["--amphorae", str(self.amphorae_path)]

    def start(self, namespace: str, directory: Path) -> None:
        """Serve the amphora of ``directory`` from ``namespace``; returns once its API
        listens. Serving it again is a no-op."""
        self.request({"serve": {"directory": str(directory),
                                "netns": f"/run/netns/{namespace}"}},
                     f"serve the amphora of {directory}")

    def forget(self, directory: Path) -> None:
        """Stop serving the amphora of ``directory``; a host agent that is not running
        serves nothing (and no longer finds the directory when it starts)."""
        answer = self._ask({"forget": {"directory": str(directory)}}, missing_ok=True)
        if "error" in answer:
            raise LauncherError(f"the host agent could not forget {directory}: "
                                f"{answer['error']}")


LAUNCHERS: dict[str, type[HostProcessLauncher]] = {"zygote": ZygoteLauncher,
                                                   "host": HostAgentLauncher}
