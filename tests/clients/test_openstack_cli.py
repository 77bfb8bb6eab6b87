"""The ``openstack loadbalancer ...`` command (python-octaviaclient), unchanged, against ``lbaas up``.

``openstack loadbalancer create`` first looks the VIP subnet up through the network API,
which arrives with the network registry; load balancers are created over HTTP here.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients.conftest import PROJECT, SUBNET, Service, clean_environment

LB_PATH = "/v2/lbaas/loadbalancers"
POLL_TIMEOUT = 60.0


class OpenStackCLI:
    """Runs ``openstack --os-auth-type none --os-endpoint URL ...`` with a private HOME."""

    def __init__(self, service: Service, home: Path) -> None:
        self.service = service
        self.command = [str(Path(sys.executable).parent / "openstack"),
                        "--os-auth-type", "none", "--os-endpoint", service.url]
        self.env = {**clean_environment(), "HOME": str(home)}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.command, *args], capture_output=True, text=True,
                              env=self.env, stdin=subprocess.DEVNULL, timeout=120)

    def ok(self, *args: str) -> str:
        """Run a command that must succeed; its standard output."""
        result = self.run(*args)
        assert result.returncode == 0, f"openstack {' '.join(args)}: {result.stderr}"
        return result.stdout

    def json(self, *args: str) -> Any:
        """Run a listing or showing command with ``-f json``; its parsed output."""
        return json.loads(self.ok(*args, "-f", "json"))


@pytest.fixture(scope="module")
def cli(lbaas_service: Service, tmp_path_factory: pytest.TempPathFactory) -> OpenStackCLI:
    return OpenStackCLI(lbaas_service, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def http(lbaas_service: Service) -> httpx.Client:
    with httpx.Client(base_url=lbaas_service.url, timeout=30) as client:
        yield client


def wait_status(http: httpx.Client, path: str, wanted: str = "ACTIVE") -> dict[str, Any]:
    """Poll one object until its provisioning_status is ``wanted``; the object."""
    deadline = time.monotonic() + POLL_TIMEOUT
    while True:
        body = http.get(path).json()
        obj = next(iter(body.values()))
        if obj["provisioning_status"] == wanted:
            return obj
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} stayed {obj['provisioning_status']}, wanted {wanted}")
        time.sleep(0.05)


def wait_gone(http: httpx.Client, path: str) -> None:
    deadline = time.monotonic() + POLL_TIMEOUT
    while http.get(path).status_code != 404:
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} was not deleted")
        time.sleep(0.05)


def create_lb(http: httpx.Client, name: str, **fields: Any) -> dict[str, Any]:
    response = http.post(LB_PATH, json={"loadbalancer": {
        "name": name, "vip_subnet_id": SUBNET, **fields}})
    assert response.status_code == 201, response.text
    return wait_status(http, f"{LB_PATH}/{response.json()['loadbalancer']['id']}")


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
    assert (unset["description"], unset["tags"]) == (None, [])


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
