"""End to end: a load balancer created through the API carries real traffic."""
from __future__ import annotations

import subprocess

import pytest
from sqlalchemy import select

from lbaas.db.models import Amphora, Port
from tests.dataplane import netns
from tests.helpers import wait_for
from tests.helpers.api import (
    create_listener,
    wait_gone,
    wait_lb_active,
)
from tests.helpers.dataplane import (
    assert_nothing_left,
    balanced,
    build,
    curl,
    monitor,
    put_and_wait,
    wait_until,
)

pytestmark = pytest.mark.root










def test_http_listener_balances_between_members(dataplane, topology):
    made = build(dataplane, topology)
    assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}


def test_tcp_listener_balances_between_members(dataplane, topology):
    made = build(dataplane, topology, protocol="TCP", port=8080)
    assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}




def test_member_set_down_stops_receiving_traffic(dataplane, topology):
    made = build(dataplane, topology)
    first = made["members"][0]
    put_and_wait(dataplane, f"/v2/lbaas/pools/{made['pool']['id']}/members/{first['id']}", "member",
         made["lb"]["id"], admin_state_up=False)
    assert balanced(topology, made["url"]) == {"backend-2": 10}
    put_and_wait(dataplane, f"/v2/lbaas/pools/{made['pool']['id']}/members/{first['id']}", "member",
         made["lb"]["id"], admin_state_up=True)
    assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}


def test_health_monitor_takes_failing_backend_out_and_back(dataplane, topology, backends):
    made = build(dataplane, topology)
    monitor(dataplane, made, url_path="/")
    backends.stop("backend-1")
    wait_until(lambda: balanced(topology, made["url"], 6) == {"backend-2": 6})
    backends.start("backend-1")
    wait_until(lambda: balanced(topology, made["url"], 6) == {"backend-1": 3, "backend-2": 3})


def test_source_ip_persistence_holds(dataplane, topology):
    made = build(dataplane, topology, pool={"session_persistence": {"type": "SOURCE_IP"}})
    answers = balanced(topology, made["url"])
    assert len(answers) == 1 and sum(answers.values()) == 10


def test_http_cookie_persistence_holds(dataplane, topology, tmp_path):
    made = build(dataplane, topology, pool={"session_persistence": {"type": "HTTP_COOKIE"}})
    jar = str(tmp_path / "cookies")
    answers = balanced(topology, made["url"], 10, "-b", jar, "-c", jar)
    assert len(answers) == 1 and sum(answers.values()) == 10


def test_allowed_cidrs_reject_outside_clients(dataplane, topology, client_host):
    other = client_host(topology.vips, "10.240.2.60")
    made = build(dataplane, topology, listener={"allowed_cidrs": ["10.240.2.60/32"]})
    assert curl(other, made["url"]) in ("backend-1", "backend-2")
    assert curl(topology.client, made["url"]).startswith("failed")



def test_prometheus_listener_serves_haproxys_exporter_to_allowed_clients(
        dataplane, topology, client_host):
    """A tenant scrapes its own load balancer: haproxy's exporter on the listener's port,
    with its other listeners' figures; allowed_cidrs applies as to any listener."""
    made = build(dataplane, topology)
    assert curl(topology.client, made["url"]) in ("backend-1", "backend-2")
    exporter = create_listener(dataplane, made["lb"]["id"], "PROMETHEUS", 9100)
    url = f"http://{made['lb']['vip_address']}:9100/metrics"
    scraped = curl(topology.client, url)
    assert "haproxy_process_uptime_seconds" in scraped
    assert f'haproxy_frontend_http_responses_total{{proxy="{made["listener"]["id"]}"' in scraped
    assert curl(topology.client, url.replace("/metrics", "/other"), "-o", "/dev/null",
                "-w", "%{http_code}") == "403"
    other = client_host(topology.vips, "10.240.2.61")
    response = dataplane.put(f"/v2/lbaas/listeners/{exporter['id']}", json={
        "listener": {"allowed_cidrs": ["10.240.2.61/32"]}})
    assert response.status_code == 200, response.text
    wait_lb_active(dataplane, made["lb"]["id"])
    assert "haproxy_process_uptime_seconds" in curl(other, url)
    assert curl(topology.client, url).startswith("failed")



def test_cascade_delete_leaves_nothing_behind(dataplane, topology, services):
    made = build(dataplane, topology)
    with services.db.read() as session:
        amphora_ids = list(session.scalars(select(Amphora.id).where(
            Amphora.load_balancer_id == made["lb"]["id"])))
        port_ids = list(session.scalars(select(Port.id).where(Port.device_id.in_(amphora_ids))))
    assert amphora_ids and port_ids
    assert dataplane.delete(f"/v2/lbaas/loadbalancers/{made['lb']['id']}?cascade=true").status_code == 204
    wait_gone(dataplane, f"/v2/lbaas/loadbalancers/{made['lb']['id']}")
    assert_nothing_left(services, amphora_ids, port_ids)
    assert subprocess.run(["pgrep", "-f", made["lb"]["id"]], capture_output=True).returncode == 1


def test_disabled_load_balancer_or_listener_stops_traffic(dataplane, topology):
    made = build(dataplane, topology)
    lb_path = f"/v2/lbaas/loadbalancers/{made['lb']['id']}"
    listener_path = f"/v2/lbaas/listeners/{made['listener']['id']}"
    for path, root in ((lb_path, "loadbalancer"), (listener_path, "listener")):
        put_and_wait(dataplane, path, root, made["lb"]["id"], admin_state_up=False)
        assert curl(topology.client, made["url"]).startswith("failed")
        put_and_wait(dataplane, path, root, made["lb"]["id"], admin_state_up=True)
        assert curl(topology.client, made["url"]) in ("backend-1", "backend-2")


def test_failed_create_reverts_and_leaves_nothing_behind(dataplane, topology, drivers, services):
    built: list[str] = []
    attached: list[str] = []
    build_amphora, attach_port = drivers.compute.build, drivers.compute.attach_port

    def recording_build(amphora_id, **kwargs):
        built.append(amphora_id)
        return build_amphora(amphora_id, **kwargs)

    def recording_attach(compute_id, port, host=None):
        attached.append(port.id)
        return attach_port(compute_id, port, host=host)

    def unreachable(*_args, **_kwargs):
        raise RuntimeError("the VIP cannot be plugged")
    drivers.compute.build, drivers.compute.attach_port = recording_build, recording_attach
    drivers.amphora.post_vip_plug = unreachable
    response = dataplane.post("/v2/lbaas/loadbalancers", json={
        "loadbalancer": {"vip_subnet_id": topology.vips.subnet_id}})
    lb_path = f"/v2/lbaas/loadbalancers/{response.json()['loadbalancer']['id']}"
    wait_for(lambda: dataplane.get(lb_path).json()["loadbalancer"], "provisioning_status", "ERROR")
    assert built and attached
    assert_nothing_left(services, built, attached)


def test_ping_monitor_takes_an_unreachable_backend_out(dataplane, topology, backends):
    made = build(dataplane, topology)
    monitor(dataplane, made, "PING")
    wait_until(lambda: balanced(topology, made["url"], 4) == {"backend-1": 2, "backend-2": 2})
    netns.ip("-n", backends.hosts["backend-1"].namespace, "link", "set", "eth0", "down")
    wait_until(lambda: balanced(topology, made["url"], 6) == {"backend-2": 6})
