"""Several hosts on one machine: each "host" is a network namespace with one leg on an
underlay bridge and its own ``lbaas compute-agent`` (entered with ``nsenter``); its
amphorae plug into that host's bridges, which VXLAN joins to the other hosts'. The
controller (API, worker, health manager) runs in the test process, in the root namespace,
itself a host of the underlay (its management network joins the compute hosts' by VXLAN).

``running_cluster`` makes all of it and removes it at the end, also on failure:
amphorae, hosts (namespaces and agents), networks, bridges, firewall rules. The tests
(``cluster`` fixture) and ``bench/multihost_bench.py`` use it.
"""
from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from lbaas import config, service
from lbaas.api.app import create_app
from lbaas.certs import store, tls
from lbaas.db.models import Amphora, Network
from lbaas.drivers import load as load_drivers
from lbaas.drivers.compute.netns import namespace_of
from lbaas.network import hosts as host_registry
from lbaas.network import registry, segments
from lbaas.network.bridge import Bridges, bridge_mac
from tests.dataplane import netns
from tests.helpers import PROJECT, wait_for
from tests.helpers.dataplane import (
    AMPHORAE_ROOT,
    BackendHosts,
    TestNetwork,
    free_subnet,
    remove_leftovers,
)
from tests.helpers.openapi import checked

LBAAS = Path(sys.executable).parent / "lbaas"
HOSTS = ("host-a", "host-b", "host-c")
CONVERGE = 60.0


@dataclass
class ComputeHost:
    """A simulated machine: its namespace with a leg on the underlay, its compute agent."""

    name: str
    underlay: str
    underlay_ip: str
    base_path: Path
    environ: dict[str, str]
    log: Path
    namespace: str = ""
    agent: subprocess.Popen[bytes] | None = None

    def boot(self) -> None:
        """The machine starts: a new namespace on the underlay, its agent running. Its
        NIC keeps its MAC from one boot to the next, as a real machine's does, and
        announces itself when it comes up."""
        self.namespace = f"lbt-{self.name}-{netns.short_id()}"
        netns.ip("netns", "add", self.namespace)
        leg = f"u{netns.short_id()}"
        netns.ip("link", "add", leg, "type", "veth", "peer", "name", "eth0",
                 "address", bridge_mac(f"nic-{self.underlay_ip}"), "netns", self.namespace)
        netns.ip("link", "set", leg, "master", self.underlay, "up")
        netns.ip("-n", self.namespace, "link", "set", "lo", "up")
        netns.in_namespace(self.namespace, "sysctl", "-qw", "net.ipv4.conf.eth0.arp_notify=1")
        netns.ip("-n", self.namespace, "addr", "add", f"{self.underlay_ip}/24", "dev", "eth0")
        netns.ip("-n", self.namespace, "link", "set", "eth0", "up")
        self.start_agent()

    def start_agent(self) -> None:
        with self.log.open("ab") as output:
            # nsenter, not `ip netns exec`: the agent must stay in the machine's mount
            # namespace, or the amphora namespaces it names would not be seen outside it.
            self.agent = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{self.namespace}", str(LBAAS), "compute-agent",
                 "--config-file", "/dev/null"], env={**os.environ, **self.environ},
                stdout=output, stderr=subprocess.STDOUT)

    def stop_agent(self, sig: int = 15) -> None:
        if self.agent is not None and self.agent.poll() is None:
            self.agent.send_signal(sig)
            try:
                self.agent.wait(20)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait()
        self.agent = None

    def amphora_ids(self) -> list[str]:
        return sorted(path.name for path in self.base_path.iterdir()) \
            if self.base_path.is_dir() else []

    def die(self) -> None:
        """The machine dies: its agent and amphorae stop at once, its interfaces vanish."""
        self.stop_agent(9)
        for amphora_id in self.amphora_ids():
            namespace = namespace_of(amphora_id)
            for pid in netns.ip("netns", "pids", namespace, check=False).stdout.split():
                subprocess.run(["kill", "-9", pid], check=False)
            netns.ip("netns", "del", namespace, check=False)
        netns.ip("netns", "del", self.namespace, check=False)  # its underlay leg goes too


