"""haproxy for one load balancer: validate, install, start, apply changes, stop.

haproxy runs as one daemon process (no master). A new configuration that differs from the
served one only in members' weights or admin states is applied through haproxy's runtime
API, without a reload. Anything else takes a hitless reload: the servers' state is saved
(so health checks resume where they were), then a new haproxy takes the listening sockets
over while the old one finishes its connections. Either way no request fails.
"""
from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import threading
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
    for old, new in zip(served_lines, wanted_lines, strict=True):
        if old == new:
            continue
        if new.split()[:1] != ["server"] or old.split()[:1] != ["server"]:
            return None
        before, after = ServerLine.parse(old), ServerLine.parse(new)
        if (before.name, before.rest) != (after.name, after.rest):
            return None
    return state_commands(served, wanted)


class ReloadFailed(Exception):
    """No new haproxy process took over after a reload."""


class InvalidConfig(Exception):
    """haproxy -c refused the configuration; the message is haproxy's output."""


STATS_SOCKET = "haproxy.sock"


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
        """haproxy's runtime API as the configuration names it: a Unix socket relative to
        ``directory``, where the agent starts haproxy (the absolute path would exceed
        haproxy's 97 characters). A file, not an abstract socket, because a new haproxy
        fetches the listening sockets from the old one through it (``-x``), which takes
        only a path."""
        return f"unix@{STATS_SOCKET}"

    @property
    def state_file(self) -> Path:
        return self.directory / "servers-state"

    @property
    def certs(self) -> Path:
        """Tenants' certificates, CAs and crt-lists this load balancer's haproxy reads."""
        return self.directory / "certs"


CERTIFICATE_FILE = re.compile(r"[0-9a-f]{32}\.(pem|crtlist)")
"""How the renderer names certificate files: a hash of the content and a suffix."""


def install_certificate(paths: HaproxyPaths, name: str, content: bytes) -> None:
    """Write a certificate file (0600, in a 0700 directory); the same name holds the same
    content, so an existing file is left as it is."""
    if not CERTIFICATE_FILE.fullmatch(name):
        raise ValueError(f"{name!r} is not a certificate file name")
    paths.certs.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = paths.certs / name
    if target.exists():
        return
    candidate = paths.certs / f".{name}.{os.getpid()}.{threading.get_ident()}"
    descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    candidate.replace(target)


def prune_certificates(paths: HaproxyPaths, *configurations: str) -> list[str]:
    """Remove the certificate files none of ``configurations`` names (directly or through
    one of its crt-lists); returns the names removed."""
    if not paths.certs.is_dir():
        return []
    text = "\n".join(configurations)
    wanted = {name for name in os.listdir(paths.certs) if name in text}
    for name in list(wanted):
        if name.endswith(".crtlist"):
            listed = (paths.certs / name).read_text()
            wanted.update(other for other in os.listdir(paths.certs) if other in listed)
    removed = [name for name in os.listdir(paths.certs) if name not in wanted]
    for name in removed:
        (paths.certs / name).unlink(missing_ok=True)
    return removed


