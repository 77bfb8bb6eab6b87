"""A reload loses no request on a kept-alive connection.

haproxy runs on loopback as the amphora agent runs it (``lbaas.amphora.agent.haproxy``:
``-x`` takes the listeners over, ``-sf`` soft-stops the old process), on a configuration
from the renderer. The client holds a keep-alive connection that the old process owns and
that is idle while the reload happens, then sends on it: the case where a client got
``RemoteDisconnected`` (the old process closed its idle connections at soft-stop).
"""
from __future__ import annotations

import dataclasses
import http.client
import http.server
import resource
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbaas.amphora import haproxy_config
from lbaas.amphora.agent.haproxy import Haproxy, HaproxyPaths
from tests.helpers.haproxy_models import (
    OPTIONS,
    free_port,
    listener,
    load_balancer,
    member,
    pool,
    uid,
)

pytestmark = pytest.mark.root  # haproxy drops to user nobody


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        body = b"hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def backend() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def configuration(paths: HaproxyPaths, port: int, backend_port: int, timeout: int) -> str:
    lb = load_balancer(listener(port=port, timeout_member_data=timeout, default_pool=pool(
        members=(member(1, "127.0.0.1", backend_port),))), vip_address="127.0.0.1")
    options = dataclasses.replace(OPTIONS, stats_socket=paths.stats_socket,
                                  server_state_file=str(paths.state_file), pid_file=str(paths.pid),
                                  fd_limit=resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    return haproxy_config.render(lb, options)


def test_a_request_on_a_connection_idle_during_a_reload_is_answered(tmp_path: Path, backend: int):
    paths = HaproxyPaths(tmp_path, uid(1))
    haproxy = Haproxy(paths)
    port = free_port()
    haproxy.install(configuration(paths, port, backend, 50000))
    assert haproxy.apply() == "started"
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        for timeout in (40000, 30000, 20000):  # each a change that needs a reload
            client.request("GET", "/")
            response = client.getresponse()
            assert (response.status, response.read()) == (200, b"hello\n")
            old = haproxy.current_pid()
            haproxy.install(configuration(paths, port, backend, timeout))
            assert haproxy.apply() == "reloaded"
            time.sleep(0.3)  # the old process has soft-stopped: idle connections went then
            client.request("GET", "/")  # on the connection the old process holds
            response = client.getresponse()
            assert (response.status, response.read()) == (200, b"hello\n")
            # ... which it answers with "Connection: close", then exits.
            assert response.getheader("connection", "").lower() == "close"
            client.close()
            deadline = time.monotonic() + 10
            while old in haproxy.pids() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert old not in haproxy.pids()
    finally:
        client.close()
        haproxy.stop()
