"""A real Keystone (the ``keystone`` package, SQLite, loopback) and ``lbaas up`` checking
its tokens, with users holding each of Keystone's default roles and each of upstream's
deprecated load-balancer roles in two projects.

Keystone lives in its own virtualenv (``scripts/keystone-venv``, made on first use) so
that its pins never meet ours. Everything runs once per session and is removed after.
"""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.helpers.keystone import (
    ADMIN_PASSWORD,
    KEYSTONE_VENV,
    PASSWORD,
    PROJECTS,
    ROLES,
    ROOT,
    SERVER_SCRIPT,
    Keystone,
    KeystoneService,
    issue_token,
    keystone_service,
    user_name,
    write_keystone_config,
)
from tests.helpers.service import (
    clean_environment,
    free_port,
    running,
    stop,
    wait_until_answering,
)


@pytest.fixture(scope="session")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystone]:
    """Keystone bootstrapped on SQLite (admin/admin) and served on a free loopback port."""
    subprocess.run(["bash", str(ROOT / "scripts" / "keystone-venv")], check=True, timeout=900,
                   stdin=subprocess.DEVNULL)
    workdir = tmp_path_factory.mktemp("keystone")
    config, log = write_keystone_config(workdir), workdir / "keystone.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}/v3"
    with open(log, "wb") as out:
        process = subprocess.Popen([str(KEYSTONE_VENV / "bin" / "python"), str(SERVER_SCRIPT),
                                    str(config), str(port), ADMIN_PASSWORD], stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=clean_environment(), start_new_session=True)
    try:
        wait_until_answering(url, process, "Keystone", log)
        ks = Keystone(url=url, admin_token=issue_token(url, "admin", "admin", ADMIN_PASSWORD))
        for project in (*PROJECTS, "service"):
            ks.project_ids[project] = ks.create("project", name=project, domain_id="default")
        # The service user keystonemiddleware validates tokens as.
        ks.add_user("lbaas", "service", ("service",))
        for project in PROJECTS:
            for role in ROLES:
                ks.add_user(user_name(project, role), project, (role,))
        # A reader of the whole system (the bootstrap admin is the system's admin).
        reader = ks.create("user", name="system-reader", password=PASSWORD, domain_id="default")
        ks.request("PUT", f"/system/users/{reader}/roles/{ks.role_id('reader')}")
        yield ks
    finally:
        stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def lbaas_keystone(keystone: Keystone, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeystoneService]:
    """``lbaas up`` with auth_strategy = keystone and upstream's default policy, in the
    catalog as ``load-balancer`` (and as ``network``, for the registry's subnets the
    client looks up)."""
    service = keystone_service(keystone, tmp_path_factory.mktemp("lbaas-keystone"))
    for kind, name in (("load-balancer", "octavia"), ("network", "lbaas-network-registry")):
        service_id = keystone.create("service", type=kind, name=name)
        keystone.create("endpoint", service_id=service_id, interface="public", url=service.url,
                        region_id="RegionOne")
    with running(service):
        yield service


@pytest.fixture(scope="session")
def lbaas_keystone_legacy(keystone: Keystone,
                          tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeystoneService]:
    """The same with ``[oslo_policy] enforce_new_defaults = false``: the deprecated
    load-balancer_* roles count as well (not in the catalog; reached by its URL)."""
    service = keystone_service(keystone, tmp_path_factory.mktemp("lbaas-keystone-legacy"),
                               "[oslo_policy]\nenforce_new_defaults = false\n")
    with running(service):
        yield service
