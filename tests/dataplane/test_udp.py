"""UDP listeners on real amphorae: nftables balances datagrams between two echo servers.

Each backend runs a DNS-like UDP server answering every datagram with its name; the client
sends each query from a new socket (a new flow, as a DNS resolver does), so every query
is balanced on its own unless the pool persists sessions.
"""
from __future__ import annotations

import collections
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from lbaas import config, service
from lbaas.health.manager import HealthManager
from tests.api.helpers import create_lb, create_listener, create_member, create_pool, wait_lb_active
from tests.conftest import wait_for
from tests.dataplane import netns
from tests.dataplane.conftest import BackendHosts, Topology
from tests.dataplane.test_active_standby import crash, vip_holders
from tests.dataplane.test_load_balancing import wait_until

pytestmark = pytest.mark.root
PORT = 5353
MEMBER_PORT = 53
INTERVAL = 0.5

SERVER = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, peer = sock.recvfrom(2048)
    sock.sendto(sys.argv[3].encode() + b" " + data, peer)
"""
CLIENT = """
import socket, sys
for index in range(int(sys.argv[3])):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(float(sys.argv[4]))
        try:
            sock.sendto(b"query-%d" % index, (sys.argv[1], int(sys.argv[2])))
            print(sock.recv(2048).decode().split()[0])
        except OSError as exc:
            print(type(exc).__name__)
"""


class UdpServers:
    """A UDP echo server next to each backend's web server (in its namespace)."""

    def __init__(self, backends: BackendHosts) -> None:
        self.backends = backends
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        backend = self.backends.hosts[name]
        self.processes[name] = subprocess.Popen(
            ["ip", "netns", "exec", backend.namespace, sys.executable, "-c", SERVER,
             backend.address, str(MEMBER_PORT), name],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # the socket is bound before the first query comes

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is not None:
            process.kill()
            process.wait()

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name)


@pytest.fixture
def settings(settings: config.Settings, request) -> config.Settings:
    """Heartbeats every half second; the topology a test passes (default SINGLE)."""
    settings.controller_worker.loadbalancer_topology = getattr(request, "param", "SINGLE")
    settings.health_manager.heartbeat_interval = INTERVAL
    settings.health_manager.failover_grace_period = 600  # these tests never want a failover
    settings.api_settings.udp_connect_min_interval_health_monitor = -1  # checks every second
    return settings


@pytest.fixture
def udp_servers(topology: Topology, backends: BackendHosts) -> Iterator[UdpServers]:
    servers = UdpServers(backends)
    try:
        for backend in topology.backends:
            servers.start(backend.name)
        yield servers
    finally:
        servers.close()


@pytest.fixture
def health_manager(dataplane, services: service.Services) -> Iterator[HealthManager]:
    with service.running_health_manager(services) as manager:
        yield manager


def query(topology: Topology, vip: str, count: int = 10, timeout: float = 1.0) -> list[str]:
    """Who answered each of ``count`` queries (a new flow each), or the error."""
    result = netns.in_namespace(topology.client, sys.executable, "-c", CLIENT, vip, str(PORT),
                                str(count), str(timeout))
    return result.stdout.split()


def build_udp(client, topology: Topology, pool: dict | None = None) -> dict:
    lb = create_lb(client, vip_subnet_id=topology.vips.subnet_id)
    listener = create_listener(client, lb["id"], "UDP", PORT)
    made_pool = create_pool(client, lb["id"], "UDP", listener_id=listener["id"], **(pool or {}))
    members = [create_member(client, made_pool["id"], backend.address,
                             protocol_port=MEMBER_PORT, subnet_id=topology.members.subnet_id)
               for backend in topology.backends]
    return {"lb": lb, "listener": listener, "pool": made_pool, "members": members,
            "vip": lb["vip_address"]}


def _put(client, path: str, root: str, lb_id: str, **body) -> None:
    response = client.put(path, json={root: body})
    assert response.status_code == 200, response.text
    wait_lb_active(client, lb_id)


