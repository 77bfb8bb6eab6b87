"""The unchanged ``openstack`` client with Keystone auth: a token from the real Keystone,
the load-balancer (and network) endpoint from its catalog."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.keystone import FORBIDDEN, PASSWORD, KeystoneService, client, user_name
from tests.helpers.openstack_cli import LB_PATH
from tests.helpers.service import clean_environment, registry_subnet

# One Keystone for the whole run: every module using it runs on the same xdist worker.
pytestmark = pytest.mark.xdist_group("keystone")


class KeystoneCLI:
    """``openstack`` authenticated as ``<project>-<role>`` through the OS_* variables."""

    def __init__(self, service: KeystoneService, home: Path, project: str, role: str) -> None:
        assert service.keystone is not None
        self.env = {**clean_environment(), "HOME": str(home),
                    "OS_AUTH_URL": service.keystone.url, "OS_IDENTITY_API_VERSION": "3",
                    "OS_USERNAME": user_name(project, role), "OS_PASSWORD": PASSWORD,
                    "OS_PROJECT_NAME": project, "OS_USER_DOMAIN_NAME": "Default",
                    "OS_PROJECT_DOMAIN_NAME": "Default", "OS_REGION_NAME": "RegionOne",
                    "OS_INTERFACE": "public"}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(Path(sys.executable).parent / "openstack"), *args],
                              capture_output=True, text=True, env=self.env,
                              stdin=subprocess.DEVNULL, timeout=120)

    def json(self, *args: str) -> Any:
        result = self.run(*args, "-f", "json")
        assert result.returncode == 0, f"openstack {' '.join(args)}: {result.stderr}"
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def subnet(lbaas_keystone: KeystoneService) -> Iterator[dict[str, Any]]:
    with registry_subnet(lbaas_keystone, "198.51.100.0/24") as created:
        yield created


def cli(service: KeystoneService, tmp_path: Path, project: str, role: str) -> KeystoneCLI:
    return KeystoneCLI(service, tmp_path / f"home-{project}-{role}", project, role)


@pytest.mark.root  # `lbaas network create` makes a Linux bridge
def test_openstack_client_with_keystones_default_roles_manages_a_project(
        lbaas_keystone, subnet, tmp_path):
    """Keystone's plain member role, default policy: the whole life cycle of a load
    balancer through the unchanged client; reader and admin as upstream defines them."""
    member = cli(lbaas_keystone, tmp_path, "alpha", "member")
    created = member.json("loadbalancer", "create", "--name", "via-keystone",
                          "--vip-subnet-id", subnet["name"], "--wait")
    assert created["project_id"] == lbaas_keystone.keystone.project_ids["alpha"]
    assert created["vip_address"] and created["vip_port_id"] and created["vip_network_id"]
    member.json("loadbalancer", "listener", "create", "--name", "http", "--protocol", "HTTP",
                "--protocol-port", "80", "--wait", created["id"])
    member.json("loadbalancer", "pool", "create", "--name", "app", "--protocol", "HTTP",
                "--lb-algorithm", "ROUND_ROBIN", "--listener", "http", "--wait")
    member.json("loadbalancer", "member", "create", "--address", "198.51.100.20",
                "--protocol-port", "8080", "--wait", "app")
    member.json("loadbalancer", "healthmonitor", "create", "--type", "HTTP", "--delay", "5",
                "--timeout", "3", "--max-retries", "3", "--wait", "app")
    shown = member.json("loadbalancer", "show", created["id"])
    assert (shown["name"], shown["provisioning_status"]) == ("via-keystone", "ACTIVE")
    assert created["id"] in [row["id"] for row in member.json("loadbalancer", "list")]
    status = member.run("loadbalancer", "status", "show", created["id"])  # always JSON
    assert json.loads(status.stdout)["loadbalancer"]["id"] == created["id"], status.stderr

    other = cli(lbaas_keystone, tmp_path, "beta", "member")
    assert created["id"] not in [row["id"] for row in other.json("loadbalancer", "list")]
    refused = other.run("loadbalancer", "show", created["id"])
    assert refused.returncode != 0 and FORBIDDEN["faultstring"] in refused.stderr

    reader = cli(lbaas_keystone, tmp_path, "alpha", "reader")
    assert reader.json("loadbalancer", "show", created["id"])["id"] == created["id"]
    assert [row["name"] for row in reader.json("loadbalancer", "pool", "list")] == ["app"]
    refused = reader.run("loadbalancer", "create", "--name", "nope", "--vip-subnet-id", subnet["name"])
    assert refused.returncode != 0
    assert FORBIDDEN["faultstring"] in refused.stderr
    assert member.json("loadbalancer", "flavor", "list") == []
    refused = member.run("loadbalancer", "amphora", "list")
    assert refused.returncode != 0 and FORBIDDEN["faultstring"] in refused.stderr
    admin = cli(lbaas_keystone, tmp_path, "alpha", "admin")
    amphorae = admin.json("loadbalancer", "amphora", "list", "--loadbalancer", created["id"])
    assert [row["loadbalancer_id"] for row in amphorae] == [created["id"]]
    result = member.run("loadbalancer", "delete", "--cascade", "--wait", created["id"])
    assert result.returncode == 0, result.stderr
    token = lbaas_keystone.keystone.token(user_name("alpha", "member"), "alpha")
    with client(lbaas_keystone, token) as http:
        assert http.get(f"{LB_PATH}/{created['id']}").status_code == 404
