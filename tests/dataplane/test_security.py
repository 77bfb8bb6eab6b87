"""The control channel and the host are closed to everyone but whom they must serve."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from lbaas.certs import pki, store
from lbaas.db.models import Amphora
from lbaas.drivers.amphora.rest import AgentError, RestAmphoraDriver
from lbaas.network import management
from tests.dataplane import netns
from tests.helpers.api import create_lb

pytestmark = pytest.mark.root


@pytest.fixture
def amphora(dataplane, topology, services) -> Amphora:
    """The amphora of a fresh load balancer."""
    lb = create_lb(dataplane, vip_subnet_id=topology.vips.subnet_id)
    with services.db.read() as session:
        return session.scalars(select(Amphora).where(Amphora.load_balancer_id == lb["id"])).one()


def _curl_agent(amphora: Amphora, *options: str) -> int:
    url = f"https://{amphora.lb_network_ip}:9443/1.0/info"
    return subprocess.run(["curl", "-sk", "--max-time", "5", *options, url],
                          capture_output=True).returncode


def test_agent_refuses_clients_without_a_certificate_from_the_client_ca(amphora, services, tmp_path):
    assert _curl_agent(amphora) != 0  # no client certificate
    stranger_ca = pki.create_ca("stranger")
    stranger = pki.issue_client_certificate(stranger_ca, "controller")
    pem = tmp_path / "stranger.pem"
    pem.write_bytes(stranger.pem)
    assert _curl_agent(amphora, "--cert", str(pem)) != 0
    controller = store.resolve(services.settings).client_cert
    assert _curl_agent(amphora, "--cert", str(controller)) == 0


def test_controller_refuses_an_agent_named_for_another_amphora(amphora, services):
    paths = store.resolve(services.settings)
    driver = RestAmphoraDriver(services.settings.haproxy_amphora, paths.client_cert,
                               paths.server_ca)
    impostor = Amphora(id="00000000-0000-4000-8000-000000000000",
                       lb_network_ip=amphora.lb_network_ip)
    with pytest.raises(AgentError, match="certificate|CERTIFICATE|hostname|match"):
        driver._request("GET", impostor, "1.0/info")
    assert driver._request("GET", amphora, "1.0/info").json()["amphora_id"] == amphora.id


PROBE = """
import socket, sys
host, kind, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if kind == "udp":
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"beat", (host, port)); print("sent")
else:
    s = socket.socket(); s.settimeout(1.5)
    try:
        s.connect((host, port)); print("open")
    except ConnectionRefusedError:
        print("refused")
    except OSError:
        print("blocked")
"""


def test_from_an_amphora_only_the_heartbeat_port_of_the_host_is_reachable(amphora, services):
    controller = str(management.layout(services.settings.networking).controller_ip)
    heartbeat_port = services.settings.health_manager.bind_port
    receiver = subprocess.Popen(
        [sys.executable, "-c", "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
         f"s.bind(('{controller}', {heartbeat_port})); s.settimeout(10); print(s.recv(16).decode())"],
        stdout=subprocess.PIPE, text=True)
    try:
        def probe(kind: str, port: int) -> str:
            return netns.in_namespace(amphora.compute_id, sys.executable, "-c", PROBE, controller,
                                      kind, str(port)).stdout.strip()
        for port in (22, 9876, 5432, 3306):  # SSH, the API, PostgreSQL, MariaDB
            assert probe("tcp", port) == "blocked"
        assert probe("udp", heartbeat_port) == "sent"
        assert receiver.communicate(timeout=15)[0].strip() == "beat"
    finally:
        receiver.kill()
        receiver.wait()


def test_a_tenant_cannot_reach_the_agent_through_the_vip(dataplane, topology, services):
    """A client on the VIP network routes the management network via the VIP (its own
    routes are its business): the amphora takes packets for any of its addresses on any
    interface, but the agent listens on the management interface only."""
    lb = create_lb(dataplane, vip_subnet_id=topology.vips.subnet_id)
    with services.db.read() as session:
        amphora = session.scalars(select(Amphora).where(Amphora.load_balancer_id == lb["id"])).one()
    route = ["ip", "route", "add", services.settings.networking.lb_network_cidr, "via",
             lb["vip_address"]]
    assert netns.in_namespace(topology.client, *route).returncode == 0
    agent_port = str(services.settings.haproxy_amphora.bind_port)
    reached = netns.in_namespace(topology.client, sys.executable, "-c", PROBE,
                                 amphora.lb_network_ip, "tcp", agent_port).stdout.strip()
    assert reached in ("refused", "blocked")
    # The controller still reaches it on the management network.
    assert _curl_agent(amphora, "--cert", str(store.resolve(services.settings).client_cert)) == 0


def _shell(services, *args: str) -> subprocess.CompletedProcess[str]:
    lbaas = Path(sys.executable).parent / "lbaas"
    env = {**os.environ, "LBAAS__DEFAULT__state_path": str(services.settings.DEFAULT.state_path)}
    return subprocess.run([str(lbaas), "amphora", "shell", *args], capture_output=True,
                          text=True, env=env, timeout=60)


def test_root_on_the_host_gets_a_shell_inside_an_amphora_and_nobody_else(amphora, services):
    inside = _shell(services, amphora.id, "--", "ip", "-o", "-4", "addr", "show")
    assert inside.returncode == 0, inside.stderr
    assert f" {amphora.lb_network_ip}/" in inside.stdout  # the amphora's management address
    outside = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True)
    assert f" {amphora.lb_network_ip}/" not in outside.stdout
    unknown = _shell(services, "00000000-0000-4000-8000-000000000000")
    assert (unknown.returncode, unknown.stderr.strip()) == (
        1, "error: no amphora 00000000-0000-4000-8000-000000000000")