def test_udp_listener_balances_by_algorithm_weight_and_persistence(
        dataplane, topology, udp_servers, health_manager):
    made = build_udp(dataplane, topology)
    lb_id, pool_path = made["lb"]["id"], f"/v2/lbaas/pools/{made['pool']['id']}"
    # ROUND_ROBIN: the queries take turns.
    assert collections.Counter(query(topology, made["vip"])) == {"backend-1": 5, "backend-2": 5}
    # Weights 3:1.
    first = made["members"][0]
    _put(dataplane, f"{pool_path}/members/{first['id']}", "member", lb_id, weight=3)
    assert collections.Counter(query(topology, made["vip"], 20)) == {"backend-1": 15,
                                                                     "backend-2": 5}
    # SOURCE_IP: one client, one member.
    _put(dataplane, pool_path, "pool", lb_id, lb_algorithm="SOURCE_IP")
    assert len(set(query(topology, made["vip"]))) == 1
    # SOURCE_IP persistence on a ROUND_ROBIN pool: the member of the first query keeps it.
    _put(dataplane, pool_path, "pool", lb_id, lb_algorithm="ROUND_ROBIN",
         session_persistence={"type": "SOURCE_IP", "persistence_timeout": 60})
    answers = query(topology, made["vip"])
    assert len(answers) == 10 and len(set(answers)) == 1 and answers[0].startswith("backend")
    # The heartbeats carry the listener's counters: stats and statuses as for TCP.
    path = f"/v2/lbaas/listeners/{made['listener']['id']}"
    wait_until(lambda: dataplane.get(f"{path}/stats").json()["stats"]["total_connections"] == 50,
               timeout=10)
    stats = dataplane.get(f"{path}/stats").json()["stats"]
    assert stats["bytes_in"] > 0 and stats["bytes_out"] > 0
    status = dataplane.get(f"/v2/lbaas/loadbalancers/{lb_id}/status").json()["statuses"]
    listener = status["loadbalancer"]["listeners"][0]
    assert listener["operating_status"] == "ONLINE"
    assert status["loadbalancer"]["operating_status"] == "ONLINE"
    assert {member["operating_status"] for member in listener["pools"][0]["members"]} == {
        "NO_MONITOR"}
    # allowed_cidrs: a client outside them gets nothing.
    _put(dataplane, path, "listener", lb_id, allowed_cidrs=["192.0.2.0/24"])
    assert query(topology, made["vip"], 2, 0.5) == ["TimeoutError"] * 2
    # connection_limit: flows tracked at once; those beyond it are dropped and counted.
    _put(dataplane, path, "listener", lb_id, allowed_cidrs=[], connection_limit=3)
    answers = query(topology, made["vip"], 6, 0.5)
    assert answers.count("TimeoutError") == 3 and len(answers) == 6, answers
    wait_until(lambda: dataplane.get(f"{path}/stats").json()["stats"]["request_errors"] >= 3,
               timeout=10)


def test_udp_monitor_takes_a_killed_member_out_and_back(
        dataplane, topology, udp_servers, health_manager):
    made = build_udp(dataplane, topology)
    response = dataplane.post("/v2/lbaas/healthmonitors", json={"healthmonitor": {
        "pool_id": made["pool"]["id"], "type": "UDP-CONNECT", "delay": 1, "timeout": 1,
        "max_retries": 1, "max_retries_down": 2}})
    assert response.status_code == 201, response.text
    wait_lb_active(dataplane, made["lb"]["id"])
    assert collections.Counter(query(topology, made["vip"])) == {"backend-1": 5, "backend-2": 5}
    udp_servers.stop("backend-2")
    killed = time.monotonic()
    # Out within delay * max_retries_down plus one interval (and the rules' reload).
    wait_until(lambda: set(query(topology, made["vip"], 4, 0.5)) == {"backend-1"}, timeout=6)
    assert time.monotonic() - killed <= 1 * 2 + 1 + 2
    assert collections.Counter(query(topology, made["vip"])) == {"backend-1": 10}
    member_path = f"/v2/lbaas/pools/{made['pool']['id']}/members/{made['members'][1]['id']}"
    wait_for(lambda: dataplane.get(member_path).json()["member"], "operating_status", "ERROR",
             timeout=10)
    udp_servers.start("backend-2")
    wait_until(lambda: set(query(topology, made["vip"], 4, 0.5)) == {"backend-1", "backend-2"},
               timeout=6)
    wait_for(lambda: dataplane.get(member_path).json()["member"], "operating_status", "ONLINE",
             timeout=10)




@pytest.mark.parametrize("settings", ["ACTIVE_STANDBY"], indirect=True)
def test_udp_service_follows_the_vip_when_the_master_dies(
        dataplane, topology, udp_servers, services, drivers):
    made = build_udp(dataplane, topology)
    wait_until(lambda: len(vip_holders(services, drivers, made["lb"])) == 1)
    assert collections.Counter(query(topology, made["vip"])) == {"backend-1": 5, "backend-2": 5}
    master = vip_holders(services, drivers, made["lb"])[0]
    # Queries keep flowing while the MASTER dies: the BACKUP takes the VIP and serves.
    client = subprocess.Popen(
        ["ip", "netns", "exec", topology.client, sys.executable, "-c", CLIENT, made["vip"],
         str(PORT), "60", "0.2"], stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    crash(master)
    answers = client.communicate(timeout=60)[0].split()
    served = [answer for answer in answers if answer.startswith("backend")]
    assert answers[0].startswith("backend") and answers[-1].startswith("backend")
    assert len(answers) - len(served) <= 10, answers  # at most ~2 s of lost queries
    wait_until(lambda: len(vip_holders(services, drivers, made["lb"])) == 1, timeout=10)
    holders = vip_holders(services, drivers, made["lb"])
    assert [amphora.role for amphora in holders] == ["BACKUP"], answers
    assert collections.Counter(query(topology, made["vip"])) == {"backend-1": 5, "backend-2": 5}
