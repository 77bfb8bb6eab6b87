"""Malformed input is a 4xx with the fault body, never a 500: text that is not Unicode,
filters by a thousand tags, URLs longer than the HTTP server takes."""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from lbaas.api import server
from lbaas.api.app import create_app
from tests.helpers.api import SUBNET, create_lb, fault

LBS = "/v2/lbaas/loadbalancers"


def post_raw(client, path: str, raw: str):
    return client.post(path, content=raw.encode(), headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(("raw", "field"), [
    ('{"loadbalancer": {"name": "\\ud800", "vip_subnet_id": "%s"}}' % SUBNET, "name"),
    ('{"loadbalancer": {"tags": ["ok", "\\udfff"], "vip_subnet_id": "%s"}}' % SUBNET, "tags"),
    ('{"loadbalancer": {"\\ud800": 1}}', "\\ud800"),
    ('{"loadbalancer": {"vip_subnet_id": "%s", "listeners": [{"protocol": "HTTP", '
     '"protocol_port": 80, "name": "\\udc00x"}]}}' % SUBNET, "name"),
])
def test_a_lone_surrogate_is_a_400_naming_the_field(api_only, raw, field):
    text = fault(post_raw(api_only, LBS, raw), 400)
    assert text.startswith(f"Invalid input for field/attribute {field}.")
    assert text.endswith("Value should be valid Unicode text (no lone surrogates).")


def test_a_lone_surrogate_in_an_update_is_a_400(client):
    lb = create_lb(client)
    fault(post_raw(client, f"{LBS}/{lb['id']}", ""), 405)
    response = client.put(f"{LBS}/{lb['id']}", content=b'{"loadbalancer": {"description": "\\ud800"}}',
                          headers={"Content-Type": "application/json"})
    fault(response, 400)


@pytest.mark.parametrize("parameter", ["tags", "tags-any", "not-tags", "not-tags-any"])
def test_a_thousand_tags_filter_as_asked(client, parameter):
    tagged = create_lb(client, tags=[f"t{n}" for n in range(3)])
    create_lb(client, tags=["t0"])
    values = ",".join(f"t{n}" for n in range(1000))
    response = client.get(f"{LBS}?{parameter}={values}")
    assert response.status_code == 200, response.text
    found = [lb["id"] for lb in response.json()["loadbalancers"]]
    assert (tagged["id"] in found) == (parameter in ("tags-any", "not-tags")), parameter
    assert client.get(f"{LBS}?tags=t0,t1,t2").json()["loadbalancers"][0]["id"] == tagged["id"]


def test_a_sort_key_repeated_a_thousand_times_sorts_once(client):
    first = create_lb(client, name="a")
    response = client.get(f"{LBS}?sort={','.join(['name:asc'] * 1000)}&marker={first['id']}")
    assert response.status_code == 200, response.text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=["httptools", "h11"])
def real_server(request, services) -> Iterator[int]:
    """The API behind uvicorn on loopback, with the protocol ``lbaas api`` uses."""
    protocol = server.http_protocol() if request.param == "httptools" else server.FaultH11Protocol
    port = free_port()
    instance = uvicorn.Server(uvicorn.Config(create_app(services.api_state), host="127.0.0.1",
                                             port=port, log_level="warning", http=protocol))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield port
    finally:
        instance.should_exit = True
        thread.join(10)


def test_a_100_kb_url_gets_the_fault_body(real_server):
    connection = http.client.HTTPConnection("127.0.0.1", real_server, timeout=10)
    connection.request("GET", f"{LBS}?name={'a' * 2_000_000}")
    response = connection.getresponse()
    body = json.loads(response.read())
    assert response.status == 400
    assert set(body) == {"faultcode", "faultstring", "debuginfo"}
    assert body["faultstring"].startswith("Invalid HTTP request received")
