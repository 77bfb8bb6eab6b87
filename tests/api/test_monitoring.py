"""``/healthcheck`` (upstream's, oslo.middleware's shape) and ``/metrics`` (Prometheus)."""
from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from lbaas import config, service
from lbaas.api.app import create_app
from lbaas.db import services as presence
from lbaas.db.models import Amphora, ListenerStatistics
from tests.helpers import NOOP_DRIVERS, PROJECT
from tests.helpers.api import create_lb, wait_active

LOOPBACK = ("127.0.0.1", 40000)
ROOT = Path(__file__).resolve().parents[2]


def _client(services: service.Services, peer: tuple[str, int] = LOOPBACK,
             **headers: str) -> TestClient:
    return TestClient(create_app(services.api_state), client=peer, headers=headers)


def _with(services: service.Services, **sections: dict[str, object]) -> service.Services:
    """The same database under other settings (as another API process would run)."""
    settings = services.settings.model_copy(update={
        name: getattr(services.settings, name).model_copy(update=values)
        for name, values in sections.items()})
    return dataclasses.replace(services, settings=settings)


def test_healthcheck_answers_ok_in_text_json_html_and_head(services):
    """Under noauth every caller is an admin: the JSON and HTML answers have details
    (tests/rbac has the anonymous caller of a Keystone deployment)."""
    with _client(services) as anonymous:
        text = anonymous.get("/healthcheck")
        assert (text.status_code, text.text) == (200, "OK")
        assert text.headers["content-type"].startswith("text/plain")
        body = anonymous.get("/healthcheck", headers={"Accept": "application/json"}).json()
        assert body["detailed"] is True
        assert body["reasons"][0] == {"class": "OctaviaDBCheckResult", "reason": "OK",
                                      "details": ""}
        page = anonymous.get("/healthcheck", headers={"Accept": "text/html"})
        assert page.headers["content-type"].startswith("text/html")
        assert "<TD>OK</TD>" in page.text and "Healthcheck Status" in page.text
        assert anonymous.head("/healthcheck").status_code == 204


def test_healthcheck_details_name_each_check_and_the_services(services):
    presence.stamp(services.db, "worker", "host-a", "job 1 (create) done in 0.1 s")
    with _client(services) as anonymous:
        body = anonymous.get("/healthcheck", headers={"Accept": "application/json"}).json()
    assert body["detailed"] is True
    kinds = {reason["class"]: reason for reason in body["reasons"]}
    assert kinds["OctaviaDBCheckResult"]["reason"] == "OK"
    assert "worker on host-a" in kinds["LbaasServicesCheckResult"]["details"]
    assert body["threads"] and body["python_version"]


def test_healthcheck_reports_a_database_it_cannot_read(services, tmp_path):
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not an SQLite database" * 100)
    other = _with(services, database={"connection": f"sqlite:///{broken}"})
    other = dataclasses.replace(other, db=type(services.db)(other.settings.database_url))
    with _client(other) as anonymous:
        text = anonymous.get("/healthcheck")
        assert (text.status_code, text.text) == (503, "The Octavia database is unavailable.")
        body = anonymous.get("/healthcheck", headers={"Accept": "application/json"}).json()
        assert body["reasons"][0]["reason"] == "The Octavia database is unavailable."
        assert "Database health check failed" in body["reasons"][0]["details"]
        assert anonymous.head("/healthcheck").status_code == 503


def test_services_check_fails_until_a_worker_and_health_manager_run(services):
    checked = _with(services, healthcheck={"backends": ["octavia_db_check",
                                                        "lbaas_services_check"]},
                    api_settings={"healthcheck_refresh_interval": 0})
    with _client(checked) as anonymous:
        down = anonymous.get("/healthcheck")
        assert (down.status_code, down.text) == (
            503, "No worker and no health-manager is running.")
        presence.stamp(services.db, "worker", "host-a", None)
        presence.stamp(services.db, "health-manager", "host-a", None)
        assert anonymous.get("/healthcheck").text == "OK"
        presence.forget(services.db, "worker", "host-a")
        assert anonymous.get("/healthcheck").text == "No worker is running."


def test_healthcheck_results_are_cached_for_the_refresh_interval(services):
    cached = _with(services, healthcheck={"backends": ["lbaas_services_check"]},
                   api_settings={"healthcheck_refresh_interval": 3600})
    with _client(cached) as anonymous:
        assert anonymous.get("/healthcheck").status_code == 503
        presence.stamp(services.db, "worker", "host-a", None)
        presence.stamp(services.db, "health-manager", "host-a", None)
        assert anonymous.get("/healthcheck").status_code == 503


