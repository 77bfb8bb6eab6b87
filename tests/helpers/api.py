"""Small helpers to build load balancer trees through the API in tests."""
from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from lbaas import constants
from lbaas.amphora import haproxy_config, udp_config
from lbaas.cert_manager.base import CertManager
from lbaas.db.models import LoadBalancer
from lbaas.drivers import Drivers
from lbaas.drivers.amphora import tls
from tests.helpers import PROJECT, wait_for

SUBNET = "8c1a4e5c-9b1f-4d5c-8f5e-0a6f3e2b9c10"


def create_lb(client: TestClient, **fields: Any) -> dict[str, Any]:
    """Create a load balancer and wait until it is ACTIVE."""
    body = {"vip_subnet_id": SUBNET, **fields}
    response = client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": body})
    assert response.status_code == 201, response.text
    return wait_lb_active(client, response.json()["loadbalancer"]["id"])


def wait_lb_active(client: TestClient, lb_id: str) -> dict[str, Any]:
    return wait_for(lambda: client.get(f"/v2/lbaas/loadbalancers/{lb_id}").json()["loadbalancer"],
                    "provisioning_status", "ACTIVE")


def wait_active(client: TestClient, path: str, root: str) -> dict[str, Any]:
    """GET ``path`` until the object under ``root`` is ACTIVE and return it."""
    return wait_for(lambda: client.get(path).json()[root], "provisioning_status", "ACTIVE")


def wait_gone(client: TestClient, path: str) -> None:
    """GET ``path`` until it answers 404 (the delete flow removed the object)."""
    wait_for(lambda: {"code": client.get(path).status_code}, "code", 404)


def create_listener(client: TestClient, lb_id: str, protocol: str = "HTTP",
                    protocol_port: int = 80, **fields: Any) -> dict[str, Any]:
    """Create a listener on a load balancer and wait until both are ACTIVE."""
    body = {"loadbalancer_id": lb_id, "protocol": protocol, "protocol_port": protocol_port,
            **fields}
    response = client.post("/v2/lbaas/listeners", json={"listener": body})
    assert response.status_code == 201, response.text
    wait_lb_active(client, lb_id)
    return wait_active(client, f"/v2/lbaas/listeners/{response.json()['listener']['id']}",
                       "listener")


def create_pool(client: TestClient, lb_id: str, protocol: str = "HTTP",
                **fields: Any) -> dict[str, Any]:
    """Create a pool on a load balancer and wait until both are ACTIVE."""
    body = {"loadbalancer_id": lb_id, "protocol": protocol, "lb_algorithm": "ROUND_ROBIN",
            **fields}
    response = client.post("/v2/lbaas/pools", json={"pool": body})
    assert response.status_code == 201, response.text
    wait_lb_active(client, lb_id)
    return wait_active(client, f"/v2/lbaas/pools/{response.json()['pool']['id']}", "pool")


def create_member(client: TestClient, pool_id: str, address: str, protocol_port: int = 80,
                  **fields: Any) -> dict[str, Any]:
    """Add a member to a pool and wait until it is ACTIVE."""
    path = f"/v2/lbaas/pools/{pool_id}/members"
    body = {"address": address, "protocol_port": protocol_port, **fields}
    response = client.post(path, json={"member": body})
    assert response.status_code == 201, response.text
    return wait_active(client, f"{path}/{response.json()['member']['id']}", "member")


@contextlib.contextmanager
def amphora_updates_held(drivers: Drivers) -> Iterator[None]:
    """Hold every configuration push to the amphorae until the block ends.

    A change submitted inside the block keeps its load balancer PENDING_UPDATE.
    """
    gate = threading.Event()
    push = drivers.amphora.update

    def held(load_balancer: Any, amphora: Any) -> None:
        gate.wait(30)
        push(load_balancer, amphora)

    drivers.amphora.update = held  # type: ignore[method-assign]
    try:
        yield
    finally:
        gate.set()
        drivers.amphora.update = push  # type: ignore[method-assign]


def fault(response: Any, code: int) -> str:
    """Assert an Octavia fault body with ``code`` and return its faultstring."""
    assert response.status_code == code, response.text
    body = response.json()
    assert set(body) == {"faultcode", "faultstring", "debuginfo"}, body
    return body["faultstring"]


CERTS_DIR = "/lbaas-test-certs"
"""Where ``render_options`` puts certificate files; ``haproxy_check`` writes them elsewhere."""


def haproxy_check(text: str, files: Mapping[str, bytes] | None = None) -> None:
    """Assert that ``haproxy -c`` accepts the configuration ``text`` with its certificate
    ``files`` (rendered with ``render_options``)."""
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    with tempfile.TemporaryDirectory(prefix="lbaas-check-") as directory:
        for name, content in (files or {}).items():  # crt-lists name the other files
            (Path(directory) / name).write_bytes(
                content.replace(f"{CERTS_DIR}/".encode(), f"{directory}/".encode()))
        text = text.replace(f"{CERTS_DIR}/", f"{directory}/")
        path = Path(directory) / "haproxy.cfg"
        path.write_text(text)
        result = subprocess.run([haproxy, "-c", "-f", str(path)], capture_output=True,
                                text=True, timeout=60)
    assert result.returncode == 0, f"haproxy -c refused:\n{result.stdout}{result.stderr}\n{text}"


