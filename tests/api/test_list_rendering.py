"""The load balancer list and show render their bodies themselves
(lbaas.api.common.rendered): their bytes must be those FastAPI would have sent through
the route's response model."""
from __future__ import annotations

from pydantic import TypeAdapter

from lbaas.api.load_balancer import LOAD_BALANCER
from tests.helpers.api import create_lb, wait_lb_active

OTHER_SUBNET = "2f0d1c3e-7a4b-4c59-9e61-5d8b7a6c4f21"


def _through_the_model(body: dict, root: object = LOAD_BALANCER.list_root) -> bytes:
    model = TypeAdapter(root)
    return model.dump_json(model.validate_python(body), exclude_unset=True)


def test_the_list_is_what_the_response_model_would_send(client):
    plain = create_lb(client)
    odd = create_lb(client, name="Zürich \"edge\" \\ \t/ ✓ \u2028", description="ünï\ncode",
                    tags=["β", "a b"], additional_vips=[{"subnet_id": OTHER_SUBNET}],
                    admin_state_up=False)
    for port in (80, 8080):
        listener = client.post("/v2/lbaas/listeners", json={"listener": {
            "loadbalancer_id": odd["id"], "protocol": "HTTP", "protocol_port": port}})
        assert listener.status_code == 201, listener.text
        wait_lb_active(client, odd["id"])
    for _ in range(2):
        pool = client.post("/v2/lbaas/pools", json={"pool": {
            "loadbalancer_id": odd["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}})
        assert pool.status_code == 201, pool.text
        wait_lb_active(client, odd["id"])

    for query in ("", "?limit=1", "?fields=name,tags,listeners", "?tags=β",
                  "?sort=name:desc", "?page_reverse=true&limit=1&marker=" + odd["id"]):
        response = client.get("/v2/lbaas/loadbalancers" + query)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.content == _through_the_model(response.json()), query

    for query in ("", "?fields=name,tags,listeners,pools,additional_vips"):
        response = client.get(f"/v2/lbaas/loadbalancers/{odd['id']}{query}")
        assert response.status_code == 200
        assert response.content == _through_the_model(response.json(),
                                                       LOAD_BALANCER.response_root), query

    listed = {lb["id"]: lb for lb in client.get("/v2/lbaas/loadbalancers").json()["loadbalancers"]}
    assert set(listed) == {plain["id"], odd["id"]}
    assert listed[odd["id"]]["name"] == "Zürich \"edge\" \\ \t/ ✓ \u2028"
    assert len(listed[odd["id"]]["listeners"]) == 2 and len(listed[odd["id"]]["pools"]) == 2
    for lb in (plain, odd):  # a show reads the same rows as the list
        assert client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"] \
            == listed[lb["id"]]