def _cmdline(pid: int) -> list[bytes]:
    """A process's arguments; empty once it has exited (zombies included)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def _sockets(pid: int) -> set[str]:
    """The sockets a process holds open, as ``socket:[inode]``."""
    found: set[str] = set()
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return found
    for descriptor in descriptors:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{descriptor}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


class Haproxy:
    """haproxy of one load balancer, without a master process (one process, ~12 MB less).

    A reload starts a new haproxy that takes the listening sockets over from the running
    one through its stats socket (``-x``, ``expose-fd listeners``) and then tells it to
    finish its connections and exit (``-sf``): no connection is refused. Reloads, starts
    and stops of one load balancer take turns on a lock, and a reload returns only once
    the old process has let go of the listening sockets, so every runtime API command
    after it reaches the new process.
    """

    _locks: dict[Path, threading.RLock] = {}
    _locks_guard = threading.Lock()

    def __init__(self, paths: HaproxyPaths, command: str = "/usr/sbin/haproxy") -> None:
        self.paths = paths
        self.command = command
        with Haproxy._locks_guard:
            self._lock = Haproxy._locks.setdefault(paths.directory, threading.RLock())

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
        weights or admin states is valid too, so haproxy is not asked again. Installs take
        turns with each other (they share the candidate file) and with reloads.
        """
        with self._lock:
            candidate = self.paths.directory / "haproxy.cfg.new"
            current = self.paths.config.read_text() if self.paths.config.exists() else None
            if current is not None and runtime_changes(current, text) is not None:
                candidate.write_text(text)
            else:
                self.validate(text)
            candidate.replace(self.paths.config)
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    def _serves(self, pid: int) -> bool:
        """Whether ``pid`` is a live haproxy started on this load balancer's configuration."""
        return str(self.paths.config).encode() in _cmdline(pid)

    def current_pid(self) -> int | None:
        """The process serving the configuration (the one the pid file names)."""
        try:
            pid = int(self.paths.pid.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if self._serves(pid) else None

    def pids(self) -> list[int]:
        """Every process of this load balancer: the current one and old ones still draining."""
        return [int(entry) for entry in os.listdir("/proc")
                if entry.isdigit() and self._serves(int(entry))]

    def running(self) -> bool:
        return self.current_pid() is not None

    def _launch(self, *extra: str) -> int:
        """Start a haproxy in the background on the installed configuration; its pid."""
        subprocess.run([self.command, "-D", "-f", str(self.paths.config), "-p", str(self.paths.pid),
                        *extra], cwd=self.paths.directory, check=True, capture_output=True, text=True)
        pid = self.current_pid()
        if pid is None:
            raise ReloadFailed(f"haproxy for {self.paths.lb_id} exited right after starting")
        return pid

    def start(self) -> None:
        with self._lock:
            if self.running():
                self.reload()
                return
            if not self.paths.config.exists():
                raise FileNotFoundError(f"no configuration for load balancer {self.paths.lb_id}")
            served = self.paths.config.read_text()
            self._launch()
            self.paths.served_config.write_text(served)

    def reload(self, timeout: float = 10.0) -> None:
        """Hitless reload; returns once only the new process accepts connections.

        haproxy binds (or takes over) every listening socket before it returns from
        ``-D``, so a process that fails to start leaves the old one serving.
        """
        with self._lock:
            old = self.current_pid()
            if old is None:
                self.start()
                return
            served = self.paths.config.read_text()
            self.save_state()
            new = self._launch("-x", STATS_SOCKET, "-sf", str(old))
            deadline = time.monotonic() + timeout
            while _sockets(old) & _sockets(new):  # the listeners both hold, until old lets go
                if time.monotonic() > deadline:
                    raise ReloadFailed(f"haproxy {old} of {self.paths.lb_id} kept its listeners "
                                       f"{timeout} s after a reload")
                time.sleep(0.005)
            self.paths.served_config.write_text(served)

    def apply(self) -> str:
        """Serve the installed configuration: at runtime if possible, else by a reload.

        Returns how: ``started``, ``runtime`` or ``reloaded``.
        """
        with self._lock:
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
            # Old certificates go once no process serves them (haproxy read them at start).
            prune_certificates(self.paths, wanted)
            return "reloaded"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the current process and any old one still draining."""
        with self._lock:
            pids = self.pids()
            for pid in pids:
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while any(self._serves(pid) for pid in pids) and time.monotonic() < deadline:
                time.sleep(0.02)
            for pid in pids:
                if self._serves(pid):
                    os.kill(pid, signal.SIGKILL)
            self.paths.pid.unlink(missing_ok=True)

    def soft_stop(self) -> None:
        """Stop listening and exit once the open connections are done (SIGUSR1), for every
        process of this load balancer (lbaas.amphora.agent.drain)."""
        with self._lock:
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGUSR1)
                except ProcessLookupError:
                    pass
            self.paths.pid.unlink(missing_ok=True)

    def runtime(self, command: str) -> str:
        """Send one command to haproxy's runtime API and return its answer.

        The socket is reached through a descriptor of its directory: the absolute path
        can be longer than a Unix socket address allows (108 bytes).
        """
        directory = os.open(self.paths.directory, os.O_PATH | os.O_DIRECTORY)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5)
                sock.connect(f"/proc/self/fd/{directory}/{STATS_SOCKET}")
                sock.sendall(f"{command}\n".encode())
                sock.shutdown(socket.SHUT_WR)  # haproxy answers, then closes
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        finally:
            os.close(directory)
        return b"".join(chunks).decode()

    def save_state(self) -> None:
        """Write the servers' state where the next process loads it (server-state-file)."""
        try:
            state = self.runtime("show servers state")
        except OSError:
            return
        self.paths.state_file.write_text(state)
