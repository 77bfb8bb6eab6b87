"""/healthcheck and /metrics under Keystone: what an anonymous caller, a project member
and an admin get, from the API's own address and from elsewhere."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lbaas import config, service
from lbaas.api.app import create_app
from tests.helpers import NOOP_DRIVERS
from tests.helpers.keystone import Keystone, keystone_sections, user_name

# One Keystone for the whole run: every module using it runs on the same xdist worker.
pytestmark = pytest.mark.xdist_group("keystone")

ELSEWHERE = ("198.51.100.7", 50000)


@pytest.fixture
def app(keystone: Keystone, tmp_path: Path) -> Iterator[object]:
    """An API process with auth_strategy = keystone, as an in-process application so
    that a request can come from any address."""
    conf = tmp_path / "lbaas.conf"
    conf.write_text("[api_settings]\nauth_strategy = keystone\n" + keystone_sections(keystone))
    settings = config.load(conf, environ={"LBAAS__DEFAULT__state_path": str(tmp_path),
                                          **NOOP_DRIVERS})
    services = service.open_services(settings)
    try:
        yield create_app(services.api_state)
    finally:
        services.db.dispose()


def test_metrics_from_elsewhere_need_an_admin_token(app, keystone):
    with TestClient(app, client=ELSEWHERE) as stranger:
        refused = stranger.get("/metrics")
        assert refused.status_code == 401
        assert refused.json()["faultcode"] == "Client"
        assert "metrics_allowed_cidrs" in refused.json()["faultstring"]
        member = keystone.token(user_name("alpha", "member"), "alpha")
        assert stranger.get("/metrics", headers={"X-Auth-Token": member}).status_code == 403
        scraped = stranger.get("/metrics", headers={"X-Auth-Token": keystone.admin_token})
        assert scraped.status_code == 200 and "lbaas_service_up" in scraped.text
        assert stranger.get("/metrics", headers={"X-Auth-Token": "bogus"}).status_code == 401
    with TestClient(app, client=("127.0.0.1", 50000)) as local:
        assert local.get("/metrics").status_code == 200


def test_healthcheck_details_are_for_admins(app, keystone):
    with TestClient(app, client=ELSEWHERE) as http:
        anonymous = http.get("/healthcheck", headers={"Accept": "application/json"})
        assert anonymous.json() == {"detailed": False, "reasons": ["OK"]}
        member = keystone.token(user_name("alpha", "member"), "alpha")
        as_member = http.get("/healthcheck", headers={"Accept": "application/json",
                                                      "X-Auth-Token": member})
        assert as_member.json()["detailed"] is False
        as_admin = http.get("/healthcheck", headers={"Accept": "application/json",
                                                     "X-Auth-Token": keystone.admin_token})
        assert as_admin.json()["detailed"] is True
        assert http.get("/healthcheck").text == "OK"
