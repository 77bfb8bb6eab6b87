"""Draining an amphora before its VIP moves (lbaas.amphora.agent.drain), for real: a
haproxy with a ``peers`` section, as every ACTIVE_STANDBY amphora has, in a namespace of
the test's own (the drain's nftables table goes there)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dataplane import netns

pytestmark = pytest.mark.root

# Run inside the namespace: a backend that answers when told and one that never does,
# haproxy in front of them (with a peer that is never there), a client of each waiting
# for its answer, then drains the first one's address only.
SCRIPT = textwrap.dedent("""
    import socket, sys, threading
    from pathlib import Path
    from lbaas.amphora.agent import drain
    from lbaas.amphora.agent.haproxy import Haproxy, HaproxyPaths
    from lbaas.amphora.agent.nft import Nft

    base, lb_id = Path(sys.argv[1]), sys.argv[2]
    answer = threading.Event()
    backend = socket.create_server(("127.0.0.3", 0))

    def serve_when_told():
        connection = backend.accept()[0]
        connection.recv(1024)
        answer.wait()
        connection.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
        connection.close()

    threading.Thread(target=serve_when_told, daemon=True).start()
    silent = socket.create_server(("127.0.0.3", 0))
    paths = HaproxyPaths(base, lb_id)
    paths.directory.mkdir(parents=True)
    # The VIP is 127.0.0.1; haproxy reaches the backend from 127.0.0.4 and the client
    # comes from 127.0.0.2, as in an amphora, where only haproxy's end has the VIP.
    paths.config.write_text(f\'\'\'global
        stats socket {paths.stats_socket} level admin expose-fd listeners
        localpeer me
    defaults
        mode http
        timeout connect 1s
        timeout client 30s
        timeout server 30s
    peers pair
        peer me 127.0.0.1:1025
        peer other 127.0.0.9:1025
    frontend f
        bind 127.0.0.1:8080
        default_backend b
    backend b
        stick-table type ip size 1k peers pair
        server s 127.0.0.3:{backend.getsockname()[1]} source 127.0.0.4
    frontend other
        bind 127.0.0.5:8080
        default_backend never
    backend never
        server s 127.0.0.3:{silent.getsockname()[1]} source 127.0.0.4
    \'\'\')
    haproxy = Haproxy(paths)
    haproxy.start()
    request = b"GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n"
    elsewhere = socket.create_connection(("127.0.0.5", 8080), source_address=("127.0.0.2", 0))
    elsewhere.sendall(request)  # answered never: haproxy cannot exit while it is open
    client = socket.create_connection(("127.0.0.1", 8080), source_address=("127.0.0.2", 0))
    client.sendall(request)
    print("held", drain.drain([haproxy], ["127.0.0.1"], Nft(), 0.3) != [])
    try:
        socket.create_connection(("127.0.0.1", 8080), timeout=0.3,
                                 source_address=("127.0.0.2", 0)).close()
        print("new connection served")
    except OSError:
        print("new connection dropped")
    answer.set()
    print("answered", client.recv(1024).split(b"\\r\\n")[0].decode())
    client.close()
    print("after close", drain.drain([haproxy], ["127.0.0.1"], Nft(), 10.0))
    print("haproxy still there", haproxy.pids() != [])
    elsewhere.close()
    haproxy.stop()
""")


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"lbt-drain-{netns.short_id()}"
    netns.ip("netns", "add", name)
    try:
        netns.ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        for pid in netns.ip("netns", "pids", name, check=False).stdout.split():
            subprocess.run(["kill", "-9", pid], check=False)
        netns.ip("netns", "del", name, check=False)


def test_a_drain_waits_for_open_connections_only(namespace: str, tmp_path: Path):
    """While a client of the drained address waits for its answer the drain holds (and
    new connections are dropped, not refused); once it is gone the drain ends, though the
    soft-stopped haproxy lives on for a connection to another address (or, in an
    amphora, for its peers)."""
    result = netns.in_namespace(namespace, sys.executable, "-c", SCRIPT, str(tmp_path),
                                str(uuid.uuid4()), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "held True", "new connection dropped", "answered HTTP/1.1 200 OK", "after close []",
        "haproxy still there True"]
