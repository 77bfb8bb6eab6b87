"""The Barbican certificate manager against a real Barbican, filled by the real
``openstack secret`` commands.

Barbican (the ``barbican`` package in its own virtualenv, ``scripts/barbican-venv``; the
simple crypto plugin, SQLite, loopback) runs behind the Keystone of the RBAC tests and is
in its catalog as ``key-manager``. A project member stores a PKCS12 bundle, a certificate
container and a CA with ``openstack secret store``; lbaas reads them as its service user
only once the member granted it read access (``openstack acl user add``), and the API
accepts a TERMINATED_HTTPS listener naming them (rendered and checked by ``haproxy -c``).
"""
from __future__ import annotations

import base64
import contextlib
import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lbaas import config, service
from lbaas.api.app import create_app
from lbaas.cert_manager.barbican import BarbicanCertManager
from lbaas.cert_manager.base import CertificateError
from lbaas.drivers import load as load_drivers
from tests.helpers import NOOP_DRIVERS, wait_for
from tests.helpers.api import SUBNET, create_lb, haproxy_checked_pushes, wait_lb_active
from tests.helpers.keystone import PASSWORD, ROOT, Keystone, user_name
from tests.helpers.service import clean_environment, free_port, stop, wait_until_answering
from tests.tls_material import Authority

# One Keystone for the whole run: every module using it runs on the same xdist worker.
pytestmark = pytest.mark.xdist_group("keystone")

BARBICAN_VENV = ROOT / ".venv-barbican"
SERVER_SCRIPT = Path(__file__).with_name("barbican_server.py")
MEMBER = user_name("alpha", "member")


def barbican_config(keystone: Keystone, workdir: Path, port: int) -> str:
    base = keystone.url.removesuffix("/v3")
    kek = base64.urlsafe_b64encode(os.urandom(32)).decode()
    return (
        "[DEFAULT]\n"
        f"host_href = http://127.0.0.1:{port}\n"
        "db_auto_create = True\n"
        "[database]\n"
        f"connection = sqlite:///{workdir / 'barbican.sqlite'}\n"
        "[secretstore]\n"
        "enabled_secretstore_plugins = store_crypto\n"
        "[crypto]\n"
        "enabled_crypto_plugins = simple_crypto\n"
        "[simple_crypto_plugin]\n"
        f"kek = {kek}\n"
        "[keystone_authtoken]\n"
        f"www_authenticate_uri = {base}\n"
        f"auth_url = {base}\n"
        "auth_type = password\n"
        "username = barbican\n"
        f"password = {PASSWORD}\n"
        "project_name = service\n"
        "user_domain_name = Default\n"
        "project_domain_name = Default\n")


@dataclass(frozen=True)
class Barbican:
    url: str
    keystone: Keystone

    def openstack(self, *args: str) -> str:
        """The real ``openstack`` command as alpha's member, Barbican from the catalog."""
        env = {**clean_environment(), "OS_AUTH_URL": self.keystone.url,
               "OS_IDENTITY_API_VERSION": "3", "OS_USERNAME": MEMBER, "OS_PASSWORD": PASSWORD,
               "OS_PROJECT_NAME": "alpha", "OS_USER_DOMAIN_NAME": "Default",
               "OS_PROJECT_DOMAIN_NAME": "Default", "OS_REGION_NAME": "RegionOne",
               "OS_INTERFACE": "public"}
        result = subprocess.run([str(Path(sys.executable).parent / "openstack"), *args],
                                env=env, capture_output=True, text=True, timeout=120,
                                stdin=subprocess.DEVNULL, check=False)
        assert result.returncode == 0, f"openstack {' '.join(args)}: {result.stderr}"
        return result.stdout.strip()

    def store(self, name: str, payload: bytes, content_type: str) -> str:
        """``openstack secret store``; the secret's href."""
        if content_type == "application/octet-stream":
            options = ["--payload-content-encoding", "base64",
                       "--payload", base64.b64encode(payload).decode()]
        else:
            options = ["--payload", payload.decode()]
        return self.openstack("secret", "store", "--name", name, "--payload-content-type",
                              content_type, *options, "-f", "value", "-c", "Secret href")


