"""The ``openstack loadbalancer ...`` command (python-octaviaclient), unchanged, against ``lbaas up``.

``openstack loadbalancer create`` first looks the VIP subnet up through the network API,
which arrives with the network registry; load balancers are created over HTTP here.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import service as service_helpers
from tests.helpers.openstack_cli import (
    LB_PATH,
    OpenStackCLI,
    create_child,
    create_lb,
    wait_gone,
    wait_status,
)
from tests.helpers.service import PROJECT, SUBNET, Service
from tests.tls_material import Authority


@pytest.fixture(scope="module")
def cli(lbaas_service: Service, tmp_path_factory: pytest.TempPathFactory) -> OpenStackCLI:
    return OpenStackCLI(lbaas_service, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def http(lbaas_service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lbaas_service.url, timeout=30) as client:
        yield client










def lb_with_pool(http: httpx.Client, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    lb = create_lb(http, name)
    pool = create_child(http, lb["id"], "/v2/lbaas/pools", "pool", loadbalancer_id=lb["id"],
                        protocol="HTTP", lb_algorithm="ROUND_ROBIN")
    return lb, pool


def settle(http: httpx.Client, lb: dict[str, Any]) -> None:
    """Wait until a change the CLI made to one of ``lb``'s children has been applied."""
    wait_status(http, f"{LB_PATH}/{lb['id']}")


@pytest.fixture(scope="module")
def registry_subnet(lbaas_service: Service) -> Iterator[dict[str, Any]]:
    with service_helpers.registry_subnet(lbaas_service, "198.51.100.0/24") as subnet:
        yield subnet


@pytest.mark.root  # `lbaas network create` makes a Linux bridge
def test_cli_creates_and_deletes_a_load_balancer_on_a_registry_subnet(cli, http, registry_subnet):
    created = cli.json("loadbalancer", "create", "--name", "from-cli", "--vip-subnet-id",
                       registry_subnet["name"], "--tag", "cli")
    assert created["provisioning_status"] == "PENDING_CREATE"
    assert (created["vip_subnet_id"], created["tags"]) == (registry_subnet["id"], ["cli"])
    wait_status(http, f"{LB_PATH}/{created['id']}")
    cli.ok("loadbalancer", "delete", "--wait", created["id"])
    assert http.get(f"{LB_PATH}/{created['id']}").status_code == 404


def test_cli_lists_and_shows_a_load_balancer(cli, http):
    lb = create_lb(http, f"listed-{uuid.uuid4().hex[:6]}", tags=["blue"])
    listed = {row["id"]: row for row in cli.json("loadbalancer", "list")}
    assert listed[lb["id"]]["name"] == lb["name"]
    assert listed[lb["id"]]["provisioning_status"] == "ACTIVE"
    assert listed[lb["id"]]["project_id"] == PROJECT
    filtered = cli.json("loadbalancer", "list", "--name", lb["name"])
    assert [row["id"] for row in filtered] == [lb["id"]]
    by_tag = cli.json("loadbalancer", "list", "--tags", "blue")
    assert lb["id"] in {row["id"] for row in by_tag}
    shown = cli.json("loadbalancer", "show", lb["name"])
    assert (shown["id"], shown["vip_subnet_id"], shown["provider"]) == (lb["id"], SUBNET, "amphora")
    assert shown["vip_address"] == lb["vip_address"]


def test_cli_sets_and_unsets_load_balancer_attributes(cli, http):
    lb = create_lb(http, f"before-{uuid.uuid4().hex[:6]}")
    cli.ok("loadbalancer", "set", "--name", "after-" + lb["id"][:6], "--description", "renamed",
           "--disable", "--tag", "green", "--wait", lb["id"])
    shown = cli.json("loadbalancer", "show", lb["id"])
    assert shown["name"] == "after-" + lb["id"][:6]
    assert (shown["description"], shown["admin_state_up"]) == ("renamed", False)
    assert shown["tags"] == ["green"]
    assert shown["provisioning_status"] == "ACTIVE"
    cli.ok("loadbalancer", "unset", "--description", "--all-tag", lb["id"])
    unset = wait_status(http, f"{LB_PATH}/{lb['id']}")
    assert (unset["description"], unset["tags"]) == ("", [])


def test_cli_shows_status_tree_and_statistics(cli, http):
    lb = create_lb(http, "observed")
    tree = json.loads(cli.ok("loadbalancer", "status", "show", lb["id"]))
    assert tree["loadbalancer"]["id"] == lb["id"]
    assert tree["loadbalancer"]["provisioning_status"] == "ACTIVE"
    stats = cli.json("loadbalancer", "stats", "show", lb["id"])
    assert stats == {"active_connections": 0, "bytes_in": 0, "bytes_out": 0,
                     "request_errors": 0, "total_connections": 0}


