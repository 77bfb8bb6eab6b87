"""From an amphora's namespace, the controller host answers heartbeats and ping only."""
from __future__ import annotations

import contextlib
import socket
import sys
import threading

import pytest

from lbaas import firewall
from tests.dataplane import netns

pytestmark = pytest.mark.root

HOST = "172.29.255.1"
AMPHORA = "172.29.255.2"
HEARTBEAT_PORT = 15555
PROBE = f"""
import socket, sys
kind, port = sys.argv[1], int(sys.argv[2])
if kind == "tcp":
    s = socket.socket(); s.settimeout(1.5)
    try:
        s.connect(("{HOST}", port)); print("open")
    except OSError:
        print("blocked")
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"beat", ("{HOST}", port))
    print("sent")
"""


def _probe(namespace: str, kind: str, port: int) -> str:
    return netns.in_namespace(namespace, sys.executable, "-c", PROBE, kind, str(port)).stdout.strip()


@pytest.fixture
def amphora_network():
    """A management-like bridge with the host on it, and one amphora namespace."""
    name = f"lbt{netns.short_id()}"
    with netns.bridge(name, f"{HOST}/28"):
        with netns.namespace(f"{name}-amp", name, f"{AMPHORA}/28") as amphora:
            yield name, amphora


@pytest.fixture
def listeners():
    """A TCP service (like the API or SSH) and the heartbeat UDP port on the host."""
    tcp = socket.create_server((HOST, 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((HOST, HEARTBEAT_PORT))
    udp.settimeout(3)

    def accept() -> None:
        with contextlib.suppress(OSError):  # the socket is closed when the test ends
            for _ in range(4):
                tcp.accept()

    accepting = threading.Thread(target=accept, daemon=True)
    accepting.start()
    try:
        yield tcp.getsockname()[1], udp
    finally:
        tcp.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        tcp.close()
        udp.close()
        accepting.join(5)


def test_amphora_reaches_only_the_heartbeat_port(amphora_network, listeners):
    bridge_name, amphora = amphora_network
    tcp_port, udp = listeners
    spec = firewall.FirewallSpec(management_bridge=bridge_name, heartbeat_port=HEARTBEAT_PORT,
                                 chain_prefix=f"LBT{bridge_name[3:]}")
    assert _probe(amphora, "tcp", tcp_port) == "open"
    try:
        firewall.apply(spec)
        firewall.apply(spec)  # idempotent: still one jump per built-in chain
        assert firewall.installed(spec)
        jumps = netns.subprocess.run(["iptables", "-S", "INPUT"], capture_output=True,
                                     text=True).stdout.count(spec.input_chain)
        assert jumps == 1
        assert _probe(amphora, "tcp", tcp_port) == "blocked"
        assert _probe(amphora, "udp", HEARTBEAT_PORT) == "sent"
        assert udp.recvfrom(64)[0] == b"beat"
        assert netns.in_namespace(amphora, "ping", "-c", "1", "-W", "2", HOST).returncode == 0
    finally:
        firewall.remove(spec)
    assert not firewall.installed(spec)
    assert _probe(amphora, "tcp", tcp_port) == "open"