@dataclass
class Cluster:
    services: service.Services
    api: TestClient
    hosts: dict[str, ComputeHost]
    controller_ip: str
    vips: TestNetwork
    members: TestNetwork
    client: str
    backends: list[Any]
    underlay: str
    web: str  # the web machine's namespace: the backends' host
    made: list[Any] = field(default_factory=list)

    def amphorae(self, lb_id: str) -> list[Amphora]:
        with self.services.db.read() as session:
            return list(session.scalars(select(Amphora).where(
                Amphora.load_balancer_id == lb_id, Amphora.status == "ALLOCATED")))

    def host_status(self, name: str) -> str:
        with self.services.db.read() as session:
            return host_registry.find(session, name).status


def _vxlan_network(services: service.Services, name: str, cidr: str, pool: str) -> TestNetwork:
    with services.db.write() as session:
        network = registry.create_network(session, f"{name}-{netns.short_id()}",
                                          network_type=segments.VXLAN,
                                          vni_range=services.settings.networking.vni_ranges)
        subnet = registry.create_subnet(session, f"{network.name}-subnet", network, cidr,
                                        pools=[pool])
        return TestNetwork(network.id, subnet.id, network.bridge, cidr)


def join(services: service.Services, network: TestNetwork, namespace: str | None,
         local_ip: str) -> None:
    """Put ``namespace`` (a host, or the root namespace) on ``network``, with every host of
    the underlay as a peer: what a compute agent does when an amphora plugs in."""
    with services.db.read() as session:
        row = session.get(Network, network.network_id)
        peers = [address for address in host_registry.tunnel_addresses(session)
                 if address != local_ip]
        segment = registry.segment_of(row, peers)
    segments.Host(local_ip=local_ip, bridges=Bridges(namespace)).ensure(segment)


def _status(services: service.Services, name: str) -> str:
    with services.db.read() as session:
        return host_registry.find(session, name).status


def _host(stack: contextlib.ExitStack, services: service.Services, workdir: Path, name: str,
          underlay: str, address: str) -> ComputeHost:
    """A host namespace on the underlay, its certificate, its agent started and registered."""
    certs = workdir / name / "certs"
    store.issue_host(services.settings, tls.compute_agent_identity(name), certs)
    base_path = AMPHORAE_ROOT / uuid.uuid4().hex[:8]
    stack.callback(shutil.rmtree, base_path, True)
    host = ComputeHost(name, underlay, address, base_path, {
        "LBAAS__DEFAULT__host": name, "LBAAS__DEFAULT__state_path": str(workdir / name),
        "LBAAS__haproxy_amphora__base_path": str(base_path),
        "LBAAS__compute_agent__local_ip": address,
        "LBAAS__compute_agent__server_cert": str(certs / "server.pem"),
        "LBAAS__compute_agent__client_ca": str(certs / "client_ca.pem"),
    }, workdir / f"{name}-agent.log")
    stack.callback(host.die)
    host.boot()
    with services.db.write() as session:
        host_registry.add(session, name, address, tunnel_ip=address)
    return host


def _delete_all(api: TestClient) -> None:
    for lb in api.get("/v2/lbaas/loadbalancers").json()["loadbalancers"]:
        path = f"/v2/lbaas/loadbalancers/{lb['id']}"
        if lb["provisioning_status"].startswith("PENDING"):
            wait_for(lambda path=path: api.get(path).json()["loadbalancer"], "provisioning_status",
                     "ACTIVE", timeout=CONVERGE)
        api.delete(f"{path}?cascade=true")
        wait_for(lambda path=path: {"code": api.get(path).status_code}, "code", 404,
                 timeout=CONVERGE)


def free_vni_block() -> int:
    """The first of 100 VNIs (20000-29999) that no VXLAN device of this machine uses:
    another run's cluster (a benchmark's, say) may be up, and its controller's devices
    are named after their VNIs in this same namespace: a cluster picking the same VNI
    would take them over."""
    shown = netns.ip("-o", "link", "show", "type", "vxlan").stdout
    used = {int(vni) for vni in re.findall(r"^\d+: vx-(\d+)", shown, re.M)}
    while True:
        first = 20000 + random.randrange(0, 100) * 100
        if used.isdisjoint(range(first, first + 100)):
            return first


