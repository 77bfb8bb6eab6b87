"""haproxy for one load balancer: validate, install, start, apply changes, stop.

haproxy runs in master-worker mode. A new configuration that differs from the served one
only in members' weights or admin states is applied through haproxy's runtime API,
without a reload. Anything else takes a hitless reload: the servers' state is saved (so
health checks resume where they were), then the master starts new workers on the same
listening sockets while the old ones finish their connections. Either way no request fails.
"""
from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerLine:
    """A ``server`` line split into what the runtime API can change and the rest."""

    name: str
    weight: str | None
    disabled: bool
    rest: tuple[str, ...]

    @classmethod
    def parse(cls, line: str) -> ServerLine:
        words = line.split()
        weight = None
        rest: list[str] = []
        index = 2
        while index < len(words):
            if words[index] == "weight" and index + 1 < len(words):
                weight = words[index + 1]
                index += 2
                continue
            if words[index] != "disabled":
                rest.append(words[index])
            index += 1
        return cls(words[1], weight, "disabled" in words[2:], tuple(rest))


def _servers(text: str) -> dict[str, ServerLine]:
    """The ``server`` lines of a configuration by ``backend/server`` name."""
    found: dict[str, ServerLine] = {}
    backend = None
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["backend"]:
            backend = words[1]
        elif words[:1] == ["server"] and backend is not None:
            found[f"{backend}/{words[1]}"] = ServerLine.parse(line)
    return found


def _commands(before: ServerLine, after: ServerLine, name: str) -> list[str]:
    commands = []
    if before.weight != after.weight:
        commands.append(f"set server {name} weight {after.weight or 1}")
    if before.disabled != after.disabled:
        commands.append(f"set server {name} state {'maint' if after.disabled else 'ready'}")
    return commands


def state_commands(served: str, wanted: str) -> list[str]:
    """Runtime API commands giving the servers both configurations share the weights and
    admin states ``wanted`` asks for."""
    before, after = _servers(served), _servers(wanted)
    return [command for name in after if name in before
            for command in _commands(before[name], after[name], name)]


def runtime_changes(served: str, wanted: str) -> list[str] | None:
    """Runtime API commands that turn the ``served`` configuration into ``wanted``, or None
    when they differ in anything but members' weights and admin states (a reload is needed)."""
    served_lines, wanted_lines = served.splitlines(), wanted.splitlines()
    if len(served_lines) != len(wanted_lines):
        return None
    for old, new in zip(served_lines, wanted_lines):
        if old == new:
            continue
        if new.split()[:1] != ["server"] or old.split()[:1] != ["server"]:
            return None
        before, after = ServerLine.parse(old), ServerLine.parse(new)
        if (before.name, before.rest) != (after.name, after.rest):
            return None
    return state_commands(served, wanted)


class ReloadFailed(Exception):
    """No new haproxy worker took over after a reload."""


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
    def served_config(self) -> Path:
        """The configuration the running haproxy serves (``config`` may be newer)."""
        return self.directory / "haproxy.cfg.served"

    @property
    def pid(self) -> Path:
        return self.directory / "haproxy.pid"

    @property
    def stats_socket(self) -> str:
        """haproxy's runtime API, as haproxy's config names it: an abstract Unix socket,
        private to the amphora's network namespace (a path under the amphora's directory
        would exceed haproxy's 97-character limit)."""
        return f"abns@lbaas-{self.lb_id}"

    @property
    def master_socket(self) -> str:
        """The master CLI (``-S``), also abstract: it routes each command to the current
        worker, never to an old one still finishing its connections after a reload."""
        return f"abns@lbaas-master-{self.lb_id}"

    @property
    def master_socket_address(self) -> bytes:
        """The same socket as ``socket.connect`` names it: haproxy binds abstract names
        padded with NULs to the whole ``sun_path`` (108 bytes), so the name must be too."""
        return f"\0lbaas-master-{self.lb_id}".encode().ljust(108, b"\0")

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
        """Validate, then atomically replace the configuration; returns its MD5 (the ETag).

        A configuration that differs from the installed (valid) one only in members'
        weights or admin states is valid too, so haproxy is not asked again.
        """
        candidate = self.paths.directory / "haproxy.cfg.new"
        current = self.paths.config.read_text() if self.paths.config.exists() else None
        if current is not None and runtime_changes(current, text) is not None:
            candidate.write_text(text)
        else:
            self.validate(text)
        candidate.replace(self.paths.config)
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
        served = self.paths.config.read_text()
        subprocess.run([self.command, "-W", "-D", "-f", str(self.paths.config),
                        "-p", str(self.paths.pid), "-S", self.paths.master_socket],
                       check=True, capture_output=True, text=True)
        self._wait_for_socket()
        self.paths.served_config.write_text(served)

    def reload(self, timeout: float = 10.0) -> None:
        """Hitless reload; returns once a new worker serves the new configuration.

        The reload is asked of the master through its CLI, not by signal: a signal that
        arrived while the master was still re-executing itself would kill it.
        """
        if self.master_pid() is None:
            self.start()
            return
        old_worker = self.worker_pid()
        served = self.paths.config.read_text()
        self.save_state()
        self.master("reload")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.worker_pid() not in (old_worker, None):
                self.paths.served_config.write_text(served)
                return
            time.sleep(0.01)
        raise ReloadFailed(f"haproxy for {self.paths.lb_id} did not reload within {timeout} s")

    def apply(self) -> str:
        """Serve the installed configuration: at runtime if possible, else by a reload.

        Returns how: ``started``, ``runtime`` or ``reloaded``.
        """
        if not self.running():
            self.start()
            return "started"
        wanted = self.paths.config.read_text()
        served = self.paths.served_config.read_text() if self.paths.served_config.exists() else ""
        commands = runtime_changes(served, wanted)
        if commands is not None:
            answers = [self.runtime(command).strip() for command in commands]
            if not any(answers):  # haproxy answers these commands with nothing on success
                self.paths.served_config.write_text(wanted)
                return "runtime"
        # The reload carries the servers' saved state over; give the servers that stay
        # the weights and admin states of the new configuration first, or the saved state
        # would undo the change.
        for command in state_commands(served, wanted):
            self.runtime(command)
        self.reload()
        return "reloaded"

    def worker_pid(self) -> int | None:
        """The pid of the worker answering the runtime API (None if none answers)."""
        try:
            info = self.runtime("show info")
        except OSError:
            return None
        found = re.search(r"^Pid: (\d+)$", info, re.MULTILINE)
        return int(found.group(1)) if found else None

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

    def master(self, command: str) -> str:
        """Send one command to haproxy's master CLI and return its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(self.paths.master_socket_address)
            sock.sendall(f"{command}\n".encode())
            sock.shutdown(socket.SHUT_WR)  # the master answers, then closes
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def runtime(self, command: str) -> str:
        """Send one command to the current worker's runtime API and return its answer."""
        return self.master(f"@1 {command}")

    def save_state(self) -> None:
        """Write the servers' state where the next process loads it (server-state-file)."""
        try:
            state = self.runtime("show servers state")
        except OSError:
            return
        self.paths.state_file.write_text(state)

    def _wait_for_socket(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.runtime("show info")
                return
            except OSError:
                time.sleep(0.01)