def test_cli_fails_over_a_load_balancer(cli, http):
    lb = create_lb(http, "failed-over")
    cli.ok("loadbalancer", "failover", lb["id"])
    assert wait_status(http, f"{LB_PATH}/{lb['id']}")["id"] == lb["id"]


def test_cli_deletes_a_load_balancer(cli, http):
    lb = create_lb(http, "doomed")
    cli.ok("loadbalancer", "delete", lb["id"])
    wait_gone(http, f"{LB_PATH}/{lb['id']}")
    assert lb["id"] not in {row["id"] for row in cli.json("loadbalancer", "list")}


def test_cli_reports_an_unknown_load_balancer(cli):
    missing = str(uuid.uuid4())
    result = cli.run("loadbalancer", "show", missing)
    assert result.returncode != 0
    assert f"Unable to locate {missing} in loadbalancers" in result.stderr


def test_cli_shows_quotas_and_their_defaults(cli, http):
    assert http.put(f"/v2/lbaas/quotas/{PROJECT}",
                    json={"quota": {"loadbalancer": 40, "member": 9}}).status_code == 202
    quota = cli.json("loadbalancer", "quota", "show", PROJECT)
    assert (quota["load_balancer"], quota["member"]) == (40, 9)
    assert PROJECT in {row["project_id"] for row in cli.json("loadbalancer", "quota", "list")}
    defaults = cli.json("loadbalancer", "quota", "defaults", "show")
    assert defaults["load_balancer"] == -1
    assert http.delete(f"/v2/lbaas/quotas/{PROJECT}").status_code == 202


def test_cli_lists_providers_and_capabilities(cli):
    providers = {row["name"] for row in cli.json("loadbalancer", "provider", "list")}
    assert {"amphora", "octavia"} <= providers
    capabilities = cli.json("loadbalancer", "provider", "capability", "list", "amphora")
    assert "loadbalancer_topology" in {row["name"] for row in capabilities}


def test_cli_manages_a_listener(cli, http):
    lb = create_lb(http, "with-listener")
    created = cli.json("loadbalancer", "listener", "create", "--name", "web", "--protocol", "HTTP",
                       "--protocol-port", "8080", "--connection-limit", "500",
                       "--allowed-cidr", "192.0.2.0/24", lb["id"])
    assert (created["protocol"], created["protocol_port"]) == ("HTTP", 8080)
    settle(http, lb)
    listed = cli.json("loadbalancer", "listener", "list", "--loadbalancer", lb["id"])
    assert [row["id"] for row in listed] == [created["id"]]
    cli.ok("loadbalancer", "listener", "set", "--name", "web2", "--timeout-client-data", "1000",
           "--insert-headers", "X-Forwarded-For=true", created["id"])
    settle(http, lb)
    cli.ok("loadbalancer", "listener", "unset", "--connection-limit", created["id"])
    settle(http, lb)
    shown = cli.json("loadbalancer", "listener", "show", "web2")
    assert (shown["timeout_client_data"], shown["connection_limit"]) == (1000, -1)
    assert shown["insert_headers"] == {"X-Forwarded-For": "true"}
    assert shown["allowed_cidrs"] == ["192.0.2.0/24"]
    stats = cli.json("loadbalancer", "listener", "stats", "show", created["id"])
    assert stats["total_connections"] == 0
    cli.ok("loadbalancer", "listener", "delete", created["id"])
    wait_gone(http, f"/v2/lbaas/listeners/{created['id']}")


def test_cli_manages_a_pool(cli, http):
    lb = create_lb(http, "with-pool")
    created = cli.json("loadbalancer", "pool", "create", "--name", "backends", "--protocol", "HTTP",
                       "--lb-algorithm", "ROUND_ROBIN", "--loadbalancer", lb["id"],
                       "--session-persistence", "type=APP_COOKIE,cookie_name=chip")
    assert created["session_persistence"]["cookie_name"] == "chip"
    settle(http, lb)
    listed = cli.json("loadbalancer", "pool", "list", "--loadbalancer", lb["id"])
    assert [row["id"] for row in listed] == [created["id"]]
    cli.ok("loadbalancer", "pool", "set", "--lb-algorithm", "LEAST_CONNECTIONS", "--description",
           "app servers", created["id"])
    settle(http, lb)
    cli.ok("loadbalancer", "pool", "unset", "--session-persistence", created["id"])
    settle(http, lb)
    shown = cli.json("loadbalancer", "pool", "show", "backends")
    assert (shown["lb_algorithm"], shown["description"]) == ("LEAST_CONNECTIONS", "app servers")
    assert shown["session_persistence"] is None
    cli.ok("loadbalancer", "pool", "delete", created["id"])
    wait_gone(http, f"/v2/lbaas/pools/{created['id']}")


