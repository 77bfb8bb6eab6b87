"""Access logs: haproxy's flow logs and notices, kept in the amphora (bounded) and sent
to the operator's syslog receivers ([amphora_agent] tenant_log_targets and
admin_log_targets), as upstream's log offloading."""
from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from lbaas import config
from lbaas.amphora.agent.logs import facility
from lbaas.amphora.heartbeat_settings import bind_ip
from lbaas.db.models import Amphora
from tests.helpers import PROJECT
from tests.helpers.dataplane import (
    CLIENT_ADDRESS,
    build,
    curl,
    dataplane_environ,
    put_and_wait,
    remove_amphorae_directories,
)

pytestmark = pytest.mark.root


class Receiver:
    """A syslog receiver on UDP: the messages it got so far."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.messages: list[str] = []

    def wait_for(self, predicate, timeout: float = 15.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.messages.append(self.sock.recv(65536).decode(errors="replace"))
            except TimeoutError:
                pass
            found = [m for m in self.messages if predicate(m)]
            if found:
                return found
        raise AssertionError(f"no such message within {timeout} s; got {self.messages}")


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    made = {"tenant": Receiver(), "admin": Receiver()}
    yield made
    for receiver in made.values():
        receiver.sock.close()


@pytest.fixture
def settings(tmp_path: Path, receivers) -> Iterator[config.Settings]:
    """The data-plane settings, with this test's receivers as the log targets (on the
    controller's address on the management network, where amphorae reach it)."""
    environ = dataplane_environ(tmp_path)
    controller = bind_ip(config.load(environ=environ))
    settings = config.load(environ={
        **environ,
        "LBAAS__amphora_agent__tenant_log_targets": f"{controller}:{receivers['tenant'].port}",
        "LBAAS__amphora_agent__admin_log_targets": f"{controller}:{receivers['admin'].port}"})
    yield settings
    remove_amphorae_directories(settings)


def test_flow_logs_reach_the_tenant_receiver_and_stay_in_the_amphora(
        dataplane, topology, services, receivers):
    made = build(dataplane, topology)
    lb_id, listener_id = made["lb"]["id"], made["listener"]["id"]
    assert curl(topology.client, made["url"] + "?hello") in ("backend-1", "backend-2")
    # Upstream's format: project, load balancer, listener (frontend), client address and
    # port, time, request, status, bytes, ..., backend (pool:listener), server (member).
    [line] = receivers["tenant"].wait_for(lambda m: "GET /?hello" in m)
    fields = line.split(" ")
    assert line.startswith("<134>")  # local0.info
    start = fields.index(PROJECT)
    assert fields[start:start + 4] == [PROJECT, lb_id, listener_id, CLIENT_ADDRESS]
    assert '"GET /?hello HTTP/1.1" 200' in line
    assert f"{made['pool']['id']}:{listener_id}" in line
    assert any(member["id"] in line for member in made["members"])
    # The same line is kept in the amphora, bounded by the agent's log rotation.
    with services.db.read() as session:
        [amphora] = session.scalars(select(Amphora).where(Amphora.load_balancer_id == lb_id))
    kept = services.settings.haproxy_amphora.base_path / amphora.id / "tenant.log"
    assert "GET /?hello" in kept.read_text()
    # haproxy's own notices (a reload stopping the old process's proxies) go to admins.
    put_and_wait(dataplane, f"/v2/lbaas/listeners/{listener_id}", "listener", lb_id,
         connection_limit=100)
    receivers["admin"].wait_for(lambda m: listener_id in m and facility(m.encode()) == 17)


def test_connection_logging_off_logs_no_flows(dataplane, topology, services, receivers):
    services.settings.haproxy_amphora.connection_logging = False
    made = build(dataplane, topology)
    assert curl(topology.client, made["url"] + "?quiet") in ("backend-1", "backend-2")
    # A flow would be logged at once; the admin receiver still hears haproxy start.
    receivers["admin"].wait_for(lambda m: made["listener"]["id"] in m)
    assert not any("quiet" in m for m in receivers["tenant"].messages)
    with pytest.raises(AssertionError):
        receivers["tenant"].wait_for(lambda m: "quiet" in m, timeout=2)
