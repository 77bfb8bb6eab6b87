"""The amphora admin API on the rows the flows create: list/show, failover, config push,
statistics and delete."""
from __future__ import annotations

import uuid

import pytest

from lbaas.db.models import Amphora, Listener, ListenerStatistics
from tests.helpers import wait_for
from tests.helpers.api import (
    amphora_updates_held,
    create_lb,
    create_listener,
    fault,
    wait_lb_active,
)

AMPHORAE = "/v2/octavia/amphorae"
FIELDS = {"id", "loadbalancer_id", "compute_id", "lb_network_ip", "vrrp_ip", "ha_ip",
          "vrrp_port_id", "ha_port_id", "cert_expiration", "cert_busy", "role", "status",
          "vrrp_interface", "vrrp_id", "vrrp_priority", "cached_zone", "created_at",
          "updated_at", "image_id", "compute_flavor"}


def amphorae_of(client, lb_id: str) -> list[dict]:
    return client.get(AMPHORAE, params={"loadbalancer_id": lb_id}).json()["amphorae"]


def set_status(services, amphora_id: str, status: str) -> None:
    with services.db.write() as session:
        session.get(Amphora, amphora_id).status = status


@pytest.fixture
def lb(client) -> dict:
    return create_lb(client)


def test_the_create_flow_makes_a_real_amphora_row(client, lb):
    [amphora] = amphorae_of(client, lb["id"])
    assert set(amphora) == FIELDS
    assert amphora["loadbalancer_id"] == lb["id"]
    assert (amphora["status"], amphora["role"]) == ("ALLOCATED", "STANDALONE")
    assert amphora["compute_id"] and amphora["vrrp_port_id"] and amphora["ha_ip"] == lb["vip_address"]
    assert client.get(f"{AMPHORAE}/{amphora['id']}").json() == {"amphora": amphora}
    assert client.get(f"/v2.0/octavia/amphorae/{amphora['id']}").json() == {"amphora": amphora}


def test_amphorae_list_filters_pages_and_selects_fields(client):
    first, second = create_lb(client), create_lb(client)
    everything = client.get(AMPHORAE).json()
    assert {a["loadbalancer_id"] for a in everything["amphorae"]} == {first["id"], second["id"]}
    assert everything["amphorae_links"] == []
    assert [a["loadbalancer_id"] for a in amphorae_of(client, second["id"])] == [second["id"]]
    assert client.get(AMPHORAE, params={"status": "ERROR"}).json()["amphorae"] == []
    assert len(client.get(AMPHORAE, params={"role": "STANDALONE"}).json()["amphorae"]) == 2
    page = client.get(AMPHORAE, params={"limit": 1}).json()
    assert len(page["amphorae"]) == 1 and page["amphorae_links"][0]["rel"] == "next"
    only = client.get(AMPHORAE, params={"fields": "id,status"}).json()["amphorae"]
    assert all(set(a) == {"id", "status"} for a in only)
    assert fault(client.get(AMPHORAE, params={"colour": "red"}), 400) == \
        "One or more arguments are either duplicate or invalid."


def test_unknown_amphora_is_404_on_every_route(client):
    missing = str(uuid.uuid4())
    message = f"Amphora {missing} not found."
    assert fault(client.get(f"{AMPHORAE}/{missing}"), 404) == message
    assert fault(client.put(f"{AMPHORAE}/{missing}/failover"), 404) == message
    assert fault(client.put(f"{AMPHORAE}/{missing}/config"), 404) == message
    assert fault(client.get(f"{AMPHORAE}/{missing}/stats"), 404) == message
    assert fault(client.delete(f"{AMPHORAE}/{missing}"), 404) == message


def test_failover_replaces_the_amphora_in_its_role(client, lb):
    [old] = amphorae_of(client, lb["id"])
    assert client.put(f"{AMPHORAE}/{old['id']}/failover").status_code == 202
    wait_lb_active(client, lb["id"])
    [new] = amphorae_of(client, lb["id"])
    assert new["id"] != old["id"] and new["role"] == old["role"] == "STANDALONE"
    assert new["status"] == "ALLOCATED"
    assert fault(client.get(f"{AMPHORAE}/{old['id']}"), 404) == f"Amphora {old['id']} not found."


def test_failover_while_the_load_balancer_is_busy_is_409(client, drivers, lb):
    [amphora] = amphorae_of(client, lb["id"])
    with amphora_updates_held(drivers):
        response = client.put(f"/v2/lbaas/loadbalancers/{lb['id']}", json={"loadbalancer": {"name": "x"}})
        assert response.status_code == 200
        assert fault(client.put(f"{AMPHORAE}/{amphora['id']}/failover"), 409) == \
            f"Load Balancer {lb['id']} is immutable and cannot be updated."
    wait_lb_active(client, lb["id"])


def test_config_pushes_the_configuration_to_that_amphora(client, drivers, lb):
    [amphora] = amphorae_of(client, lb["id"])
    pushed: list[tuple[str, str]] = []
    push = drivers.amphora.update

    def record(load_balancer, target):
        pushed.append((load_balancer.id, target.id))
        push(load_balancer, target)
    drivers.amphora.update = record
    assert client.put(f"{AMPHORAE}/{amphora['id']}/config").status_code == 202
    wait_for(lambda: {"pushed": pushed}, "pushed", [(lb["id"], amphora["id"])])


def test_stats_per_listener_as_upstream(client, services, lb):
    listener = create_listener(client, lb["id"])
    [amphora] = amphorae_of(client, lb["id"])
    url = f"{AMPHORAE}/{amphora['id']}/stats"
    assert fault(client.get(url), 404) == f"Amphora stats for {amphora['id']} not found."
    with services.db.write() as session:
        assert session.get(Listener, listener["id"]) is not None
        session.add(ListenerStatistics(listener_id=listener["id"], amphora_id=amphora["id"],
                                       bytes_in=10, bytes_out=20, active_connections=3,
                                       total_connections=40, request_errors=5))
    assert client.get(url).json() == {"amphora_stats": [{
        "id": amphora["id"], "listener_id": listener["id"], "loadbalancer_id": lb["id"],
        "active_connections": 3, "bytes_in": 10, "bytes_out": 20, "request_errors": 5,
        "total_connections": 40}]}


def test_only_an_amphora_in_error_can_be_deleted(client, services, drivers, lb):
    [amphora] = amphorae_of(client, lb["id"])
    url = f"{AMPHORAE}/{amphora['id']}"
    assert fault(client.delete(url), 409) == f"Amphora {amphora['id']} is immutable and cannot be updated."
    set_status(services, amphora["id"], "ERROR")
    assert client.delete(url).status_code == 204
    wait_for(lambda: {"code": client.get(url).status_code}, "code", 404)
    with services.db.read() as session:
        assert session.get(Amphora, amphora["id"]).status == "DELETED"
    assert drivers.network.ports_of(amphora["id"]) == []


def test_failover_of_a_spare_removes_it(client, services):
    with services.db.write() as session:
        spare = Amphora(status="READY", load_balancer_id=None)
        session.add(spare)
    assert client.put(f"{AMPHORAE}/{spare.id}/failover").status_code == 202
    wait_for(lambda: {"code": client.get(f"{AMPHORAE}/{spare.id}").status_code}, "code", 404)