def test_cli_manages_members(cli, http):
    lb, pool = lb_with_pool(http, "with-members")
    created = cli.json("loadbalancer", "member", "create", "--name", "app1", "--address",
                       "192.0.2.10", "--protocol-port", "80", "--weight", "5", pool["id"])
    assert (created["address"], created["weight"]) == ("192.0.2.10", 5)
    settle(http, lb)
    cli.ok("loadbalancer", "member", "set", "--weight", "9", "--enable-backup", pool["id"],
           created["id"])
    settle(http, lb)
    listed = cli.json("loadbalancer", "member", "list", pool["id"])
    assert [(row["name"], row["weight"]) for row in listed] == [("app1", 9)]
    cli.ok("loadbalancer", "member", "unset", "--weight", pool["id"], "app1")
    settle(http, lb)
    shown = cli.json("loadbalancer", "member", "show", pool["id"], "app1")
    assert (shown["weight"], shown["backup"]) == (1, True)
    cli.ok("loadbalancer", "member", "delete", pool["id"], created["id"])
    wait_gone(http, f"/v2/lbaas/pools/{pool['id']}/members/{created['id']}")


def test_cli_manages_a_health_monitor(cli, http):
    lb, pool = lb_with_pool(http, "with-monitor")
    created = cli.json("loadbalancer", "healthmonitor", "create", "--name", "probe", "--delay", "5",
                       "--timeout", "3", "--max-retries", "2", "--type", "HTTP", "--url-path",
                       "/health", "--expected-codes", "200-204", pool["id"])
    assert (created["type"], created["url_path"]) == ("HTTP", "/health")
    settle(http, lb)
    cli.ok("loadbalancer", "healthmonitor", "set", "--delay", "9", "--http-method", "HEAD",
           created["id"])
    settle(http, lb)
    cli.ok("loadbalancer", "healthmonitor", "unset", "--expected-codes", created["id"])
    settle(http, lb)
    shown = cli.json("loadbalancer", "healthmonitor", "show", "probe")
    assert (shown["delay"], shown["http_method"], shown["expected_codes"]) == (9, "HEAD", "200")
    listed = cli.json("loadbalancer", "healthmonitor", "list")
    assert created["id"] in {row["id"] for row in listed}
    cli.ok("loadbalancer", "healthmonitor", "delete", created["id"])
    wait_gone(http, f"/v2/lbaas/healthmonitors/{created['id']}")


def test_cli_manages_l7_policies_and_rules(cli, http):
    lb, pool = lb_with_pool(http, "with-l7")
    listener = create_child(http, lb["id"], "/v2/lbaas/listeners", "listener",
                            loadbalancer_id=lb["id"], protocol="HTTP", protocol_port=80)
    to_pool = cli.json("loadbalancer", "l7policy", "create", "--name", "static", "--action",
                       "REDIRECT_TO_POOL", "--redirect-pool", pool["id"], listener["id"])
    assert (to_pool["action"], to_pool["redirect_pool_id"]) == ("REDIRECT_TO_POOL", pool["id"])
    settle(http, lb)
    moved = cli.json("loadbalancer", "l7policy", "create", "--name", "moved", "--action",
                     "REDIRECT_TO_URL", "--redirect-url", "https://example.com/",
                     "--redirect-http-code", "301", "--position", "1", listener["id"])
    settle(http, lb)
    listed = cli.json("loadbalancer", "l7policy", "list")
    assert {row["id"] for row in listed} == {to_pool["id"], moved["id"]}
    shown = cli.json("loadbalancer", "l7policy", "show", "static")
    assert (shown["position"], shown["provisioning_status"]) == (2, "ACTIVE")
    assert cli.json("loadbalancer", "l7policy", "show", moved["id"])["redirect_http_code"] == 301

    rule = cli.json("loadbalancer", "l7rule", "create", "--type", "PATH", "--compare-type",
                    "STARTS_WITH", "--value", "/static", to_pool["id"])
    settle(http, lb)
    cli.json("loadbalancer", "l7rule", "create", "--type", "HEADER", "--key", "X-Env",
             "--compare-type", "EQUAL_TO", "--value", "beta", "--invert", "static")
    settle(http, lb)
    rules = cli.json("loadbalancer", "l7rule", "list", to_pool["id"])
    assert sorted((row["type"], row["invert"]) for row in rules) == \
        [("HEADER", True), ("PATH", False)]
    cli.ok("loadbalancer", "l7rule", "set", "--value", "/assets", to_pool["id"], rule["id"])
    settle(http, lb)
    assert cli.json("loadbalancer", "l7rule", "show", to_pool["id"], rule["id"])["value"] == "/assets"
    failed = cli.run("loadbalancer", "l7rule", "create", "--type", "PATH", "--compare-type",
                     "REGEX", "--value", "(", to_pool["id"])
    assert failed.returncode != 0 and "Unable to parse regular expression" in failed.stderr

    cli.ok("loadbalancer", "l7rule", "delete", to_pool["id"], rule["id"])
    wait_gone(http, f"/v2/lbaas/l7policies/{to_pool['id']}/rules/{rule['id']}")
    settle(http, lb)
    cli.ok("loadbalancer", "l7policy", "delete", moved["id"])
    wait_gone(http, f"/v2/lbaas/l7policies/{moved['id']}")
    assert cli.json("loadbalancer", "l7policy", "show", "static")["position"] == 1


