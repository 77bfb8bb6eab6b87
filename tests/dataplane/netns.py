"""Fixtures' building blocks for data-plane tests: bridges, namespaces, veths, all removed."""
from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def short_id() -> str:
    return uuid.uuid4().hex[:6]


@contextlib.contextmanager
def bridge(name: str, address: str | None = None) -> Iterator[str]:
    """A Linux bridge attached to nothing but our own veths, with an optional host address."""
    ip("link", "add", name, "type", "bridge")
    try:
        if address:
            ip("addr", "add", address, "dev", name)
        ip("link", "set", name, "up")
        yield name
    finally:
        ip("link", "del", name, check=False)


@contextlib.contextmanager
def namespace(name: str, bridge_name: str, address: str, gateway: str | None = None,
              host: str | None = None) -> Iterator[str]:
    """A namespace ("host") with one interface on ``bridge_name`` at ``address`` (ip/prefix);
    the bridge is in the namespace ``host`` (a simulated machine), else in the root one."""
    host_end = f"v{short_id()}"
    where = ["-n", host] if host else []
    ip("netns", "add", name)
    try:
        ip(*where, "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", name)
        ip(*where, "link", "set", host_end, "master", bridge_name)
        ip(*where, "link", "set", host_end, "up")
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "addr", "add", address, "dev", "eth0")
        ip("-n", name, "link", "set", "eth0", "up")
        if gateway:
            ip("-n", name, "route", "add", "default", "via", gateway)
        yield name
    finally:
        for pid in ip("netns", "pids", name, check=False).stdout.split():
            subprocess.run(["kill", "-9", pid], check=False)
        ip("netns", "del", name, check=False)
        ip(*where, "link", "del", host_end, check=False)


def in_namespace(name: str, *command: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", name, *command], capture_output=True,
                          text=True, timeout=timeout)
