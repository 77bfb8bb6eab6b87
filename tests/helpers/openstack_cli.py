"""The unchanged ``openstack`` command against a running ``lbaas up``, and the calls
the client tests share (create a tree, wait for a status)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.service import SUBNET, Service, clean_environment


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


LB_PATH = "/v2/lbaas/loadbalancers"


def create_child(http: httpx.Client, lb_id: str, path: str, key: str, **fields: Any) -> dict[str, Any]:
    """POST one child object over HTTP and wait until its load balancer is ACTIVE again."""
    response = http.post(path, json={key: fields})
    assert response.status_code == 201, response.text
    wait_status(http, f"{LB_PATH}/{lb_id}")
    return response.json()[key]


def create_lb(http: httpx.Client, name: str, **fields: Any) -> dict[str, Any]:
    response = http.post(LB_PATH, json={"loadbalancer": {
        "name": name, "vip_subnet_id": SUBNET, **fields}})
    assert response.status_code == 201, response.text
    return wait_status(http, f"{LB_PATH}/{response.json()['loadbalancer']['id']}")


def wait_gone(http: httpx.Client, path: str) -> None:
    deadline = time.monotonic() + POLL_TIMEOUT
    while http.get(path).status_code != 404:
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} was not deleted")
        time.sleep(0.05)


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


POLL_TIMEOUT = 60.0