def test_cli_cascade_delete_removes_the_whole_tree(cli, http):
    lb, pool = lb_with_pool(http, "tree")
    listener = create_child(http, lb["id"], "/v2/lbaas/listeners", "listener",
                            loadbalancer_id=lb["id"], protocol="HTTP", protocol_port=80,
                            default_pool_id=pool["id"])
    member = create_child(http, lb["id"], f"/v2/lbaas/pools/{pool['id']}/members", "member",
                          address="192.0.2.20", protocol_port=80)
    tree = json.loads(cli.ok("loadbalancer", "status", "show", lb["id"]))["loadbalancer"]
    assert tree["listeners"][0]["id"] == listener["id"]
    assert tree["listeners"][0]["pools"][0]["members"][0]["id"] == member["id"]
    refused = cli.run("loadbalancer", "delete", lb["id"])
    assert refused.returncode != 0 and "it has children" in refused.stderr
    cli.ok("loadbalancer", "delete", "--cascade", lb["id"])
    wait_gone(http, f"{LB_PATH}/{lb['id']}")
    for path in (f"/v2/lbaas/listeners/{listener['id']}", f"/v2/lbaas/pools/{pool['id']}"):
        assert http.get(path).status_code == 404


def test_cli_manages_flavor_profiles_and_flavors(cli, http):
    profile = cli.json("loadbalancer", "flavorprofile", "create", "--name", "cli-fp",
                       "--provider", "amphora", "--flavor-data",
                       '{"loadbalancer_topology": "ACTIVE_STANDBY"}')
    assert profile["provider_name"] == "amphora"
    assert profile["id"] in {row["id"] for row in cli.json("loadbalancer", "flavorprofile", "list")}
    flavor = cli.json("loadbalancer", "flavor", "create", "--name", "cli-gold",
                      "--flavorprofile", "cli-fp", "--description", "two amphorae", "--enable")
    assert flavor["flavor_profile_id"] == profile["id"]
    assert "cli-gold" in {row["name"] for row in cli.json("loadbalancer", "flavor", "list")}
    shown = cli.json("loadbalancer", "flavor", "show", "cli-gold")
    assert (shown["id"], shown["description"], shown["enabled"]) == (flavor["id"], "two amphorae", True)
    refused = cli.run("loadbalancer", "flavorprofile", "create", "--name", "bad",
                      "--provider", "amphora", "--flavor-data", '{"loadbalancer_topology": "X"}')
    assert refused.returncode != 0 and "does not support a requested option" in refused.stderr
    lb = create_lb(http, "flavored", flavor_id=flavor["id"])
    assert lb["flavor_id"] == flavor["id"]
    roles = {row["role"] for row in cli.json("loadbalancer", "amphora", "list", "--loadbalancer", lb["id"])}
    assert roles == {"MASTER", "BACKUP"}


def test_cli_manages_availability_zone_profiles_and_zones(cli, http):
    profile = cli.json("loadbalancer", "availabilityzoneprofile", "create", "--name", "cli-azp",
                       "--provider", "amphora", "--availability-zone-data", '{"compute_zone": "nova"}')
    assert profile["id"] in {row["id"] for row in cli.json("loadbalancer", "availabilityzoneprofile", "list")}
    zone = cli.json("loadbalancer", "availabilityzone", "create", "--name", "cli-az",
                    "--availabilityzoneprofile", "cli-azp")
    assert zone["availability_zone_profile_id"] == profile["id"]
    assert "cli-az" in {row["name"] for row in cli.json("loadbalancer", "availabilityzone", "list")}
    assert cli.json("loadbalancer", "availabilityzone", "show", "cli-az")["enabled"] is True


