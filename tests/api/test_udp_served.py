"""What the amphorae cannot serve is refused (400) before it is accepted: SCTP on a kernel
without SCTP, UDP pools balanced by connection counts, persistence by a non-netmask."""
from __future__ import annotations

import pytest

from lbaas.amphora import capabilities
from tests.helpers.api import create_lb, create_listener, create_pool, fault

SCTP_REFUSED = "SCTP is not served here: this host's kernel has no SCTP support"


@pytest.fixture
def lb(client):
    return create_lb(client)


def test_sctp_listeners_pools_and_monitors_are_refused_without_kernel_sctp(
        client, lb, no_sctp):
    listener = client.post("/v2/lbaas/listeners", json={"listener": {
        "loadbalancer_id": lb["id"], "protocol": "SCTP", "protocol_port": 9}})
    assert fault(listener, 400) == ("The selected protocol is not allowed in this deployment: "
                                    f"SCTP ({SCTP_REFUSED})")
    pool = client.post("/v2/lbaas/pools", json={"pool": {
        "loadbalancer_id": lb["id"], "protocol": "SCTP", "lb_algorithm": "ROUND_ROBIN"}})
    assert fault(pool, 400) == f"Validation failure: {SCTP_REFUSED}."
    udp_pool = create_pool(client, lb["id"], "UDP")
    monitor = client.post("/v2/lbaas/healthmonitors", json={"healthmonitor": {
        "pool_id": udp_pool["id"], "type": "SCTP", "delay": 5, "timeout": 3, "max_retries": 2}})
    assert fault(monitor, 400) == ("The selected type is not allowed in this deployment: "
                                   f"SCTP ({SCTP_REFUSED})")
    assert client.get("/v2/lbaas/loadbalancers").json()["loadbalancers"][0]["id"] == lb["id"]
    assert client.get("/v2/lbaas/listeners").json()["listeners"] == []


def test_provider_description_says_what_is_not_served(client, no_sctp):
    providers = client.get("/v2/lbaas/providers").json()["providers"]
    amphora = next(item for item in providers if item["name"] == "amphora")
    assert amphora["description"] == f"The Octavia Amphora driver. ({SCTP_REFUSED}.)"


def test_this_kernel_is_probed_once():
    capabilities.sctp_supported.cache_clear()
    first = capabilities.sctp_supported()
    assert capabilities.sctp_supported() is first
    assert capabilities.sctp_supported.cache_info().hits >= 1


def test_udp_pools_balance_only_as_nftables_can(client, lb):
    listener = create_listener(client, lb["id"], "UDP", 53)
    response = client.post("/v2/lbaas/pools", json={"pool": {
        "listener_id": listener["id"], "protocol": "UDP", "lb_algorithm": "LEAST_CONNECTIONS"}})
    assert fault(response, 400) == (
        "Validation failure: lb_algorithm LEAST_CONNECTIONS is not served for UDP and SCTP "
        "pools (nftables balances by ROUND_ROBIN or SOURCE_IP).")
    pool = create_pool(client, lb["id"], "UDP", listener_id=listener["id"])
    response = client.put(f"/v2/lbaas/pools/{pool['id']}", json={"pool": {
        "lb_algorithm": "LEAST_CONNECTIONS"}})
    assert fault(response, 400).startswith("Validation failure: lb_algorithm LEAST_CONNECTIONS")


@pytest.mark.parametrize(("granularity", "ok"), [
    ("255.255.255.0", True), ("0.0.0.0", True), ("0.0.0.255", False), ("255.0.255.0", False),
    ("ffff::", False)])
def test_udp_persistence_granularity_is_an_ipv4_netmask(client, lb, granularity, ok):
    response = client.post("/v2/lbaas/pools", json={"pool": {
        "loadbalancer_id": lb["id"], "protocol": "UDP", "lb_algorithm": "ROUND_ROBIN",
        "session_persistence": {"type": "SOURCE_IP", "persistence_timeout": 60,
                                "persistence_granularity": granularity}}})
    if ok:
        assert response.status_code == 201, response.text
    else:
        assert fault(response, 400) == (f"Validation failure: persistence_granularity "
                                        f"'{granularity}' is not an IPv4 netmask.")
