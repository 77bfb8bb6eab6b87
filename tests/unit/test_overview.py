"""The deployment overview (``lbaas status``, /metrics, /healthcheck) and what it says
needs attention, from rows as the services write them."""
from __future__ import annotations

import datetime as dt
import logging

from lbaas import constants as c
from lbaas.certs import pki, store
from lbaas.db import overview
from lbaas.db import services as presence
from lbaas.db.models import Amphora, AmphoraHealth, Host, Job, LoadBalancer, Service, utcnow

LONG_AGO = dt.timedelta(hours=1)


def _read(services) -> overview.Overview:
    with services.db.read() as session:
        return overview.read(session, services.settings)


def test_a_healthy_empty_deployment_needs_nothing_but_its_services(services):
    assert _read(services).attention == [
        "no worker is running: no change to a load balancer is applied",
        "no health-manager is running: no failed amphora is failed over",
        "no housekeeping is running: spares, cleanup and certificate rotation stop"]
    for kind in overview.REQUIRED_SERVICES:
        presence.stamp(services.db, kind, "host-a", None)
    view = _read(services)
    assert view.attention == []
    assert {s.kind for s in view.services if s.alive} == set(overview.REQUIRED_SERVICES)


def test_what_needs_attention_is_named_with_the_ids_and_what_to_do(services):
    for kind in overview.REQUIRED_SERVICES:
        presence.stamp(services.db, kind, "host-a", None)
    now = utcnow()
    settings = services.settings.model_copy(update={
        "house_keeping": services.settings.house_keeping.model_copy(
            update={"spare_amphora_pool_size": 2})})
    with services.db.write() as session:
        session.add_all([
            LoadBalancer(id="lb-error", provisioning_status=c.ERROR, operating_status=c.ERROR),
            LoadBalancer(id="lb-stuck", provisioning_status=c.PENDING_UPDATE,
                         operating_status=c.ONLINE, created_at=now - LONG_AGO,
                         updated_at=now - LONG_AGO),
            LoadBalancer(id="lb-busy", provisioning_status=c.PENDING_UPDATE,
                         operating_status=c.ONLINE),
            Host(name="compute-2", kind="compute", status="DOWN"),
            Host(name="compute-1", kind="compute", status="UP"),
            Amphora(id="amp-silent", status=c.ALLOCATED, load_balancer_id="lb-error",
                    cert_expiration=now + dt.timedelta(days=1)),
            Amphora(id="amp-stopped", status=c.FAILOVER_STOPPED),
            Amphora(id="amp-spare", status=c.READY,
                    cert_expiration=now + dt.timedelta(days=400)),
            AmphoraHealth(amphora_id="amp-silent", last_update=now - LONG_AGO),
            Job(action="create_load_balancer", payload={}, created_at=now - LONG_AGO),
            Job(action="delete_member", payload={}, attempts=2),
            Job(action="update_listener", payload={}),
        ])
    with services.db.read() as session:
        view = overview.read(session, settings)
    assert view.attention[0] == ("1 load balancer(s) in ERROR: `openstack loadbalancer list "
                                 "--provisioning-status ERROR`, then failover or delete them")
    assert view.attention[1:] == [
        "load balancer(s) PENDING_* for over 5 minutes: lb-stuck",
        "compute host(s) not UP: compute-2",
        f"amphora(e) silent for over {settings.health_manager.heartbeat_timeout:g} s: "
        "amp-silent",
        "amphora(e) in ERROR or FAILOVER_STOPPED: amp-stopped (`lbaas amphora failover-resume`"
        " resumes the stopped ones)",
        "spare pool 1/2",
        f"an amphora certificate expires at {now + dt.timedelta(days=1):%Y-%m-%d %H:%M} UTC "
        "and has not been rotated yet",
        "2 job(s) waiting over 60 s or retried: 1 (create_load_balancer), 2 (delete_member)",
    ]
    assert view.objects["load_balancer"][(c.PENDING_UPDATE, c.ONLINE)] == 2
    assert view.spares == 1


def test_a_service_that_stopped_stamping_is_listed_as_not_running(services):
    presence.stamp(services.db, "worker", "host-a", "job 3 (create_member) done in 0.2 s")
    with services.db.write() as session:
        row = session.get(Service, presence.service_id("worker", "host-a"))
        row.last_seen = utcnow() - LONG_AGO
    view = _read(services)
    [worker] = view.services
    assert (worker.alive, worker.activity) == (False, "job 3 (create_member) done in 0.2 s")
    assert view.attention[0].startswith("no worker is running")


def test_a_ca_close_to_its_end_is_logged_at_start_and_needs_attention(services, caplog):
    for kind in overview.REQUIRED_SERVICES:
        presence.stamp(services.db, kind, "host-a", None)
    paths = store.resolve(services.settings)
    paths.ca_certificate.parent.mkdir(mode=0o700, parents=True)
    ending = pki.create_ca(store.SERVER_CA_NAME, validity=dt.timedelta(days=30))
    store.write_private(paths.ca_private_key, pki.private_key_pem(ending.private_key))
    store.write_private(paths.ca_certificate, pki.certificate_pem(ending.certificate))

    store.ensure(services.settings)  # as each service does when it starts

    end = ending.certificate.not_valid_after_utc
    warnings = [record.getMessage() for record in caplog.records
                if record.levelno >= logging.WARNING]
    # The client CA, generated now, has five years to go.
    assert warnings == [f"the server CA expires at {end:%Y-%m-%d %H:%M} UTC: plan its "
                        "replacement (see `lbaas certs show`)"]
    view = _read(services)
    assert view.attention == [
        f"the server CA expires at {end:%Y-%m-%d %H:%M} UTC: plan its replacement"]
    assert set(view.ca_expiry) == {"server CA", "client CA"}