@pytest.fixture(scope="module")
def barbican(keystone: Keystone, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Barbican]:
    subprocess.run(["bash", str(ROOT / "scripts" / "barbican-venv")], check=True, timeout=900,
                   stdin=subprocess.DEVNULL)
    workdir = tmp_path_factory.mktemp("barbican")
    port = free_port()
    (workdir / ".barbican").mkdir()
    (workdir / ".barbican" / "barbican.conf").write_text(barbican_config(keystone, workdir, port))
    keystone.add_user("barbican", "service", ("service", "admin"))
    url = f"http://127.0.0.1:{port}"
    service_id = keystone.create("service", type="key-manager", name="barbican")
    keystone.create("endpoint", service_id=service_id, interface="public", url=url,
                    region_id="RegionOne")
    log = workdir / "barbican.log"
    paste = BARBICAN_VENV / "etc" / "barbican" / "barbican-api-paste.ini"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BARBICAN_VENV / "bin" / "python"), str(SERVER_SCRIPT), str(paste), str(port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**clean_environment(), "HOME": str(workdir)}, start_new_session=True)
    try:
        wait_until_answering(f"{url}/healthcheck", process, "Barbican", log)
        yield Barbican(url, keystone)
    finally:
        stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def lbaas_settings(keystone: Keystone, state_path: Path, **options: str) -> config.Settings:
    """No-op drivers, Barbican read as the ``lbaas`` service user, ``options`` as
    ``section__option`` (noauth unless they say otherwise)."""
    return config.load(environ={
        **NOOP_DRIVERS,
        "LBAAS__DEFAULT__state_path": str(state_path),
        "LBAAS__certificates__cert_manager": "barbican_cert_manager",
        "LBAAS__service_auth__auth_url": keystone.url.removesuffix("/v3"),
        "LBAAS__service_auth__username": "lbaas", "LBAAS__service_auth__password": PASSWORD,
        "LBAAS__service_auth__project_name": "service",
        **{f"LBAAS__{name}": value for name, value in options.items()}})


@pytest.fixture(scope="module")
def settings(keystone: Keystone, barbican: Barbican, tmp_path_factory) -> config.Settings:
    return lbaas_settings(keystone, tmp_path_factory.mktemp("lbaas-barbican"))


@contextlib.contextmanager
def serving(settings: config.Settings) -> Iterator[tuple[TestClient, list[str]]]:
    """The API and a worker (no-op drivers) on ``settings``; yields a client and the
    configurations pushed (rendered with the certificates fetched, checked by haproxy -c)."""
    services = service.open_services(settings)
    drivers = load_drivers(settings, services.db)
    worker = services.worker(drivers)
    worker.start()
    try:
        with TestClient(create_app(services.api_state)) as client, \
                haproxy_checked_pushes(drivers, services.api_state.cert_manager) as pushed:
            yield client, pushed
    finally:
        worker.stop()
        services.db.dispose()


@pytest.fixture(scope="module")
def lbaas_user_id(keystone: Keystone) -> str:
    return keystone.request("GET", "/users", params={"name": "lbaas"}).json()["users"][0]["id"]


@pytest.fixture(scope="module")
def ca() -> Authority:
    return Authority()


def test_pkcs12_secret_is_read_once_the_owner_grants_the_service_user(
        barbican, settings, lbaas_user_id, ca):
    issued = ca.issue("www.example.com", ("www.example.com",))
    issued.chain = (ca.certificate,)
    href = barbican.store("web", issued.pkcs12(), "application/octet-stream")
    manager = BarbicanCertManager.from_settings(settings)
    with pytest.raises(CertificateError) as refused:
        manager.get_cert(href)
    assert f"openstack acl user add --user {lbaas_user_id} {href}" in str(refused.value)
    barbican.openstack("acl", "user", "add", "--user", lbaas_user_id, href)
    tls = manager.get_cert(href)
    assert tls.certificate == issued.cert_pem and tls.intermediates == ca.cert_pem
    with pytest.raises(CertificateError, match="no secret or container"):
        manager.get_cert(href[:-4] + "0000")


