"""UDP listeners on real amphorae: nftables balances datagrams between two echo servers.

Each backend runs a DNS-like UDP server answering every datagram with its name; the client
sends each query from a new socket (a new flow, as a DNS resolver does), so every query
is balanced on its own unless the pool persists sessions. Each query of a test has a
source port of its own: a port the kernel picked again while conntrack still held its
flow would join that flow (same member, not counted as new).
"""
from __future__ import annotations

import collections
import contextlib
import random
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from lbaas import config, service
from lbaas.health.manager import HealthManager
from tests.dataplane import netns
from tests.helpers import wait_for
from tests.helpers.api import (
    create_lb,
    create_listener,
    create_member,
    create_pool,
    wait_lb_active,
)
from tests.helpers.dataplane import Backend, Topology, crash, put_and_wait, vip_holders, wait_until

pytestmark = pytest.mark.root
PORT = 5353
MEMBER_PORT = 53
INTERVAL = 0.5

SERVER = """
import socket, sys
sock = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, peer = sock.recvfrom(2048)
    try:
        sock.sendto(sys.argv[3].encode() + b" " + data, peer)
    except OSError:  # a peer it has no route to: that query goes unanswered
        pass
"""
CLIENT = """
import socket, sys
for index in range(int(sys.argv[3])):
    family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", int(sys.argv[5]) + index))
        sock.settimeout(float(sys.argv[4]))
        try:
            sock.sendto(b"query-%d" % index, (sys.argv[1], int(sys.argv[2])))
            print(sock.recv(2048).decode().split()[0])
        except OSError as exc:
            print(type(exc).__name__)
"""


class UdpServers:
    """A UDP echo server in each backend's namespace (next to its web server, if any)."""

    def __init__(self, backends: list[Backend]) -> None:
        self.backends = {backend.name: backend for backend in backends}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        backend = self.backends[name]
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


@contextlib.contextmanager
def serving(backends: list[Backend]) -> Iterator[UdpServers]:
    servers = UdpServers(backends)
    try:
        for backend in backends:
            servers.start(backend.name)
        yield servers
    finally:
        servers.close()


@pytest.fixture
def udp_servers(topology: Topology) -> Iterator[UdpServers]:
    with serving(topology.backends) as servers:
        yield servers


def _unused_ula_prefix() -> str:
    """A random unique local /48 (``fdxx:xxxx:xxxx``) that no route of the host uses."""
    routes = netns.ip("-6", "route", "show").stdout
    while True:
        prefix = f"fd{random.randrange(256):02x}:{random.randrange(65536):x}:" \
                 f"{random.randrange(65536):x}"
        if f"{prefix}:" not in routes:
            return prefix


def _settled(namespace: str) -> bool:
    """Whether duplicate address detection is over (a tentative address cannot be bound)."""
    return not netns.ip("-n", namespace, "-6", "addr", "show", "tentative").stdout.strip()


@pytest.fixture
def topology6(make_network, tmp_path) -> Iterator[Topology]:
    """``topology`` over IPv6: two members and a client, each a namespace on its network."""
    prefix = _unused_ula_prefix()
    members = make_network("members6", f"{prefix}:1::/64", f"{prefix}:1::100-{prefix}:1::200")
    vips = make_network("vips6", f"{prefix}:2::/64", f"{prefix}:2::100-{prefix}:2::200")
    with contextlib.ExitStack() as stack:
        hosts = []
        for index in (1, 2):
            address = f"{prefix}:1::1{index}"
            namespace = stack.enter_context(netns.namespace(
                f"lbt-backend-{index}-{netns.short_id()}", members.bridge, f"{address}/64"))
            hosts.append(Backend(f"backend-{index}", address, namespace, tmp_path))
        client = stack.enter_context(netns.namespace(
            f"lbt-client-{netns.short_id()}", vips.bridge, f"{prefix}:2::50/64"))
        for namespace in (client, *(host.namespace for host in hosts)):
            wait_until(lambda namespace=namespace: _settled(namespace), timeout=10)
        yield Topology(members, vips, hosts, client)


@pytest.fixture
def health_manager(dataplane, services: service.Services) -> Iterator[HealthManager]:
    with service.running_health_manager(services) as manager:
        yield manager


class SourcePorts:
    """Source ports never used before in this test run, ``count`` at a time."""

    def __init__(self) -> None:
        self.next = random.randrange(20000, 40000)

    def take(self, count: int) -> str:
        first, self.next = self.next, self.next + count
        return str(first)


SOURCE_PORTS = SourcePorts()


def client_command(namespace: str, vip: str, count: int, timeout: float) -> list[str]:
    """``count`` queries to the listener (a new flow each), printing who answered each."""
    return ["ip", "netns", "exec", namespace, sys.executable, "-c", CLIENT, vip, str(PORT),
            str(count), str(timeout), SOURCE_PORTS.take(count)]


