"""One agent process per host (``[haproxy_amphora] agent_launcher = host``): every amphora
served as its own agent would serve it, from its own namespace, with its own
certificate, heartbeats and log; the process is forked again when it dies and serves the
amphorae again; a deleted amphora is let go of, namespace included."""
from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from lbaas import config
from lbaas.drivers.compute.launcher import HostAgentLauncher
from lbaas.drivers.compute.netns import namespace_of
from tests.dataplane.controllers import host_agent_namespaces
from tests.helpers.dataplane import balanced, build, live_amphorae, put_and_wait, wait_until

pytestmark = pytest.mark.root


@pytest.fixture
def settings(settings: config.Settings) -> config.Settings:
    settings.haproxy_amphora.agent_launcher = "host"
    return settings


def _served(launcher: HostAgentLauncher) -> set[str] | None:
    """The amphorae the host agent serves (None while none listens: one forked again
    binds its socket a moment after it starts)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(10)
            client.connect(str(launcher.socket_path))
            client.sendall(b'{"served": true}\n')
            with client.makefile("rb") as stream:
                return {Path(path).name for path in json.loads(stream.readline())["served"]}
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


def test_one_host_agent_serves_every_amphora(dataplane, topology, services, drivers):
    first = build(dataplane, topology)
    second = build(dataplane, topology)
    for made in (first, second):
        assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}
    launcher = drivers.compute.launcher
    assert isinstance(launcher, HostAgentLauncher)
    amphorae = [amphora for made in (first, second)
                for amphora in live_amphorae(services, made["lb"]["id"])]
    assert _served(launcher) == {amphora.id for amphora in amphorae}
    supervisor = launcher._pid()
    assert supervisor is not None
    [agent] = _children(supervisor)
    base = services.settings.haproxy_amphora.base_path
    for amphora in amphorae:
        # No agent process in the namespace: haproxy only, started by the host agent.
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in
                    drivers.compute._namespace_pids(namespace_of(amphora.id))]
        assert commands and all(b"lbaas.amphora.agent" not in command for command in commands)
        # Its own log, of its own namespace's threads only.
        log = (base / amphora.id / "agent.log").read_text()
        assert f"amphora agent {amphora.id} listening" in log
        assert all(other.id not in log for other in amphorae if other is not amphora)

    os.kill(agent, signal.SIGKILL)  # forked again, it serves both amphorae again
    wait_until(lambda: _children(supervisor) not in ([], [agent]))
    wait_until(lambda: _served(launcher) == {amphora.id for amphora in amphorae})
    put_and_wait(dataplane, f"/v2/lbaas/pools/{first['pool']['id']}/members/"
                 f"{first['members'][0]['id']}", "member", first["lb"]["id"], weight=0)
    assert balanced(topology, first["url"]) == {"backend-2": 10}

    [agent] = _children(supervisor)
    [gone] = live_amphorae(services, second["lb"]["id"])
    inode = os.stat(f"/run/netns/{namespace_of(gone.id)}").st_ino
    assert inode in host_agent_namespaces(base)
    response = dataplane.delete(f"/v2/lbaas/loadbalancers/{second['lb']['id']}",
                                params={"cascade": "true"})
    assert response.status_code == 204
    wait_until(lambda: _served(launcher) == {amphora.id for amphora in
                                              live_amphorae(services, first["lb"]["id"])})
    # None of its threads is left in the deleted amphora's namespace (which would keep it,
    # and its addresses, alive).
    deadline = time.monotonic() + 10
    while inode in host_agent_namespaces(base):
        assert time.monotonic() < deadline, "a thread of the host agent stayed in the namespace"
        time.sleep(0.1)
    assert balanced(topology, first["url"]) == {"backend-2": 10}

    # Once no amphora is left (`lbaas down --all`), the host agent stops.
    drivers.compute.release()
    assert _children(supervisor)  # an amphora still runs: it stays
    response = dataplane.delete(f"/v2/lbaas/loadbalancers/{first['lb']['id']}",
                                params={"cascade": "true"})
    assert response.status_code == 204
    wait_until(lambda: not drivers.compute.instances())
    drivers.compute.release()
    wait_until(lambda: not Path(f"/proc/{supervisor}").exists()
               and not Path(f"/proc/{agent}").exists())