def test_certificate_container_and_ca_secret(barbican, settings, lbaas_user_id, ca):
    issued = ca.issue("api.example.com", ("api.example.com",))
    parts = {"certificate": barbican.store("api-cert", issued.cert_pem, "text/plain"),
             "private_key": barbican.store("api-key", issued.key_pem, "text/plain")}
    container = barbican.openstack(
        "secret", "container", "create", "--name", "api", "--type", "certificate",
        *(option for name, href in parts.items() for option in ("--secret", f"{name}={href}")),
        "-f", "value", "-c", "Container href")
    ca_href = barbican.store("ca", ca.cert_pem, "text/plain")
    for href in (container, *parts.values(), ca_href):
        barbican.openstack("acl", "user", "add", "--user", lbaas_user_id, href)
    manager = BarbicanCertManager.from_settings(settings)
    assert manager.get_cert(container).private_key == issued.key_pem
    assert manager.get_secret(ca_href).strip() == ca.cert_pem.strip()


def test_api_accepts_a_listener_with_barbican_refs_and_renders_it(
        barbican, settings, lbaas_user_id, ca):
    """Through the API (noauth, no-op drivers): a granted ref is served (the push is
    rendered with the certificates fetched from Barbican and checked by haproxy -c), an
    ungranted one is upstream's 400 with what to grant."""
    issued = ca.issue("shop.example.com", ("shop.example.com",))
    granted = barbican.store("shop", issued.pkcs12(), "application/octet-stream")
    barbican.openstack("acl", "user", "add", "--user", lbaas_user_id, granted)
    private = barbican.store("private", issued.pkcs12(), "application/octet-stream")
    with serving(settings) as (client, pushed):
        lb = create_lb(client)
        response = post_listener(client, lb["id"], private)
        assert response.status_code == 400
        assert response.json()["faultstring"].startswith(
            f"Could not retrieve certificate: {private} (the lbaas service user")
        response = post_listener(client, lb["id"], granted)
        assert response.status_code == 201, response.text
        wait_lb_active(client, lb["id"])
        assert any("ssl crt-list" in text for text in pushed)


def post_listener(client: TestClient, lb_id: str, ref: str, **headers: str) -> Any:
    return client.post("/v2/lbaas/listeners", headers=headers, json={"listener": {
        "loadbalancer_id": lb_id, "protocol": "TERMINATED_HTTPS", "protocol_port": 443,
        "default_tls_container_ref": ref}})


def test_only_a_project_that_can_read_the_secret_uses_it(
        barbican, keystone, lbaas_user_id, ca, tmp_path_factory):
    """With Keystone auth, the caller's own token must read the secret: the service user's
    ACL (granted by alpha's member) does not let beta's member use alpha's certificate."""
    href = barbican.store("alpha-only", ca.issue("a.example.com").pkcs12(),
                          "application/octet-stream")
    barbican.openstack("acl", "user", "add", "--user", lbaas_user_id, href)
    base = keystone.url.removesuffix("/v3")
    settings = lbaas_settings(
        keystone, tmp_path_factory.mktemp("lbaas-barbican-keystone"),
        api_settings__auth_strategy="keystone", keystone_authtoken__auth_url=base,
        keystone_authtoken__www_authenticate_uri=base, keystone_authtoken__username="lbaas",
        keystone_authtoken__password=PASSWORD, keystone_authtoken__project_name="service")
    with serving(settings) as (client, _):
        for project, allowed in (("beta", False), ("alpha", True)):
            token = {"X-Auth-Token": keystone.token(user_name(project, "member"), project)}
            response = client.post("/v2/lbaas/loadbalancers", headers=token, json={
                "loadbalancer": {"vip_subnet_id": SUBNET}})
            assert response.status_code == 201, response.text
            lb_id = response.json()["loadbalancer"]["id"]
            shown = functools.partial(client.get, f"/v2/lbaas/loadbalancers/{lb_id}",
                                      headers=token)
            wait_for(lambda shown=shown: shown().json()["loadbalancer"], "provisioning_status",
                     "ACTIVE")
            response = post_listener(client, lb_id, href, **token)
            if allowed:
                assert response.status_code == 201, response.text
            else:
                assert response.status_code == 400
                assert response.json()["faultstring"] == (
                    f"Could not retrieve certificate: {href} (Barbican has no secret or "
                    f"container {href} that the caller may read)")
