"""The UDP heartbeat receiver (upstream's ``UDPStatusGetter``).

A thread reads datagrams from one socket and hands them on as they are (so that the
socket is emptied fast); ``decode`` checks the signature and the message's shape where
they are processed: what is not valid is dropped and counted, never raised.
The socket is bound with SO_REUSEPORT, so several health managers on one host can share
a port (the kernel spreads amphorae over them); IP_FREEBIND lets it bind the management
address before the bridge carries it.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from lbaas.amphora.agent.status_message import InvalidHMAC, InvalidMessage, unwrap_from_amphora

LOG = logging.getLogger(__name__)
MAX_DATAGRAM = 65535
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)


class Counters:
    """Thread-safe counts of what happened to heartbeats (received, dropped and why)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def check_shape(message: dict[str, Any]) -> None:
    """InvalidMessage unless the message has upstream's fields with the right types."""
    if not isinstance(message.get("id"), str) or not message["id"]:
        raise InvalidMessage("the heartbeat has no amphora id")
    if not isinstance(message.get("seq"), int) or isinstance(message["seq"], bool):
        raise InvalidMessage("the heartbeat has no integer seq")
    listeners, pools = message.get("listeners", {}), message.get("pools", {})
    if not isinstance(listeners, dict) or not isinstance(pools, dict):
        raise InvalidMessage("the heartbeat's listeners and pools are not objects")
    for listener in listeners.values():
        if not isinstance(listener, dict) or not isinstance(listener.get("stats", {}), dict):
            raise InvalidMessage("a listener of the heartbeat is not an object with stats")
        if not all(isinstance(value, int) for value in listener.get("stats", {}).values()):
            raise InvalidMessage("a listener's counters are not integers")
    for pool in pools.values():
        if not isinstance(pool, dict) or not isinstance(pool.get("members", {}), dict):
            raise InvalidMessage("a pool of the heartbeat is not an object with members")


def open_socket(address: tuple[str, int], receive_buffer: int = 0) -> socket.socket:
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_IP if family == socket.AF_INET else socket.IPPROTO_IPV6,
                    IP_FREEBIND, 1)
    if receive_buffer > 0:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.bind(address)
    sock.settimeout(0.2)  # so that a stopping receiver notices
    return sock


MAX_SEQ_AHEAD_MS = 10 * 60 * 1000
"""How far a heartbeat's sequence may run ahead of this host's clock. An agent starts its
sequence at the time in milliseconds and adds one per heartbeat (seconds apart), so a
genuine one stays behind the clock; one far ahead (``2**62``) would make every later
genuine heartbeat look replayed. Ten minutes of clock skew between hosts are tolerated."""


def decode(datagram: bytes, secret: str, counters: Counters,
           clock: Callable[[], float] = time.time) -> dict[str, Any] | None:
    """The valid message in ``datagram``, or None (counted as why it was dropped).

    Valid: signed with the key of the amphora it names (derived from ``secret``), of the
    expected shape, and with a sequence not beyond the clock (``MAX_SEQ_AHEAD_MS``).
    """
    try:
        message = unwrap_from_amphora(datagram, secret)
        check_shape(message)
    except InvalidHMAC:
        counters.add("invalid_hmac")
        return None
    except InvalidMessage as exc:
        LOG.debug("dropped a malformed heartbeat: %s", exc)
        counters.add("malformed")
        return None
    if message["seq"] > clock() * 1000 + MAX_SEQ_AHEAD_MS:
        counters.add("sequence_ahead")
        return None
    return message


Handler = Callable[[bytes, float], None]


class HeartbeatReceiver:
    """Receives on ``address`` with ``threads`` threads; ``handle(datagram, received_at)``."""

    def __init__(self, address: tuple[str, int], handle: Handler, counters: Counters,
                 threads: int = 1, receive_buffer: int = 0) -> None:
        self.handle = handle
        self.counters = counters
        self.sock = open_socket(address, receive_buffer)
        self.address = self.sock.getsockname()[:2]
        self._threads_wanted = threads
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                datagram, _ = self.sock.recvfrom(MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                LOG.exception("heartbeat socket error")
                continue
            self.counters.add("received")
            self.handle(datagram, time.monotonic())

    def start(self) -> None:
        for index in range(self._threads_wanted):
            thread = threading.Thread(target=self._run, name=f"hm-receiver-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self._threads.clear()
        self.sock.close()
