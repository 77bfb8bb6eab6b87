"""Housekeeping with real amphorae: the spare pool and certificate rotation."""
from __future__ import annotations

import datetime as dt
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, select

from lbaas import constants, service
from lbaas.amphora.agent.haproxy import HaproxyPaths
from lbaas.certs import store, tls
from lbaas.controller.housekeeping import HouseKeeping, spare_pool
from lbaas.controller.tasks.amphora import SPARE
from lbaas.db.models import Amphora, LoadBalancer, utcnow
from lbaas.drivers import Drivers
from lbaas.drivers.compute.netns import namespace_of
from tests.helpers.api import wait_lb_active
from tests.helpers.dataplane import Topology, balanced, build, remove_leftovers, wait_until
from tests.helpers.service import clean_environment, lbaas_command

pytestmark = pytest.mark.root


@pytest.fixture
def housekeeping(dataplane, services: service.Services,
                 drivers: Drivers) -> Iterator[HouseKeeping]:
    """Housekeeping running beside the test's worker; its spares are removed afterwards."""
    with service.running_housekeeping(services, drivers) as keeper:
        try:
            yield keeper
        finally:
            services.settings.house_keeping.spare_amphora_pool_size = 0
    spare_pool.check(keeper.context)


def _spares(services: service.Services) -> list[Amphora]:
    with services.db.read() as session:
        return list(session.scalars(select(Amphora).where(*SPARE)))


def _serving(services: service.Services, lb_id: str) -> list[Amphora]:
    with services.db.read() as session:
        return list(session.scalars(select(Amphora).where(
            Amphora.load_balancer_id == lb_id, Amphora.status == constants.ALLOCATED)))


def _amphora_of(services: service.Services, lb_id: str) -> Amphora:
    (amphora,) = _serving(services, lb_id)
    return amphora


def _namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


@pytest.fixture
def spare_settings(services: service.Services) -> None:
    keeping = services.settings.house_keeping
    keeping.spare_amphora_pool_size, keeping.spare_check_interval = 2, 1


def test_single_create_takes_a_ready_spare_and_the_pool_refills(
        spare_settings, housekeeping, dataplane, topology: Topology, services):
    wait_until(lambda: len(_spares(services)) == 2)
    spares = {spare.id: spare for spare in _spares(services)}
    assert all(namespace_of(amphora_id) in _namespaces() for amphora_id in spares)
    assert all(spare.cert_expiration and spare.lb_network_ip for spare in spares.values())

    made = build(dataplane, topology)
    amphora = _amphora_of(services, made["lb"]["id"])
    assert amphora.id in spares
    assert amphora.role == constants.ROLE_STANDALONE
    assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}

    wait_until(lambda: len(_spares(services)) == 2)
    assert amphora.id not in {spare.id for spare in _spares(services)}


def test_failover_takes_a_spare(spare_settings, housekeeping, dataplane, topology, services):
    made = build(dataplane, topology)
    lb_id = made["lb"]["id"]
    old = _amphora_of(services, lb_id)
    wait_until(lambda: len(_spares(services)) == 2)
    spares = {spare.id for spare in _spares(services)}

    response = dataplane.put(f"/v2/lbaas/loadbalancers/{lb_id}/failover")
    assert response.status_code == 202, response.text
    wait_until(lambda: [a.id for a in _serving(services, lb_id)] not in ([], [old.id]))
    wait_lb_active(dataplane, lb_id)
    assert _amphora_of(services, lb_id).id in spares
    assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}
    assert namespace_of(old.id) not in _namespaces()


def _served_expiry(services: service.Services, amphora: Amphora) -> dt.datetime:
    """The expiry of the certificate the agent presents to a new connection."""
    paths = store.ensure(services.settings)
    context = tls.controller_context(paths.client_cert, paths.server_ca, amphora.id)
    port = services.settings.haproxy_amphora.bind_port
    with context.wrap_socket(socket.create_connection((amphora.lb_network_ip, port),
                                                      timeout=5)) as stream:
        seconds = ssl.cert_time_to_seconds(stream.getpeercert()["notAfter"])
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).replace(tzinfo=None)


def _haproxy_pid(services: service.Services, amphora: Amphora, lb_id: str) -> str:
    directory = services.settings.haproxy_amphora.base_path / amphora.id
    return HaproxyPaths(directory, lb_id).pid.read_text().split()[0]


def _short_certificates(services: service.Services, validity: int, buffer: int) -> None:
    services.settings.certificates.cert_validity_time = validity
    keeping = services.settings.house_keeping
    keeping.cert_expiry_buffer, keeping.cert_interval = buffer, 1
    service.check(services.settings)  # still a configuration lbaas accepts