def render_options(amphora_id: str = "a0000000-0000-4000-8000-000000000001"
                   ) -> haproxy_config.RenderOptions:
    directory = Path("/var/lib/lbaas/amphorae") / amphora_id
    return haproxy_config.RenderOptions(
        amphora_id=amphora_id, stats_socket=str(directory / "haproxy.sock"),
        server_state_file=str(directory / "haproxy.state"), pid_file=str(directory / "haproxy.pid"),
        ping_command="/usr/lib/lbaas/ping-wrapper.sh", certs_dir=CERTS_DIR)


def render_checked(load_balancer: Any, amphora_id: str | None = None,
                   manager: CertManager | None = None) -> str:
    """Render as the REST driver does (certificates fetched through ``manager``), have
    ``haproxy -c`` check it, return the text."""
    material = tls.fetch(load_balancer, manager) if manager is not None else None
    options = render_options(amphora_id) if amphora_id else render_options()
    text, files = haproxy_config.render_files(load_balancer, options, material)
    haproxy_check(text, files)
    return text


@contextlib.contextmanager
def haproxy_checked_pushes(drivers: Drivers, manager: CertManager | None = None
                           ) -> Iterator[list[str]]:
    """Every configuration push renders the load balancer as the REST driver does and has
    ``haproxy -c`` check it (a refused one fails the push, as the agent would); yields the
    configurations pushed, newest last."""
    pushed: list[str] = []
    push = drivers.amphora.update

    def checked(load_balancer: Any, amphora: Any) -> None:
        pushed.append(render_checked(load_balancer, amphora.id, manager))
        udp_config.render(load_balancer)  # the UDP part, if any, must be served too
        push(load_balancer, amphora)

    drivers.amphora.update = checked  # type: ignore[method-assign]
    try:
        yield pushed
    finally:
        drivers.amphora.update = push  # type: ignore[method-assign]


def store_tls_refs(manager: CertManager, project_id: str) -> dict[str, str]:
    """Certificates and secrets of ``project_id`` in the local store, by role: ``default``,
    ``sni-a``, ``sni-b``, ``client`` (certificates), ``ca``, ``crl`` (a CRL of that CA),
    ``other-crl`` (another CA's), ``not-a-ca``, and ``foreign`` (another project's)."""
    from lbaas.cert_manager.local import LocalCertManager
    from tests.tls_material import Authority
    assert isinstance(manager, LocalCertManager)
    ca, other = Authority(), Authority("Other CA")
    refs = {name: manager.store_certificate(ca.issue(f"{name}.example.com",
                                                     (f"{name}.example.com",)).tls, project_id)
            for name in ("default", "sni-a", "sni-b", "client")}
    refs["ca"] = manager.store_secret(ca.cert_pem, project_id)
    refs["crl"] = manager.store_secret(ca.crl_pem(), project_id)
    refs["other-crl"] = manager.store_secret(other.crl_pem(), project_id)
    refs["not-a-ca"] = manager.store_secret(b"just text", project_id)
    refs["foreign"] = manager.store_certificate(ca.issue("foreign").tls, "another-project")
    return refs


@contextlib.contextmanager
def as_member(client: TestClient, project_id: str | None = None) -> Iterator[None]:
    """Requests through ``client`` come from a non-admin member of ``project_id`` (default:
    the client's X-Project-Id), as a Keystone token would make them."""
    from lbaas.api.common import context
    from lbaas.api.context import RequestContext
    project = project_id or client.headers["X-Project-Id"]
    app: Any = client.app
    app.dependency_overrides[context] = lambda: RequestContext(
        project_id=project, is_admin=False, all_projects=False)
    try:
        yield
    finally:
        app.dependency_overrides.pop(context, None)


def race_updates(client: TestClient, services: Any) -> None:
    """Eight updates of one ACTIVE load balancer at once, no worker running: exactly one
    wins (200, PENDING_UPDATE, its name), the others get 409 (also run on PostgreSQL and
    MariaDB by tests/db)."""
    # An ACTIVE load balancer and no worker: the winner's PENDING_UPDATE is never released.
    with services.db.write() as session:
        lb = LoadBalancer(project_id=PROJECT, provisioning_status=constants.ACTIVE,
                          operating_status=constants.ONLINE, vip_address="198.18.0.9")
        session.add(lb)
    racers = 8
    barrier = threading.Barrier(racers)
    codes: list[int] = []

    def racer(index: int) -> None:
        barrier.wait()
        response = client.put(f"/v2/lbaas/loadbalancers/{lb.id}",
                                json={"loadbalancer": {"name": f"racer-{index}"}})
        codes.append(response.status_code)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200] + [409] * (racers - 1)
    with services.db.read() as session:
        stored = session.get(LoadBalancer, lb.id)
        assert stored.provisioning_status == constants.PENDING_UPDATE
        assert stored.name.startswith("racer-")


def make_profile(client: TestClient, name: str = "fp", provider: str = "amphora",
                 **data: Any) -> dict[str, Any]:
    """A flavor profile with ``data`` as its flavor_data."""
    body = {"name": name, "provider_name": provider, "flavor_data": json.dumps(data)}
    response = client.post("/v2/lbaas/flavorprofiles", json={"flavorprofile": body})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()["flavorprofile"]
    return result


def make_flavor(client: TestClient, profile_id: str, name: str = "gold",
                **fields: Any) -> dict[str, Any]:
    body = {"name": name, "flavor_profile_id": profile_id, **fields}
    response = client.post("/v2/lbaas/flavors", json={"flavor": body})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()["flavor"]
    return result
