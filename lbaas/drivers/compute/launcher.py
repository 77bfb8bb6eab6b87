"""How the netns compute driver starts an amphora's agent (``[haproxy_amphora]
agent_launcher``): ``exec``, a new Python process per amphora; ``zygote``, a fork of a
preloaded parent per host (lbaas.amphora.agent.zygote), which shares most of its memory.

The zygote is started on first use, detached (it outlives the controller process that
started it, as agents do) with its socket and pid file beside the amphorae's directory;
one whose preloaded source differs from this code's is replaced first. Processes of one
host take turns starting it (a file lock), threads of one process too.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from lbaas.amphora.agent import zygote

START_TIMEOUT = 10.0
# An agent's threads (HTTPS server, heartbeats, logs) each get a malloc arena of their own
# by default, pages that stay touched; one arena is plenty for what an agent allocates.
AGENT_ENVIRONMENT = {"MALLOC_ARENA_MAX": "1"}


class LauncherError(Exception):
    pass


class ZygoteLauncher:
    def __init__(self, amphorae_path: Path, python: str) -> None:
        base = amphorae_path.with_name(amphorae_path.name + ".zygote")
        self.socket_path = base / "zygote.sock"
        self.pid_path = base / "zygote.pid"
        self.python = python
        self._source = zygote.source_hash()
        self._lock = threading.Lock()

    def start(self, namespace: str, directory: Path) -> int:
        """Fork an agent into ``namespace`` for the amphora of ``directory``; its pid."""
        request = {"netns": f"/run/netns/{namespace}", "directory": str(directory),
                   "config": str(directory / "amphora-agent.conf"),
                   "console": str(directory / "agent-console.log")}
        with self._lock, self._host_lock():
            if self._ask({"hello": True}, missing_ok=True) != {"source_hash": self._source}:
                self._replace()
            answer = self._ask(request)
        if "pid" not in answer:
            raise LauncherError(f"the agent zygote could not start the agent of {directory}: "
                                f"{answer.get('error')}")
        return int(answer["pid"])

    def stop(self) -> None:
        """Stop the zygote (agents it started keep running)."""
        pid = self._pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        self.socket_path.unlink(missing_ok=True)
        self.pid_path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _host_lock(self) -> Iterator[None]:
        self.socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.socket_path.parent / "zygote.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

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
            raise LauncherError(f"the agent zygote at {self.socket_path} does not answer: "
                                f"{exc}") from exc
        answer = json.loads(line or b"{}")
        return answer if isinstance(answer, dict) else {}

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text())
            return pid if b"lbaas.amphora.agent.zygote" in Path(
                f"/proc/{pid}/cmdline").read_bytes() else None
        except (OSError, ValueError):
            return None

    def _replace(self) -> None:
        """Stop a zygote of other code (or a dead one's files), start one of this code."""
        self.stop()
        log = self.socket_path.parent / "zygote.log"
        with log.open("ab") as output:
            subprocess.run(["setsid", "-f", self.python, "-m", zygote.__name__, "--socket",
                            str(self.socket_path), "--pid-file", str(self.pid_path)],
                           stdin=subprocess.DEVNULL, stdout=output, stderr=output, check=True,
                           env={**os.environ, **AGENT_ENVIRONMENT})
        deadline = time.monotonic() + START_TIMEOUT
        while self._ask({"hello": True}, missing_ok=True) != {"source_hash": self._source}:
            if time.monotonic() > deadline:
                raise LauncherError(f"the agent zygote did not start in {START_TIMEOUT:.0f} s; "
                                    f"see {log}")
            time.sleep(0.02)
