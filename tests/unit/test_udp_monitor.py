"""The agent's checks of UDP pool members, against real sockets on loopback: each type
passes on a member that serves and fails on one that does not."""
from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from lbaas.amphora.agent.udp_model import Member, Monitor
from lbaas.amphora.agent.udp_monitor import check

LOOPBACK = "127.0.0.1"


def _monitor(monitor_type: str, **fields: str) -> Monitor:
    return Monitor(id="m", type=monitor_type, delay=1, timeout=1, rise=1, fall=1, **fields)


def _member(port: int, monitor_port: int | None = None) -> Member:
    return Member(id="a", address=LOOPBACK, port=port, weight=1, enabled=True, backup=False,
                  monitor_address=None, monitor_port=monitor_port)


def _closed_port(kind: socket.SocketKind) -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@pytest.fixture
def udp_port() -> Iterator[int]:
    """A bound UDP socket that never answers: silence is a pass, as with ``nc -uz``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield sock.getsockname()[1]


@pytest.fixture
def tcp_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen()
        yield sock.getsockname()[1]


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path == "/health" and self.headers.get("Host") == "dns.example"
        self.send_response(200 if ok else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_udp_connect_fails_only_on_port_unreachable(udp_port):
    assert check(_monitor("UDP-CONNECT"), _member(udp_port))
    assert not check(_monitor("UDP-CONNECT"), _member(_closed_port(socket.SOCK_DGRAM)))


def test_tcp_needs_an_accepted_connection(tcp_port):
    assert check(_monitor("TCP"), _member(tcp_port))
    assert not check(_monitor("TCP"), _member(_closed_port(socket.SOCK_STREAM)))


def test_http_sends_path_and_host_and_matches_expected_codes(http_port):
    wanted = {"url_path": "/health", "domain_name": "dns.example"}
    assert check(_monitor("HTTP", expected_codes="200", **wanted), _member(http_port))
    assert not check(_monitor("HTTP", expected_codes="200", url_path="/health"),
                     _member(http_port))
    assert check(_monitor("HTTP", expected_codes="400-404", url_path="/other"),
                 _member(http_port))
    assert not check(_monitor("HTTP", expected_codes="200", **wanted),
                     _member(_closed_port(socket.SOCK_STREAM)))


def test_checks_go_to_the_monitor_address_and_port(tcp_port):
    closed = _closed_port(socket.SOCK_STREAM)
    assert check(_monitor("TCP"), _member(closed, monitor_port=tcp_port))
    assert not check(_monitor("TCP"), _member(tcp_port, monitor_port=closed))


@pytest.mark.root
def test_ping_answered_on_loopback():
    assert check(_monitor("PING"), _member(0))
