"""Health monitors of UDP/SCTP pools, run by the amphora agent (keepalived's checkers'
job upstream): one thread per monitored pool checks every member each ``delay`` seconds.

A member starts UP (so a new pool serves at once, as haproxy's servers do); it goes DOWN
after ``max_retries_down`` failed checks in a row and comes back after ``max_retries``
successful ones. The checks, each given ``timeout`` seconds (at least one):

* UDP-CONNECT: a datagram to the member's port; an ICMP error back (port or host
  unreachable) is a failure, an answer or silence a success (upstream's ``nc -uz``);
* TCP: a TCP connection is accepted;
* HTTP: the request (method, path, Host; HTTP/1.1) answers with an expected status;
* PING: one ICMP echo answered (``ping``, unprivileged in the amphora's namespace);
* SCTP: an SCTP association is set up (kernels with SCTP only).

Every change of a member's state calls ``on_change`` (the service re-renders its rules).
"""
from __future__ import annotations

import http.client
import logging
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from lbaas.amphora.agent.udp_model import Member, Monitor

LOG = logging.getLogger(__name__)
PROBE = b"\0"


def _target(member: Member) -> tuple[str, int]:
    return member.monitor_address or member.address, member.monitor_port or member.port


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def check_udp(address: str, port: int, timeout: float) -> bool:
    with socket.socket(_family(address), socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
            sock.send(PROBE)
            sock.recv(1)
        except TimeoutError:
            return True  # nothing came back: no ICMP error, the port is open (or filtered)
        except OSError:
            return False  # ECONNREFUSED (port unreachable), EHOSTUNREACH, ...
    return True


def check_tcp(address: str, port: int, timeout: float) -> bool:
    try:
        socket.create_connection((address, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def check_sctp(address: str, port: int, timeout: float) -> bool:
    try:
        with socket.socket(_family(address), socket.SOCK_STREAM, socket.IPPROTO_SCTP) as sock:
            sock.settimeout(timeout)
            sock.connect((address, port))
    except OSError:
        return False
    return True


def expected(codes: str, status: int) -> bool:
    """``200``, ``200,202`` or ``200-204`` (upstream's ``expected_codes``)."""
    if "-" in codes:
        low, high = codes.split("-")
        return int(low) <= status <= int(high)
    return status in {int(code) for code in codes.split(",")}


def check_http(monitor: Monitor, address: str, port: int, timeout: float) -> bool:
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    headers = {"Host": monitor.domain_name} if monitor.domain_name else {}
    try:
        connection.request(monitor.http_method or "GET", monitor.url_path or "/", headers=headers)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return expected(monitor.expected_codes or "200", status)


def check_ping(address: str, timeout: float) -> bool:
    command = ["ping", "-n", "-q", "-c", "1", "-W", str(max(1, int(timeout))), address]
    try:
        return subprocess.run(command, capture_output=True, timeout=timeout + 2,
                              check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def check(monitor: Monitor, member: Member) -> bool:
    """One check of ``member`` by ``monitor``'s type: True if it passed."""
    address, port = _target(member)
    timeout = float(max(1, monitor.timeout))
    if monitor.type == "UDP-CONNECT":
        return check_udp(address, port, timeout)
    if monitor.type == "TCP":
        return check_tcp(address, port, timeout)
    if monitor.type == "HTTP":
        return check_http(monitor, address, port, timeout)
    if monitor.type == "PING":
        return check_ping(address, timeout)
    if monitor.type == "SCTP":
        return check_sctp(address, port, timeout)
    raise ValueError(f"health monitor type {monitor.type} is not run for UDP pools")


class MemberHealth:
    """Consecutive results -> UP or DOWN, as ``max_retries`` and ``max_retries_down`` say."""

    def __init__(self, rise: int, fall: int, up: bool = True) -> None:
        self.rise, self.fall, self.up = rise, fall, up
        self._streak = 0  # checks in a row that disagree with the current state

    def record(self, passed: bool) -> bool:
        """Add one result; True if the state changed."""
        if passed == self.up:
            self._streak = 0
            return False
        self._streak += 1
        if self._streak >= (self.rise if passed else self.fall):
            self.up, self._streak = passed, 0
            return True
        return False


Checker = Callable[[Monitor, Member], bool]


class PoolMonitor:
    """Checks a pool's enabled members every ``delay`` seconds on its own thread."""

    def __init__(self, monitor: Monitor, members: tuple[Member, ...],
                 on_change: Callable[[], None], checker: Checker = check,
                 previous: dict[str, MemberHealth] | None = None) -> None:
        self.monitor = monitor
        self.members = tuple(member for member in members if member.enabled)
        self.on_change = on_change
        self.checker = checker
        previous = previous or {}
        # A member that stays (same monitor thresholds) keeps its state across changes.
        self.health = {
            member.id: previous[member.id] if member.id in previous
            and (previous[member.id].rise, previous[member.id].fall) == (monitor.rise, monitor.fall)
            else MemberHealth(monitor.rise, monitor.fall)
            for member in self.members}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def up(self) -> dict[str, bool]:
        return {member_id: health.up for member_id, health in self.health.items()}

    def check_all(self) -> bool:
        """One round: every member checked at once; True if a state changed."""
        if not self.members:
            return False
        with ThreadPoolExecutor(max_workers=min(16, len(self.members))) as pool:
            results = list(pool.map(lambda member: self._safe_check(member), self.members))
        changed = False
        for member, passed in zip(self.members, results, strict=True):
            if self.health[member.id].record(passed):
                changed = True
                LOG.info("UDP member %s (%s:%s) is %s", member.id, member.address, member.port,
                         "UP" if passed else "DOWN")
        return changed

    def _safe_check(self, member: Member) -> bool:
        try:
            return self.checker(self.monitor, member)
        except Exception:  # a checker bug must not stop the monitor
            LOG.exception("health check of member %s failed to run", member.id)
            return False

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            if self.check_all():
                try:
                    self.on_change()
                except Exception:
                    LOG.exception("applying a member state change failed")
            self._stop.wait(max(0.0, self.monitor.delay - (time.monotonic() - started)))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"udp-monitor-{self.monitor.id}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.monitor.timeout + 5)
        self._thread = None