def test_disabled_endpoints_are_not_found(services):
    off = _with(services, api_settings={"healthcheck_enabled": False, "metrics_enabled": False})
    with _client(off) as anonymous:
        for path in ("/healthcheck", "/metrics"):
            response = anonymous.get(path)
            assert response.status_code == 404
            assert response.json()["faultcode"] == "Client"


def _families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {family.name: [(sample.labels, sample.value) for sample in family.samples]
            for family in text_string_to_metric_families(text)}


@pytest.fixture
def load_balancer(client: TestClient) -> Iterator[dict[str, str]]:
    """An ACTIVE load balancer with an HTTP listener and a member (no-op drivers)."""
    lb = create_lb(client)
    listener = client.post("/v2/lbaas/listeners", json={"listener": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}}).json()
    wait_active(client, f"/v2/lbaas/listeners/{listener['listener']['id']}", "listener")
    pool = client.post("/v2/lbaas/pools", json={"pool": {
        "listener_id": listener["listener"]["id"], "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN"}}).json()["pool"]
    wait_active(client, f"/v2/lbaas/pools/{pool['id']}", "pool")
    member = client.post(f"/v2/lbaas/pools/{pool['id']}/members", json={"member": {
        "address": "192.0.2.10", "protocol_port": 8080}}).json()["member"]
    wait_active(client, f"/v2/lbaas/pools/{pool['id']}/members/{member['id']}", "member")
    yield {"lb": lb["id"], "listener": listener["listener"]["id"], "member": member["id"]}


def test_metrics_show_the_deployment_flows_and_listener_traffic(client, services,
                                                                load_balancer):
    with services.db.write() as session:
        amphora = session.scalars(select(Amphora).where(
            Amphora.load_balancer_id == load_balancer["lb"])).one()
        session.add(ListenerStatistics(listener_id=load_balancer["listener"],
                                       amphora_id=amphora.id, bytes_in=100, bytes_out=2000,
                                       active_connections=3, total_connections=7,
                                       request_errors=1))
    with _client(services) as scraper:
        response = scraper.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = _families(response.text)
    listener = {"project_id": PROJECT, "loadbalancer_id": load_balancer["lb"],
                "listener_id": load_balancer["listener"], "protocol": "HTTP", "port": "80"}
    assert (listener, 3.0) in found["lbaas_listener_active_connections"]
    assert (listener, 7.0) in found["lbaas_listener_connections"]
    assert (listener, 2000.0) in found["lbaas_listener_bytes_out"]
    assert (listener, 1.0) in found["lbaas_listener_request_errors"]
    assert ({"kind": "load_balancer", "provisioning_status": "ACTIVE",
             "operating_status": "OFFLINE"}, 1.0) in found["lbaas_objects"]
    members = found["lbaas_member_up"]
    assert [(labels["member_id"], value) for labels, value in members] == [
        (load_balancer["member"], 1.0)]
    flows = {(labels["action"], labels["outcome"]): value
             for labels, value in found["lbaas_flows"]}
    assert flows[("create_load_balancer", "done")] >= 1
    counts = {labels["action"]: value for labels, value in found["lbaas_flow_duration_seconds"]
              if labels.get("le") == "+Inf"}
    assert counts["create_load_balancer"] == flows[("create_load_balancer", "done")]
    assert ({"status": "ALLOCATED", "role": "STANDALONE"}, 1.0) in found["lbaas_amphorae"]


def test_metrics_speak_openmetrics_when_asked(services):
    with _client(services) as scraper:
        response = scraper.get("/metrics", headers={
            "Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


def test_an_accept_header_prometheus_cannot_read_gets_the_text_format(services):
    with _client(services) as scraper:
        malformed = scraper.get("/metrics", headers={
            "Accept": 'application/openmetrics-text; version="\n"'})
    assert malformed.status_code == 200
    assert malformed.headers["content-type"].startswith("text/plain; version=0.0.4")


def test_settings_defaults_serve_both(settings):
    assert settings.api_settings.healthcheck_enabled and settings.api_settings.metrics_enabled
    assert config.load(environ=NOOP_DRIVERS).healthcheck.backends == ["octavia_db_check"]


def test_the_grafana_dashboard_asks_only_for_metrics_we_export(client, services,
                                                             load_balancer):
    with _client(services) as scraper:
        text = scraper.get("/metrics").text
    exported = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            exported |= ({name, f"{name}_bucket", f"{name}_sum", f"{name}_count"}
                         if kind == "histogram" else {name})
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    asked = {name for panel in dashboard["panels"] for target in panel["targets"]
             for name in re.findall(r"\blbaas_[a-z_]+", target["expr"])}
    assert asked and asked <= exported, asked - exported
