"""The registry served read-only in the shape of the OpenStack network API (Neutron)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lbaas.api.network import NetworkResponse, SubnetResponse
from lbaas.db.engine import Database
from lbaas.network import registry
from lbaas.service import Services
from tests.helpers.openstack_cli import OpenStackCLI
from tests.helpers.service import Service


def seed(db: Database) -> dict[str, str]:
    """Two networks and three subnets; their ids by name."""
    with db.write() as session:
        tenant = registry.create_network(session, "tenant", project_id="p1")
        backend = registry.create_network(session, "backend", mtu=9000)
        subnets = [
            registry.create_subnet(session, "web", tenant, "10.10.0.0/24"),
            registry.create_subnet(session, "db", tenant, "10.10.1.0/24", gateway="none",
                                   pools=["start=10.10.1.10,end=10.10.1.20"]),
            registry.create_subnet(session, "v6", backend, "fd00:10::/64"),
        ]
        return {item.name: item.id for item in (tenant, backend, *subnets)}


@pytest.fixture
def ids(services: Services) -> dict[str, str]:
    return seed(services.db)


def names(body: dict[str, Any], collection: str) -> list[str]:
    return [item["name"] for item in body[collection]]


def test_networks_are_listed_in_neutrons_shape(api_only, ids):
    networks = {item["name"]: item for item in api_only.get("/v2.0/networks").json()["networks"]}
    tenant = networks["tenant"]
    assert set(tenant) == {field.alias or name for name, field in NetworkResponse.model_fields.items()}
    assert {key: tenant[key] for key in ("id", "status", "admin_state_up", "shared", "router:external",
                                         "mtu", "project_id", "tenant_id", "subnets")} == {
        "id": ids["tenant"], "status": "ACTIVE", "admin_state_up": True, "shared": True,
        "router:external": False, "mtu": 1500, "project_id": "p1", "tenant_id": "p1",
        "subnets": [ids["web"], ids["db"]]}
    assert networks["backend"]["mtu"] == 9000


def test_subnets_are_listed_in_neutrons_shape(api_only, ids):
    subnets = {item["name"]: item for item in api_only.get("/v2.0/subnets").json()["subnets"]}
    db = subnets["db"]
    assert set(db) == {field.alias or name for name, field in SubnetResponse.model_fields.items()}
    assert {key: db[key] for key in ("id", "network_id", "cidr", "gateway_ip", "allocation_pools",
                                     "ip_version", "enable_dhcp", "dns_nameservers", "host_routes")} == {
        "id": ids["db"], "network_id": ids["tenant"], "cidr": "10.10.1.0/24", "gateway_ip": None,
        "allocation_pools": [{"start": "10.10.1.10", "end": "10.10.1.20"}], "ip_version": 4,
        "enable_dhcp": False, "dns_nameservers": [], "host_routes": []}
    assert (subnets["v6"]["ip_version"], subnets["v6"]["gateway_ip"]) == (6, "fd00:10::1")


def test_network_api_answers_under_v2_as_under_v2_0(api_only, ids):
    for path in ("/networks", "/subnets", f"/subnets/{ids['web']}", f"/networks/{ids['tenant']}"):
        assert api_only.get(f"/v2{path}").json() == api_only.get(f"/v2.0{path}").json()


def test_network_and_subnet_are_shown_by_id(api_only, ids):
    assert api_only.get(f"/v2.0/networks/{ids['backend']}").json()["network"]["name"] == "backend"
    subnet = api_only.get(f"/v2.0/subnets/{ids['web']}", params={"fields": "cidr"}).json()
    assert subnet == {"subnet": {"cidr": "10.10.0.0/24"}}


@pytest.mark.parametrize("collection, kind, label", [
    ("networks", "NetworkNotFound", "Network"), ("subnets", "SubnetNotFound", "Subnet")])
def test_unknown_id_answers_404_as_neutron(api_only, ids, collection, kind, label):
    response = api_only.get(f"/v2.0/{collection}/4c2a3a36-5d38-4e6a-9d1f-5f7a8e2b1c00")
    assert response.status_code == 404
    assert response.json() == {"NeutronError": {
        "type": kind, "message": f"{label} 4c2a3a36-5d38-4e6a-9d1f-5f7a8e2b1c00 could not be found.",
        "detail": ""}}


@pytest.mark.parametrize("params, expected", [
    ({"name": "web"}, ["web"]),
    ({"name": ["web", "v6"]}, ["web", "v6"]),
    ({"name": "nothing"}, []),
    ({"ip_version": "6"}, ["v6"]),
    ({"enable_dhcp": "False"}, ["web", "db", "v6"]),
    ({"cidr": "10.10.1.0/24"}, ["db"]),
])
def test_subnets_are_filtered_by_any_field(api_only, ids, params, expected):
    body = api_only.get("/v2.0/subnets", params={**params, "sort_key": "created_at"}).json()
    assert names(body, "subnets") == expected


def test_subnets_are_filtered_by_id_and_network(api_only, ids):
    assert names(api_only.get("/v2.0/subnets", params={"id": ids["db"]}).json(), "subnets") == ["db"]
    on_backend = api_only.get("/v2.0/subnets", params={"network_id": ids["backend"]}).json()
    assert names(on_backend, "subnets") == ["v6"]
    external = api_only.get("/v2.0/networks", params={"router:external": "True"}).json()
    assert external["networks"] == []


@pytest.mark.parametrize("params, message", [
    ({"colour": "blue"}, "[colour] is invalid attribute for filtering"),
    ({"sort_key": "colour"}, "colour is an invalid attribute for sort_key"),
    ({"sort_key": "name", "sort_dir": "up"}, "up is an invalid value for sort_dir"),
    ({"limit": "many"}, "Bad limit request"),
])
def test_bad_list_parameters_answer_400_as_neutron(api_only, ids, params, message):
    response = api_only.get("/v2.0/subnets", params=params)
    assert response.status_code == 400
    error = response.json()["NeutronError"]
    assert error["type"] == "HTTPBadRequest" and message in error["message"]


def test_fields_select_the_attributes_returned(api_only, ids):
    body = api_only.get("/v2.0/networks", params=[("fields", "id"), ("fields", "name")]).json()
    assert all(set(item) == {"id", "name"} for item in body["networks"]) and body["networks"]


@pytest.mark.parametrize("key", sorted(NetworkResponse.model_fields))
def test_networks_sort_by_any_attribute(api_only, ids, key):
    field = NetworkResponse.model_fields[key].alias or key
    response = api_only.get("/v2.0/networks", params={"sort_key": field, "sort_dir": "desc"})
    assert response.status_code == 200 and len(response.json()["networks"]) == 2


def test_subnets_are_sorted_and_paginated_with_links(api_only, ids):
    first = api_only.get("/v2.0/subnets", params={"sort_key": "name", "sort_dir": "desc", "limit": 2}).json()
    assert names(first, "subnets") == ["web", "v6"]
    (following,) = [link["href"] for link in first["subnets_links"] if link["rel"] == "next"]
    second = api_only.get(following.replace("http://testserver", "")).json()
    assert names(second, "subnets") == ["db"]
    assert [link["rel"] for link in second["subnets_links"]] == ["previous"]
    assert "subnets_links" not in api_only.get("/v2.0/subnets").json()


def test_real_openstack_client_lists_and_resolves_the_registry(lbaas_service: Service, tmp_path: Path):
    """``openstack network/subnet list`` and ``loadbalancer create --vip-subnet-id NAME``, unchanged."""
    db = Database(f"sqlite:///{lbaas_service.workdir / 'state' / 'lbaas.sqlite'}")
    try:
        ids = seed(db)
    finally:
        db.dispose()
    cli = OpenStackCLI(lbaas_service, tmp_path)
    networks = cli.json("network", "list")
    assert {(item["Name"], tuple(item["Subnets"])) for item in networks} == {
        ("tenant", (ids["web"], ids["db"])), ("backend", (ids["v6"],))}
    subnets = cli.json("subnet", "list", "--network", "tenant")
    assert {(item["Name"], item["Subnet"]) for item in subnets} == {
        ("web", "10.10.0.0/24"), ("db", "10.10.1.0/24")}
    assert cli.json("subnet", "show", "db")["allocation_pools"] == [
        {"start": "10.10.1.10", "end": "10.10.1.20"}]
    lb = cli.json("loadbalancer", "create", "--name", "by-subnet-name", "--vip-subnet-id", "web")
    assert lb["vip_subnet_id"] == ids["web"]
    missing = cli.run("loadbalancer", "create", "--vip-subnet-id", "no-such-subnet")
    assert missing.returncode != 0 and "Unable to locate no-such-subnet in subnets" in missing.stderr


def test_openapi_document_lists_the_network_routes(api_only):
    paths = api_only.get("/openapi.json").json()["paths"]
    assert {"/v2/networks", "/v2/networks/{network_id}", "/v2/subnets", "/v2/subnets/{subnet_id}"} <= set(paths)
