"""keepalived (VRRP) of an ACTIVE_STANDBY amphora: install its configuration, start,
reload, stop.

keepalived runs detached (it outlives an agent restart, as haproxy does), in the
foreground of its own session with its log in the amphora's ``vrrp`` directory. The
check script it runs exits 0 only when the haproxy of every load balancer configured on
the amphora answers on its stats socket (haproxy's runtime API), whatever the way haproxy
is run; with no load balancer configured yet it succeeds, so a new pair holds its VIP.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lbaas.amphora.agent.haproxy import HaproxyPaths

ABSTRACT_PREFIX = "abns@"
UNIX_PREFIX = "unix@"


class InvalidConfig(Exception):
    """keepalived refused the configuration; the message is keepalived's output."""


@dataclass(frozen=True)
class KeepalivedPaths:
    """Where the amphora's keepalived files live inside its directory (``base``)."""

    base: Path

    @property
    def directory(self) -> Path:
        return self.base / "vrrp"

    @property
    def config(self) -> Path:
        return self.directory / "keepalived.conf"

    @property
    def pid(self) -> Path:
        return self.directory / "keepalived.pid"

    @property
    def vrrp_pid(self) -> Path:
        return self.directory / "vrrp.pid"

    @property
    def check_script(self) -> Path:
        return self.directory / "check_script.sh"

    @property
    def log(self) -> Path:
        return self.directory / "keepalived.log"


def _socat_address(stats_socket: str) -> str:
    """socat's name for haproxy's stats socket (a path relative to the load balancer's
    directory, or an abstract name, which haproxy pads with NULs)."""
    if stats_socket.startswith(ABSTRACT_PREFIX):
        return f"ABSTRACT-CONNECT:{stats_socket[len(ABSTRACT_PREFIX):]},unix-tightsocklen=0"
    return f"UNIX-CONNECT:{stats_socket.removeprefix(UNIX_PREFIX)}"


def check_script(base: Path) -> str:
    """The check script: exit 1 as soon as one configured haproxy does not answer."""
    address = _socat_address(HaproxyPaths(base, "$lb").stats_socket)
    return "\n".join([
        "#!/bin/sh",
        "# Exit 0 when the haproxy of every load balancer configured here answers on its",
        "# runtime API (run in the load balancer's directory: the socket path is relative).",
        f"for config in {base}/*/haproxy.cfg; do",
        '    [ -e "$config" ] || continue',
        '    directory=$(dirname "$config")',
        '    lb=$(basename "$directory")',
        f'    (cd "$directory" && echo "show info" | socat -T 2 stdio "{address}" 2>/dev/null) |',
        '        grep -q "^Pid:" || exit 1',
        "done",
        "exit 0",
        "",
    ])


def _pid_alive(path: Path) -> int | None:
    try:
        pid = int(path.read_text().split()[0])
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, IndexError, ProcessLookupError):
        return None
    return pid


class Keepalived:
    def __init__(self, paths: KeepalivedPaths, command: str = "/usr/sbin/keepalived") -> None:
        self.paths = paths
        self.command = command

    def install(self, text: str) -> str:
        """Check the configuration with ``keepalived --config-test``, then replace the
        installed one (and write the check script); returns its MD5 (the ETag)."""
        self.paths.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        script = self.paths.check_script
        script.write_text(check_script(self.paths.base))
        script.chmod(0o700)
        candidate = self.paths.directory / "keepalived.conf.new"
        candidate.write_text(text)
        candidate.chmod(0o600)
        result = subprocess.run([self.command, "--config-test", "-f", str(candidate)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            candidate.unlink(missing_ok=True)
            raise InvalidConfig((result.stdout + result.stderr).strip())
        candidate.replace(self.paths.config)
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    def pid(self) -> int | None:
        return _pid_alive(self.paths.pid)

    def start(self, timeout: float = 5.0) -> str:
        """Start keepalived, or reload it when it runs; returns what was done."""
        if self.pid() is not None:
            self.reload()
            return "reloaded"
        if not self.paths.config.exists():
            raise FileNotFoundError("no keepalived configuration uploaded")
        with self.paths.log.open("ab") as log:
            subprocess.run(
                ["setsid", "-f", self.command, "--dont-fork", "--log-console", "--log-detail",
                 "--vrrp", "-f", str(self.paths.config), "-p", str(self.paths.pid),
                 "-r", str(self.paths.vrrp_pid)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, check=True)
        deadline = time.monotonic() + timeout
        while _pid_alive(self.paths.vrrp_pid) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"keepalived did not start; see {self.paths.log}")
            time.sleep(0.01)
        return "started"

    def reload(self) -> str:
        pid = self.pid()
        if pid is None:
            return self.start()
        os.kill(pid, signal.SIGHUP)
        return "reloaded"

    def stop(self, timeout: float = 10.0) -> str:
        """Stop keepalived. As MASTER its VRRP process first sends a priority 0 advert (the
        peer takes over at once) and exits about a second later; then nothing is left to
        wait for, and the main process is ended."""
        pid = self.pid()
        if pid is None:
            return "stopped"
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(self.paths.vrrp_pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _pid_alive(self.paths.pid):
            os.kill(pid, signal.SIGKILL)
        self.paths.pid.unlink(missing_ok=True)
        return "stopped"
