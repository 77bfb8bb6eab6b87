"""The agent's listening side: failed TLS handshakes cost one rate-limited log line each,
its log stays bounded, and it listens on the management interface only."""
from __future__ import annotations

import dataclasses
import logging
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbaas import config
from lbaas.amphora.agent.config import AgentConfig
from lbaas.amphora.agent.server import AgentServer, FailureLog, server_context
from lbaas.certs import pki, store

AMPHORA_ID = "5b6d4c3e-0f1a-4e2b-9c8d-7a6b5c4d3e2f"
ATTEMPTS = 200


@pytest.fixture
def agent_config(tmp_path: Path) -> AgentConfig:
    settings = config.load(environ={"LBAAS__DEFAULT__state_path": str(tmp_path)})
    paths = store.ensure(settings)
    issued = pki.issue_amphora_certificate(store.load_server_ca(settings), AMPHORA_ID, 3600)
    (tmp_path / "server.pem").write_bytes(issued.pem)
    return AgentConfig(amphora_id=AMPHORA_ID, base_path=tmp_path / "amphora",
                       bind_host="127.0.0.1", bind_port=0,
                       agent_server_cert=tmp_path / "server.pem",
                       agent_server_ca=paths.client_ca)


@pytest.fixture
def agent(agent_config: AgentConfig) -> Iterator[AgentServer]:
    server = AgentServer(agent_config, server_context(agent_config))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def fail_handshakes(port: int, count: int) -> None:
    """``count`` TLS clients without a client certificate (the agent refuses each)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    for _ in range(count):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with context.wrap_socket(raw) as stream:
                    stream.sendall(b"GET / HTTP/1.1\r\n\r\n")
                    stream.recv(1)
        except OSError:
            pass


def test_failure_log_lets_a_burst_through_then_counts(caplog):
    now = [0.0]
    log = FailureLog(burst=3, interval=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="lbaas.amphora.agent.server"):
        for _ in range(10):
            log.failed(("192.0.2.1", 5000), ConnectionResetError("reset by peer"))
        now[0] = 61
        log.failed(("192.0.2.1", 5000), ConnectionResetError("reset by peer"))
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 4
    assert lines[0] == "connection from 192.0.2.1 failed: ConnectionResetError: reset by peer"
    assert lines[3].endswith("(7 more failed connections not logged)")


def test_failed_handshakes_cost_one_line_each_without_tracebacks(agent, caplog):
    with caplog.at_level(logging.INFO, logger="lbaas.amphora.agent.server"):
        fail_handshakes(agent.server_address[1], ATTEMPTS)
        deadline = time.monotonic() + 10
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.05)
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert 1 <= len(warnings) <= FailureLog().burst
    assert all(record.exc_info is None for record in caplog.records)
    assert all("connection from 127.0.0.1 failed: SSLError" in record.getMessage()
               for record in warnings)


def test_the_agent_log_is_rotated_at_its_size_limit(agent_config, tmp_path):
    """200 refused handshakes used to write 295 KB of tracebacks to agent.log."""
    log_file = tmp_path / "agent.log"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = tmp_path / "amphora-agent.conf"
    dataclasses.replace(agent_config, bind_port=port, log_file=log_file, log_max_bytes=4096,
                        log_backup_count=1).write(conf)
    agent = subprocess.Popen([sys.executable, "-m", "lbaas.amphora.agent", "--config-file",
                              str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        for _ in range(5):  # five windows' worth, as if minutes passed
            fail_handshakes(port, ATTEMPTS // 5)
        time.sleep(0.5)
    finally:
        agent.terminate()
        agent.wait(10)
    files = sorted(tmp_path.glob("agent.log*"))
    assert log_file in files
    assert sum(path.stat().st_size for path in files) <= 4096 * 2 + 1024
    assert "Traceback" not in "".join(path.read_text() for path in files)


def test_stopping_a_server_that_never_served_returns_and_it_then_never_serves(agent_config):
    """The host agent may stop an amphora's services while they are still starting."""
    server = AgentServer(agent_config, server_context(agent_config))
    stopper = threading.Thread(target=lambda: (server.stop(), server.stop()))
    stopper.start()
    stopper.join(5)
    assert not stopper.is_alive()
    server.serve_until_stopped()  # returns at once


def test_stop_wakes_a_serving_loop(agent_config):
    """The loop polls once an hour: only stop's wake-up ends it within the join."""
    server = AgentServer(agent_config, server_context(agent_config))
    loop = threading.Thread(target=server.serve_until_stopped)
    loop.start()
    time.sleep(0.2)
    server.stop()
    loop.join(5)
    assert not loop.is_alive()
