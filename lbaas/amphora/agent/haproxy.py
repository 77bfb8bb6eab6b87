"""haproxy for one load balancer: validate, install, start, hitless reload, stop.

haproxy runs in master-worker mode. A reload first saves the servers' state (so health
checks resume where they were), then signals the master, which starts new workers on the
same listening sockets while the old ones finish their connections: no request fails.
"""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class InvalidConfig(Exception):
    """haproxy -c refused the configuration; the message is haproxy's output."""


@dataclass(frozen=True)
class HaproxyPaths:
    """Where one load balancer's files live inside the amphora's directory."""

    base: Path
    lb_id: str

    @property
    def directory(self) -> Path:
        return self.base / self.lb_id

    @property
    def config(self) -> Path:
        return self.directory / "haproxy.cfg"

    @property
    def pid(self) -> Path:
        return self.directory / "haproxy.pid"

    @property
    def stats_socket(self) -> Path:
        return self.base / f"{self.lb_id}.sock"

    @property
    def state_file(self) -> Path:
        return self.directory / "servers-state"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Haproxy:
    def __init__(self, paths: HaproxyPaths, command: str = "/usr/sbin/haproxy") -> None:
        self.paths = paths
        self.command = command

    def validate(self, text: str) -> None:
        """Check ``text`` with ``haproxy -c`` without touching the running configuration."""
        self.paths.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        candidate = self.paths.directory / "haproxy.cfg.new"
        candidate.write_text(text)
        result = subprocess.run([self.command, "-c", "-f", str(candidate)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            candidate.unlink(missing_ok=True)
            raise InvalidConfig((result.stdout + result.stderr).strip())

    def install(self, text: str) -> str:
        """Validate, then atomically replace the configuration; returns its MD5 (the ETag)."""
        self.validate(text)
        (self.paths.directory / "haproxy.cfg.new").replace(self.paths.config)
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    def master_pid(self) -> int | None:
        try:
            pid = int(self.paths.pid.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if _pid_alive(pid) else None

    def running(self) -> bool:
        return self.master_pid() is not None

    def start(self) -> None:
        if self.running():
            self.reload()
            return
        if not self.paths.config.exists():
            raise FileNotFoundError(f"no configuration for load balancer {self.paths.lb_id}")
        subprocess.run([self.command, "-W", "-D", "-f", str(self.paths.config),
                        "-p", str(self.paths.pid)], check=True, capture_output=True, text=True)
        self._wait_for_socket()

    def reload(self) -> None:
        pid = self.master_pid()
        if pid is None:
            self.start()
            return
        self.save_state()
        os.kill(pid, signal.SIGUSR2)

    def stop(self, timeout: float = 10.0) -> None:
        pid = self.master_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.paths.pid.unlink(missing_ok=True)

    def runtime(self, command: str) -> str:
        """Send one command to haproxy's runtime API (the stats socket) and return its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.paths.stats_socket))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def save_state(self) -> None:
        """Write the servers' state where the next process loads it (server-state-file)."""
        try:
            state = self.runtime("show servers state")
        except OSError:
            return
        self.paths.state_file.write_text(state)

    def _wait_for_socket(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.paths.stats_socket.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
