"""Amphorae on other hosts: built there by their compute agents, reached over VXLAN, a pair
across two hosts surviving one host's death, stale amphorae of a returning host removed,
and the compute agents' door shut to whoever is not a controller."""
from __future__ import annotations

import re
import ssl
import time
from typing import Any

import httpx
import pytest

from lbaas.certs import store
from lbaas.drivers.compute.netns import namespace_of, namespaces
from lbaas.network import hosts
from tests.dataplane import netns
from tests.helpers import wait_for
from tests.helpers.dataplane import curl
from tests.multihost.cluster import CONVERGE, Cluster

# One cluster (namespaces, compute agents) for the module: its tests run on one xdist worker.
pytestmark = [pytest.mark.root, pytest.mark.xdist_group("cluster")]

LBS = "/v2/lbaas/loadbalancers"


def populated(cluster: Cluster, **fields: Any) -> dict[str, Any]:
    return {"vip_subnet_id": cluster.vips.subnet_id, **fields, "listeners": [{
        "protocol": "HTTP", "protocol_port": 80, "default_pool": {
            "name": "web", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
            "members": [{"address": backend.address, "protocol_port": 80,
                         "subnet_id": cluster.members.subnet_id}
                        for backend in cluster.backends]}}]}


def create(cluster: Cluster, **fields: Any) -> dict[str, Any]:
    response = cluster.api.post(LBS, json={"loadbalancer": populated(cluster, **fields)})
    assert response.status_code == 201, response.text
    return wait_for(lambda: cluster.api.get(f"{LBS}/{response.json()['loadbalancer']['id']}")
                    .json()["loadbalancer"], "provisioning_status", "ACTIVE", timeout=CONVERGE)


def delete(cluster: Cluster, lb: dict[str, Any]) -> None:
    assert cluster.api.delete(f"{LBS}/{lb['id']}?cascade=true").status_code == 204
    wait_for(lambda: {"code": cluster.api.get(f"{LBS}/{lb['id']}").status_code}, "code", 404,
             timeout=CONVERGE)


def answers(cluster: Cluster, lb: dict[str, Any]) -> str:
    return curl(cluster.client, f"http://{lb['vip_address']}/")


def arp_answers(cluster: Cluster, address: str) -> set[str]:
    result = netns.in_namespace(cluster.client, "arping", "-b", "-c", "2", "-w", "1", "-I",
                                "eth0", address)
    return {mac.lower() for mac in re.findall(r"\[([0-9A-Fa-f:]{17})\]", result.stdout)}


def test_a_load_balancer_on_another_host_serves_members_on_another(cluster):
    lb = create(cluster)
    (amphora,) = cluster.amphorae(lb["id"])
    host = cluster.hosts[amphora.cached_zone]
    assert amphora.id in host.amphora_ids()  # built by that host's agent, in its directory
    link = netns.ip("-n", host.namespace, "-d", "link", "show", "master",
                    f"{cluster.services.settings.networking.lb_network_bridge}").stdout
    assert "vxlan" in link  # its management bridge reaches the controller over VXLAN
    assert {answers(cluster, lb) for _ in range(6)} == {"backend-1", "backend-2"}
    delete(cluster, lb)
    assert amphora.id not in host.amphora_ids()
    assert namespace_of(amphora.id) not in namespaces()


def test_hosts_are_listed_with_their_amphorae(cluster):
    lb = create(cluster)
    (amphora,) = cluster.amphorae(lb["id"])
    with cluster.services.db.read() as session:
        listed = {host.name: host for host in hosts.list_hosts(session)}
        on_it = hosts.amphorae_on(session, amphora.cached_zone)
    assert {name for name, host in listed.items() if host.kind == "compute"} == set(cluster.hosts)
    assert listed[amphora.cached_zone].status == "UP" and amphora.id in on_it
    delete(cluster, lb)


@pytest.fixture
def flavor(cluster) -> str:
    profile = cluster.api.post("/v2/lbaas/flavorprofiles", json={"flavorprofile": {
        "name": f"pair-{time.time_ns()}", "provider_name": "amphora",
        "flavor_data": '{"loadbalancer_topology": "ACTIVE_STANDBY"}'}}).json()["flavorprofile"]
    return cluster.api.post("/v2/lbaas/flavors", json={"flavor": {
        "name": f"pair-{time.time_ns()}",
        "flavor_profile_id": profile["id"]}}).json()["flavor"]["id"]


