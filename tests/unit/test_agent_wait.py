"""Waiting for a new amphora's agent gives up after the configured time, also when every
connection attempt is silently dropped (loopback: a listener whose queue is full)."""
from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbaas import config
from lbaas.certs import store
from lbaas.db.models import Amphora
from lbaas.drivers.amphora.rest import AgentError, RestAmphoraDriver

RETRIES, INTERVAL = 50, 0.02  # 1 s in all; each try's connect timeout is 0.2 s


@pytest.fixture
def full_listener() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops further SYNs unanswered."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    queued = []
    for _ in range(3):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(("127.0.0.1", port))
        queued.append(client)
    time.sleep(0.2)  # the handshakes that the queue takes complete
    try:
        yield port
    finally:
        for client in queued:
            client.close()
        listener.close()


def test_waiting_for_an_agent_whose_syns_are_dropped_ends_on_time(tmp_path: Path, full_listener):
    settings = config.load(environ={"LBAAS__DEFAULT__state_path": str(tmp_path)})
    paths = store.ensure(settings)
    haproxy = settings.haproxy_amphora.model_copy(update={
        "bind_port": full_listener, "connection_max_retries": RETRIES,
        "connection_retry_interval": INTERVAL})
    driver = RestAmphoraDriver(haproxy, paths.client_cert, paths.server_ca)
    amphora = Amphora(id="5b6d4c3e-0f1a-4e2b-9c8d-7a6b5c4d3e2f", lb_network_ip="127.0.0.1")
    started = time.monotonic()
    with pytest.raises(AgentError, match="did not answer within 1 s"):
        driver.wait_ready(amphora)
    # Counting tries alone took RETRIES x (0.2 + INTERVAL) = 11 s.
    assert time.monotonic() - started < 3
    driver.forget(amphora.id)