@contextlib.contextmanager
def running_cluster(workdir: Path, **options: str) -> Iterator[Cluster]:
    """The controller and the hosts, running, and removed on exit; ``options`` are more
    of the controller's settings (``section__option``: value)."""
    underlay_net = free_subnet("10.252", 10, 250)
    management = free_subnet("172.28", 10, 250)
    vni_base = free_vni_block()
    controller_ip = f"{management}.1"
    environ = {
        "LBAAS__DEFAULT__state_path": str(workdir / "controller"),
        "LBAAS__controller_worker__compute_driver": "compute_agent_driver",
        "LBAAS__networking__lb_network_cidr": f"{management}.0/24",
        "LBAAS__networking__lb_network_bridge": f"lbm{uuid.uuid4().hex[:8]}",
        "LBAAS__networking__lb_network_type": "vxlan",
        "LBAAS__networking__local_ip": f"{underlay_net}.1",
        "LBAAS__networking__vni_ranges": f"{vni_base}:{vni_base + 99}",
        "LBAAS__health_manager__bind_port": "15557",
        "LBAAS__health_manager__heartbeat_interval": "0.5",
        "LBAAS__health_manager__heartbeat_timeout": "3",
        "LBAAS__health_manager__health_check_interval": "0.5",
        "LBAAS__compute__host_check_interval": "1",
        "LBAAS__compute__host_down_timeout": "3",
        "LBAAS__nova__enable_anti_affinity": "true",
        **{f"LBAAS__{key}": value for key, value in options.items()},
    }
    settings = config.load(environ=environ)
    with contextlib.ExitStack() as stack:
        underlay = stack.enter_context(netns.bridge(f"lbu{uuid.uuid4().hex[:8]}",
                                                    f"{underlay_net}.1/24"))
        services = service.open_services(settings)
        stack.callback(services.db.dispose)
        stack.callback(remove_leftovers, services)
        hosts: dict[str, ComputeHost] = {}
        for index, name in enumerate(HOSTS, start=11):
            hosts[name] = _host(stack, services, workdir, name, underlay,
                                f"{underlay_net}.{index}")
        vips = _vxlan_network(services, "vips", "10.241.2.0/24", "10.241.2.100-10.241.2.200")
        members = _vxlan_network(services, "members", "10.241.1.0/24",
                                 "10.241.1.100-10.241.1.200")
        stack.callback(Bridges().remove, vips.bridge)
        # The client sits on the controller's side of the VIP network; the backends on a
        # machine of their own (no compute agent), so that losing a compute host never
        # takes them away.
        join(services, vips, None, f"{underlay_net}.1")
        client = stack.enter_context(netns.namespace(f"lbt-client-{netns.short_id()}",
                                                     vips.bridge, "10.241.2.50/24"))
        web = stack.enter_context(netns.namespace(f"lbt-web-{netns.short_id()}", underlay,
                                                  f"{underlay_net}.20/24"))
        with services.db.write() as session:  # a peer of the VXLAN networks, as a host is
            host_registry.register_controller(session, "web-machine", f"{underlay_net}.20")
        join(services, members, web, f"{underlay_net}.20")
        backends = BackendHosts(workdir / "backends")
        (workdir / "backends").mkdir()
        stack.callback(backends.close)
        started = [backends.add(members, f"10.241.1.1{i}", f"backend-{i}", host=web)
                   for i in (1, 2)]
        drivers = load_drivers(settings, services.db)
        worker = stack.enter_context(service.running_worker(services, drivers))
        stack.enter_context(service.running_health_manager(services))
        api = stack.enter_context(checked(TestClient(create_app(services.api_state),
                                                     headers={"X-Project-Id": PROJECT})))
        for name in HOSTS:
            wait_for(lambda name=name: {"status": _status(services, name)}, "status", "UP",
                     timeout=30)
        made = Cluster(services, api, hosts, controller_ip, vips, members, client, started,
                       underlay, web)
        try:
            yield made
        finally:
            _delete_all(api)
            worker.stop()