def test_a_pair_survives_the_death_of_its_masters_host_and_is_rebuilt_on_a_third(
        cluster, flavor):
    lb = create(cluster, flavor_id=flavor)
    pair = cluster.amphorae(lb["id"])
    assert len({amphora.cached_zone for amphora in pair}) == 2  # anti-affinity: two machines
    wait_for(lambda: {"one": len(arp_answers(cluster, lb["vip_address"]))}, "one", 1)
    master = next(a for a in pair if _holds_vip(cluster, a, lb))
    survivor = next(a for a in pair if a.id != master.id)
    cluster.hosts[master.cached_zone].die()
    # The BACKUP takes the VIP over on its own (VRRP), on the other host.
    wait_for(lambda: {"served": answers(cluster, lb) in ("backend-1", "backend-2")}, "served",
             True, timeout=10)
    # The health manager replaces the lost amphora on the third, live host.
    third = (set(cluster.hosts) - {master.cached_zone, survivor.cached_zone}).pop()
    wait_for(lambda: {"hosts": sorted(a.cached_zone for a in cluster.amphorae(lb["id"]))},
             "hosts", sorted([survivor.cached_zone, third]), timeout=CONVERGE)
    wait_for(lambda: cluster.api.get(f"{LBS}/{lb['id']}").json()["loadbalancer"],
             "provisioning_status", "ACTIVE", timeout=CONVERGE)
    assert len(arp_answers(cluster, lb["vip_address"])) == 1
    assert answers(cluster, lb) in ("backend-1", "backend-2")
    assert cluster.host_status(master.cached_zone) == "DOWN"
    delete(cluster, lb)


def _holds_vip(cluster: Cluster, amphora: Any, lb: dict[str, Any]) -> bool:
    found = netns.ip("-n", namespace_of(amphora.id), "-o", "addr", "show", check=False).stdout
    return f" {lb['vip_address']}/" in found


def test_a_host_coming_back_with_stale_amphorae_is_told_to_remove_them(cluster):
    """The host is cut off (its agent dies, its amphorae go on running unheard); its
    amphora is failed over to another host; then it comes back and its agent restarts."""
    lb = create(cluster)
    (old,) = cluster.amphorae(lb["id"])
    host = cluster.hosts[old.cached_zone]
    leg = _underlay_leg(host)
    netns.ip("-n", host.namespace, "link", "set", leg, "down")
    host.stop_agent(9)
    try:
        wait_for(lambda: {"replaced": [a.id for a in cluster.amphorae(lb["id"])] != [old.id]},
                 "replaced", True, timeout=CONVERGE)
        wait_for(lambda: cluster.api.get(f"{LBS}/{lb['id']}").json()["loadbalancer"],
                 "provisioning_status", "ACTIVE", timeout=CONVERGE)
        assert old.id in host.amphora_ids()  # the cut-off host still runs the old amphora
    finally:
        netns.ip("-n", host.namespace, "link", "set", leg, "up")
        host.start_agent()
    wait_for(lambda: {"gone": old.id not in host.amphora_ids()}, "gone", True,
             timeout=CONVERGE)
    assert namespace_of(old.id) not in namespaces()
    assert len(arp_answers(cluster, lb["vip_address"])) == 1
    assert answers(cluster, lb) in ("backend-1", "backend-2")
    delete(cluster, lb)


def _underlay_leg(host: Any) -> str:
    return next(line.split(":")[1].strip().split("@")[0] for line in netns.ip(
        "-n", host.namespace, "-o", "link", "show").stdout.splitlines() if "eth0" in line)


def test_a_compute_agent_serves_only_controllers(cluster, tmp_path):
    host = next(host for host in cluster.hosts.values() if host.agent is not None)
    url = f"https://{host.underlay_ip}:9444/1.0/status"
    paths = store.resolve(cluster.services.settings)
    trust = ssl.create_default_context(cafile=str(paths.server_ca))
    trust.check_hostname = False
    with pytest.raises(httpx.HTTPError):  # no client certificate
        httpx.get(url, verify=trust, timeout=5)
    amphora_like = tmp_path / "amphora"  # a certificate of the server CA, not the client CA
    store.issue_host(cluster.services.settings, "compute-intruder", amphora_like)
    trust.load_cert_chain(str(amphora_like / "server.pem"))
    with pytest.raises(httpx.HTTPError):
        httpx.get(url, verify=trust, timeout=5)


def test_an_amphora_reaches_neither_a_compute_agent_nor_the_controllers_other_ports(cluster):
    lb = create(cluster)
    (amphora,) = cluster.amphorae(lb["id"])
    namespace = namespace_of(amphora.id)
    probe = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 2)"
    for address, port in [(host.underlay_ip, 9444) for host in cluster.hosts.values()] + [
            (cluster.controller_ip, 9876), (cluster.controller_ip, 22)]:
        result = netns.in_namespace(namespace, "python3", "-c", probe, address, str(port))
        assert result.returncode != 0, f"the amphora reached {address}:{port}"
    delete(cluster, lb)
