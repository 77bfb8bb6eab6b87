"""Upstream's JSON-only rules: 406 when Accept rules JSON out; a ``.json`` suffix is ignored."""
from __future__ import annotations

from tests.helpers.api import create_lb


def test_client_that_accepts_only_html_gets_406_in_api_wg_format(api_only):
    response = api_only.get("/v2/lbaas/loadbalancers", headers={"Accept": "text/html"})
    assert response.status_code == 406
    request_id = response.headers["x-openstack-request-id"]
    assert request_id.startswith("req-")
    assert response.json() == {"errors": [{"status": 406, "title": "Not Acceptable",
                                           "detail": "Only application/json is supported.",
                                           "request_id": request_id}]}


def test_client_that_accepts_json_among_others_is_served(api_only):
    response = api_only.get("/v2/lbaas/loadbalancers",
                            headers={"Accept": "text/html;q=0.9, application/json;q=0.8"})
    assert response.status_code == 200


def test_json_suffix_on_a_resource_path_is_ignored(client):
    lb = create_lb(client, name="suffixed")
    response = client.get(f"/v2/lbaas/loadbalancers/{lb['id']}.json")
    assert response.status_code == 200
    assert response.json()["loadbalancer"]["name"] == "suffixed"


def test_openapi_document_keeps_its_json_suffix(api_only):
    response = api_only.get("/openapi.json")
    assert response.status_code == 200
    assert "paths" in response.json()