def test_short_lived_certificates_are_rotated_before_expiry_and_the_amphora_stays_managed(
        dataplane, topology: Topology, services, drivers):
    # 20 s certificates, rotated when less than 14 s remain, looked at every second (the
    # margin lets a slow host build the load balancer before the first one expires).
    _short_certificates(services, validity=20, buffer=14)
    made = build(dataplane, topology)
    lb_id = made["lb"]["id"]
    amphora = _amphora_of(services, lb_id)
    first_expiry = amphora.cert_expiration
    assert _served_expiry(services, amphora) == first_expiry
    pid = _haproxy_pid(services, amphora, lb_id)

    with service.running_housekeeping(services, drivers):
        wait_until(lambda: _amphora_of(services, lb_id).cert_expiration > first_expiry)
        rotated = _amphora_of(services, lb_id)
        assert utcnow() < first_expiry  # rotated before the first certificate expired
        assert _served_expiry(services, rotated) == rotated.cert_expiration
        assert _haproxy_pid(services, amphora, lb_id) == pid  # haproxy was not touched
        assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}
        # Past the first certificate's expiry: the controller still manages the amphora.
        wait_until(lambda: utcnow() > first_expiry + dt.timedelta(seconds=1), timeout=30)
        drivers.amphora.forget(amphora.id)  # no connection opened under the old certificate
        response = dataplane.put(f"/v2/lbaas/listeners/{made['listener']['id']}",
                                 json={"listener": {"connection_limit": 1000}})
        assert response.status_code == 200, response.text
        assert wait_lb_active(dataplane, lb_id)["provisioning_status"] == "ACTIVE"
        current = _amphora_of(services, lb_id)
        assert _served_expiry(services, current) == current.cert_expiration > utcnow()


def test_without_rotation_an_expired_certificate_locks_the_controller_out(
        dataplane, topology: Topology, services, drivers):
    """The control for the test above: what rotation prevents does happen without it."""
    _short_certificates(services, validity=6, buffer=4)
    made = build(dataplane, topology)
    lb_id = made["lb"]["id"]
    expiry = _amphora_of(services, lb_id).cert_expiration
    time.sleep(max(0.0, (expiry - utcnow()).total_seconds()) + 1.5)
    drivers.amphora.forget(_amphora_of(services, lb_id).id)
    response = dataplane.put(f"/v2/lbaas/listeners/{made['listener']['id']}",
                             json={"listener": {"connection_limit": 1000}})
    assert response.status_code == 200, response.text
    wait_until(lambda: dataplane.get(f"/v2/lbaas/listeners/{made['listener']['id']}")
               .json()["listener"]["provisioning_status"] == "ERROR")


def test_an_amphora_whose_certificate_expired_unrotated_is_replaced(
        dataplane, topology: Topology, services, drivers):
    """Housekeeping was not running while the certificate expired: the controller is locked
    out of that agent, so the next pass fails the amphora over instead of leaving it so."""
    _short_certificates(services, validity=8, buffer=5)
    made = build(dataplane, topology)
    lb_id = made["lb"]["id"]
    old = _amphora_of(services, lb_id)
    time.sleep(max(0.0, (old.cert_expiration - utcnow()).total_seconds()) + 1.5)
    drivers.amphora.forget(old.id)  # no connection opened under the old certificate

    with service.running_housekeeping(services, drivers):
        wait_until(lambda: [a.id for a in _serving(services, lb_id)] not in ([], [old.id]),
                   timeout=60)
        assert wait_lb_active(dataplane, lb_id)["provisioning_status"] == "ACTIVE"
        replacement = _amphora_of(services, lb_id)
        assert _served_expiry(services, replacement) > utcnow()
        assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}
    assert namespace_of(old.id) not in _namespaces()


def _lbaas_down_all(services: service.Services) -> subprocess.CompletedProcess[str]:
    """``lbaas down --all --yes`` run as an operator would, on this test's settings."""
    settings = services.settings
    env = {**clean_environment(),
           "LBAAS__DEFAULT__state_path": str(settings.DEFAULT.state_path),
           "LBAAS__haproxy_amphora__base_path": str(settings.haproxy_amphora.base_path),
           "LBAAS__networking__lb_network_cidr": settings.networking.lb_network_cidr,
           "LBAAS__networking__lb_network_bridge": settings.networking.lb_network_bridge}
    return subprocess.run([str(lbaas_command()), "down", "--all", "--yes"], env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)


def test_down_all_removes_spares_and_the_bridge_once_lbaas_is_stopped(services, drivers):
    keeping = services.settings.house_keeping
    keeping.spare_amphora_pool_size, keeping.spare_check_interval = 1, 1
    bridge = services.settings.networking.lb_network_bridge
    try:
        with service.running_worker(services, drivers), \
                service.running_housekeeping(services, drivers):
            wait_until(lambda: len(_spares(services)) == 1, timeout=60)
            refused = _lbaas_down_all(services)
            assert refused.returncode == 1
            assert refused.stderr.startswith("error: lbaas still runs (")
        [spare] = _spares(services)
        assert namespace_of(spare.id) in _namespaces()
        with services.db.write() as session:  # a load balancer's amphora stops it too
            session.add(LoadBalancer(id="lb-down", provisioning_status=constants.ACTIVE,
                                     operating_status=constants.ONLINE))
            session.add(Amphora(id="amp-down", status=constants.ALLOCATED,
                                load_balancer_id="lb-down"))
        refused = _lbaas_down_all(services)
        assert refused.returncode == 1
        assert "1 amphora(e) still serve load balancers" in refused.stderr
        with services.db.write() as session:
            session.execute(delete(Amphora).where(Amphora.id == "amp-down"))
            session.execute(delete(LoadBalancer).where(LoadBalancer.id == "lb-down"))
        done = _lbaas_down_all(services)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"removed 1 spare amphora(e) and the bridge {bridge}." in done.stdout + done.stderr
        assert namespace_of(spare.id) not in _namespaces()
        assert subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode
        assert _spares(services) == []
    finally:
        remove_leftovers(services)
