"""The services of a host start together (systemd starts their units at once), and each
prepares the host: the management bridge, its address and the firewall (root).

Before they took turns, two of them could both find the bridge's address missing and
the second failed to start ("Address already assigned"), and their firewall rules
interleaved: a DROP ahead of the ACCEPT of replies cut every agent call off (a two-host
test's create failed after a 10 s connect timeout).
"""
from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbaas import config, firewall, host
from lbaas.network.bridge import Bridges
from tests.dataplane.controllers import module_services, reserve_second_host, second_host
from tests.db import servers
from tests.helpers import wait_for
from tests.helpers.dataplane import dataplane_environ

pytestmark = pytest.mark.root

# Each process loads everything, says so (the file sys.argv[3]), then waits for the
# others (the file sys.argv[2]) so that they all prepare the host at the same moment.
PREPARE = """
import sys, time
from pathlib import Path
from lbaas import config, host, service
services = service.open_services(config.load(sys.argv[1]), upgrade=False)
Path(sys.argv[3]).touch()
while not Path(sys.argv[2]).exists():
    time.sleep(0.001)
host.prepare(services.settings, services.db)
"""
PER_HOST = 3  # the worker, the health manager and housekeeping


@pytest.fixture
def environ(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A fresh deployment's settings with room for a second controller host, on
    PostgreSQL (SQLite's one writer would space the processes out); the bridge and
    firewall its services make are removed at the end."""
    with tempfile.TemporaryDirectory(prefix="lbaas-postgresql-") as workdir, \
            servers.postgresql(Path(workdir)) as url:
        environ = {**reserve_second_host(dataplane_environ(tmp_path / "state")),
                   "LBAAS__database__connection": url}
        with module_services(environ):  # the schema, migrated; leftovers removed after
            yield environ


def _chain(name: str) -> list[str]:
    listed = subprocess.run(["iptables", "-S", name], capture_output=True, text=True, check=True)
    return listed.stdout.splitlines()[1:]  # after "-N name"


def test_services_starting_together_prepare_the_host_once(environ, tmp_path):
    empty = tmp_path / "lbaas.conf"
    empty.write_text("")
    go = tmp_path / "go"
    started = [subprocess.Popen(
        [sys.executable, "-c", PREPARE, str(empty), str(go), str(tmp_path / f"ready-{index}")],
        env={**os.environ, **environ, **(second_host(environ, "ctl-b") if index % 2 else {})},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for index in range(2 * PER_HOST)]
    wait_for(lambda: {"ready": len(list(tmp_path.glob("ready-*")))}, "ready", len(started),
             timeout=60)
    go.touch()
    outputs = [process.communicate(timeout=120)[0] for process in started]
    assert [process.returncode for process in started] == [0] * len(started), outputs

    settings = config.load(empty, environ=environ)
    cidr = ipaddress.ip_network(environ["LBAAS__networking__lb_network_cidr"])
    bridge = settings.networking.lb_network_bridge
    assert sorted(Bridges().addresses(bridge)) == [f"{cidr[1]}/24", f"{cidr[2]}/24"]
    spec = host.firewall_spec(settings)
    for chain, jump in firewall.jumps(spec).items():
        assert sum(rule.endswith(f"-j {jump[-1]}") for rule in _chain(chain)) == 1, _chain(chain)
    assert len(_chain(spec.input_chain)) == len(firewall.rules(spec)[spec.input_chain])
    assert _chain(spec.input_chain)[0].endswith("--ctstate RELATED,ESTABLISHED -j ACCEPT")
    assert _chain(spec.input_chain)[-1].endswith("-j DROP")