def query(topology: Topology, vip: str, count: int = 10, timeout: float = 1.0) -> list[str]:
    """Who answered each of ``count`` queries (a new flow each), or the error."""
    result = subprocess.run(client_command(topology.client, vip, count, timeout),
                            capture_output=True, text=True, timeout=count * timeout + 10,
                            check=False)
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


def test_udp_listener_balances_by_algorithm_weight_and_persistence(
        dataplane, topology, udp_servers, health_manager):
    made = build_udp(dataplane, topology)
    lb_id, pool_path = made["lb"]["id"], f"/v2/lbaas/pools/{made['pool']['id']}"
    # ROUND_ROBIN: the queries take turns.
    assert collections.Counter(query(topology, made["vip"])) == {"backend-1": 5, "backend-2": 5}
    # Weights 3:1.
    first = made["members"][0]
    put_and_wait(dataplane, f"{pool_path}/members/{first['id']}", "member", lb_id, weight=3)
    assert collections.Counter(query(topology, made["vip"], 20)) == {"backend-1": 15,
                                                                     "backend-2": 5}
    # SOURCE_IP: one client, one member.
    put_and_wait(dataplane, pool_path, "pool", lb_id, lb_algorithm="SOURCE_IP")
    assert len(set(query(topology, made["vip"]))) == 1
    # SOURCE_IP persistence on a ROUND_ROBIN pool: the member of the first query keeps it.
    put_and_wait(dataplane, pool_path, "pool", lb_id, lb_algorithm="ROUND_ROBIN",
         session_persistence={"type": "SOURCE_IP", "persistence_timeout": 60})
    answers = query(topology, made["vip"])
    assert len(answers) == 10 and len(set(answers)) == 1 and answers[0].startswith("backend")
    # The heartbeats carry the listener's counters: stats and statuses as for TCP.
    path = f"/v2/lbaas/listeners/{made['listener']['id']}"
    wait_until(lambda: dataplane.get(f"{path}/stats").json()["stats"]["total_connections"] >= 50,
               timeout=10)
    stats = dataplane.get(f"{path}/stats").json()["stats"]
    assert stats["total_connections"] == 50, stats
    assert stats["bytes_in"] > 0 and stats["bytes_out"] > 0
    status = dataplane.get(f"/v2/lbaas/loadbalancers/{lb_id}/status").json()["statuses"]
    listener = status["loadbalancer"]["listeners"][0]
    assert listener["operating_status"] == "ONLINE"
    assert status["loadbalancer"]["operating_status"] == "ONLINE"
    assert {member["operating_status"] for member in listener["pools"][0]["members"]} == {
        "NO_MONITOR"}
    # allowed_cidrs: a client outside them gets nothing.
    put_and_wait(dataplane, path, "listener", lb_id, allowed_cidrs=["192.0.2.0/24"])
    assert query(topology, made["vip"], 2, 0.5) == ["TimeoutError"] * 2
    # connection_limit: flows tracked at once; those beyond it are dropped and counted.
    put_and_wait(dataplane, path, "listener", lb_id, allowed_cidrs=[], connection_limit=3)
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


def test_udp_listener_serves_ipv6(dataplane, topology6, health_manager):
    with serving(topology6.backends):
        made = build_udp(dataplane, topology6)
        assert made["vip"].startswith(topology6.vips.cidr.split("::")[0])
        # Served as soon as the load balancer is ACTIVE (the amphora's IPv6 addresses skip
        # duplicate address detection); then balanced and persisted as over IPv4.
        assert query(topology6, made["vip"], 1)[0].startswith("backend")
        assert collections.Counter(query(topology6, made["vip"])) == {"backend-1": 5,
                                                                       "backend-2": 5}
        put_and_wait(dataplane, f"/v2/lbaas/pools/{made['pool']['id']}", "pool", made["lb"]["id"],
             session_persistence={"type": "SOURCE_IP", "persistence_timeout": 60})
        answers = query(topology6, made["vip"])
        assert len(answers) == 10 and len(set(answers)) == 1 and answers[0].startswith("backend")
        path = f"/v2/lbaas/listeners/{made['listener']['id']}/stats"
        wait_until(lambda: dataplane.get(path).json()["stats"]["total_connections"] >= 21,
                   timeout=10)
        stats = dataplane.get(path).json()["stats"]
        assert stats["total_connections"] == 21 and stats["bytes_out"] > 0, stats


@pytest.mark.parametrize("settings", ["ACTIVE_STANDBY"], indirect=True)
def test_udp_service_follows_the_vip_when_the_master_dies(
        dataplane, topology, udp_servers, services, drivers):
    made = build_udp(dataplane, topology)
    wait_until(lambda: len(vip_holders(services, drivers, made["lb"])) == 1)
    assert collections.Counter(query(topology, made["vip"])) == {"backend-1": 5, "backend-2": 5}
    master = vip_holders(services, drivers, made["lb"])[0]
    # Queries keep flowing while the MASTER dies: the BACKUP takes the VIP and serves.
    client = subprocess.Popen(
        client_command(topology.client, made["vip"], 60, 0.2), stdout=subprocess.PIPE,
        text=True)
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
