"""The amphora agent's log forwarder: haproxy's messages sorted by facility, kept on
disk within bounds, and sent to syslog receivers over UDP or TCP."""
from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from lbaas.amphora.agent.logs import LogForwarder, LogOffload, facility

FLOW = b"<134>Dec  6 00:28:19 haproxy[7]: p1 lb1 listener1 10.0.0.5 4242 GET / 200\n"
NOTICE = b"<141>Dec  6 00:28:19 haproxy[7]: Proxy listener1 started.\n"


def _udp_receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    return sock


def _forwarder(tmp_path: Path, **offload: object) -> LogForwarder:
    return LogForwarder(tmp_path, LogOffload(**offload), max_bytes=400, backup_count=1)


def test_facility_tells_flows_from_notices(tmp_path):
    assert (facility(FLOW), facility(NOTICE), facility(b"no priority")) == (16, 17, None)
    forwarder = _forwarder(tmp_path)
    assert (forwarder.kind(FLOW), forwarder.kind(NOTICE)) == ("tenant", "admin")
    (tmp_path / "other").mkdir()
    other = _forwarder(tmp_path / "other", user_log_facility=1)
    assert other.kind(NOTICE) == "tenant"


def test_messages_are_sent_to_their_receivers_and_kept_within_bounds(tmp_path):
    tenant, admin = _udp_receiver(), _udp_receiver()
    forwarder = _forwarder(
        tmp_path, tenant_log_targets=(f"127.0.0.1:{tenant.getsockname()[1]}",),
        admin_log_targets=(f"127.0.0.1:{admin.getsockname()[1]}",))
    forwarder.start()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as haproxy:
        for _ in range(20):  # as haproxy sends: one datagram per message
            haproxy.sendto(FLOW, str(tmp_path / "log.sock"))
        haproxy.sendto(NOTICE, str(tmp_path / "log.sock"))
    assert tenant.recv(65536) == FLOW
    assert admin.recv(65536) == NOTICE
    deadline = time.monotonic() + 5
    while "started" not in (tmp_path / "admin.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "admin.log").read_text() == NOTICE.decode()
    kept = sorted(tmp_path.glob("tenant.log*"))
    assert [path.name for path in kept] == ["tenant.log", "tenant.log.1"]  # rotated, bounded
    assert all(path.stat().st_size <= 400 for path in kept)
    assert oct((tmp_path / "log.sock").stat().st_mode & 0o777) == "0o666"


def test_tcp_receivers_get_one_line_per_message_and_a_dead_one_drops(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    forwarder = _forwarder(tmp_path, tenant_log_targets=(f"127.0.0.1:{port}",),
                           log_protocol="TCP", disable_local_log_storage=True)
    forwarder.handle(FLOW)
    forwarder.handle(FLOW)
    connection, _ = server.accept()
    connection.settimeout(5)
    received = b""
    while received.count(b"\n") < 2:
        received += connection.recv(65536)
    assert received == FLOW * 2
    assert not (tmp_path / "tenant.log").exists()
    connection.close()
    server.close()
    for _ in range(3):  # the peer is gone: the messages are dropped, never blocking
        forwarder.handle(FLOW)
    assert forwarder.dropped >= 1


@pytest.mark.parametrize("target", ["127.0.0.1:9", "[::1]:9"])
def test_udp_to_a_closed_port_does_not_block(tmp_path, target):
    forwarder = _forwarder(tmp_path, tenant_log_targets=(target,))
    forwarder.handle(FLOW)
    forwarder.handle(FLOW)