def test_cli_lists_shows_and_fails_over_amphorae(cli, http):
    lb = create_lb(http, "amphora-admin")
    [amphora] = cli.json("loadbalancer", "amphora", "list", "--loadbalancer", lb["id"])
    shown = cli.json("loadbalancer", "amphora", "show", amphora["id"])
    assert (shown["loadbalancer_id"], shown["role"], shown["status"]) == (lb["id"], "STANDALONE", "ALLOCATED")
    cli.ok("loadbalancer", "amphora", "failover", amphora["id"])
    wait_status(http, f"{LB_PATH}/{lb['id']}")
    [replacement] = cli.json("loadbalancer", "amphora", "list", "--loadbalancer", lb["id"])
    assert replacement["id"] != amphora["id"]
    cli.ok("loadbalancer", "amphora", "configure", replacement["id"])


# --- TLS (README's "TLS" section): certificates stored with `lbaas secret store` ----------

def stored(cli: OpenStackCLI, workdir: Path, name: str, **files: bytes) -> str:
    """``lbaas secret store`` with ``--<option> FILE`` per keyword; the reference."""
    options = []
    for option, content in files.items():
        path = workdir / f"{name}-{option}.pem"
        path.write_bytes(content)
        options += [f"--{option.replace('_', '-')}", str(path)]
    return json.loads(cli.service.lbaas("secret", "store", "--name", name, *options,
                                        "-f", "json"))["id"]


def test_terminated_https_listener_and_tls_pool_with_the_openstack_client(
        cli: OpenStackCLI, http, tmp_path: Path):
    ca = Authority()
    www, api = ca.issue("www.example.com"), ca.issue("api.example.com")
    www_ref = stored(cli, tmp_path, "www", certificate=www.cert_pem, private_key=www.key_pem)
    api_ref = stored(cli, tmp_path, "api", certificate=api.cert_pem, private_key=api.key_pem)
    ca_ref = stored(cli, tmp_path, "ca", payload_file=ca.cert_pem)
    crl_ref = stored(cli, tmp_path, "crl", payload_file=ca.crl_pem())
    lb = create_lb(http, "tls")
    listener = cli.json(
        "loadbalancer", "listener", "create", "--name", "https", "--protocol",
        "TERMINATED_HTTPS", "--protocol-port", "443", "--default-tls-container-ref", www_ref,
        "--sni-container-refs", api_ref, "--client-authentication", "OPTIONAL",
        "--client-ca-tls-container-ref", ca_ref, "--client-crl-container-ref", crl_ref,
        "--tls-version", "TLSv1.2", "--tls-version", "TLSv1.3", "--alpn-protocol", "h2",
        "--alpn-protocol", "http/1.1", "--tls-ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256",
        "--hsts-max-age", "31536000", "--hsts-include-subdomains",
        "--insert-headers", "X-Forwarded-Proto=true,X-SSL-Client-CN=true", lb["id"], "--wait")
    assert (listener["default_tls_container_ref"], listener["sni_container_refs"]) == (
        www_ref, [api_ref])
    assert listener["tls_versions"] == ["TLSv1.2", "TLSv1.3"]
    assert listener["client_authentication"] == "OPTIONAL"
    pool = cli.json("loadbalancer", "pool", "create", "--name", "app", "--protocol", "HTTP",
                    "--lb-algorithm", "ROUND_ROBIN", "--listener", "https", "--enable-tls",
                    "--ca-tls-container-ref", ca_ref, "--tls-container-ref", www_ref, "--wait")
    assert pool["tls_enabled"] is True and pool["ca_tls_container_ref"] == ca_ref
    refused = cli.run("loadbalancer", "listener", "set", "--default-tls-container-ref",
                      "not-a-ref", "https")
    assert refused.returncode != 0
    assert "Could not retrieve certificate: not-a-ref" in refused.stderr
    assert wait_status(http, f"{LB_PATH}/{lb['id']}")["provisioning_status"] == "ACTIVE"
    expiring = json.loads(cli.service.lbaas("secret", "expiry", "-f", "json"))
    assert {row["Reference"] for row in expiring} == {www_ref, api_ref, ca_ref}
    cli.ok("loadbalancer", "delete", "--cascade", "--wait", lb["id"])
