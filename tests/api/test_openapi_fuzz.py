"""Schemathesis fuzzes every operation of the service's own OpenAPI document: no 5xx, ever.

The app runs in-process with its worker, as ``lbaas up`` runs it. Each operation gets a
bounded number of generated requests, so the whole run stays well under two minutes:
valid and (where there is a body) invalid bodies, random path ids and ids of real
objects (so requests get past the 404), list parameters on every GET, and poisoned
requests (a lone surrogate in a body, a thousand tags in a filter). Operations
run as pytest subtests (schemathesis' own pytest plugin does not support this pytest),
each reported under its method and path; deletions run last. 501 is no fault: it is
upstream's answer when the provider does not support a requested option.
"""
from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode
from schemathesis.schemas import APIOperation

from tests.helpers import PROJECT
from tests.helpers.api import (
    create_lb,
    create_listener,
    create_member,
    create_pool,
    wait_lb_active,
)

MAX_EXAMPLES = 30
FUZZ_SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))
NOT_IMPLEMENTED = 501
LIST_PARAMETERS = ("limit", "marker", "page_reverse", "sort", "sort_key", "sort_dir", "fields",
                   "tags", "tags-any", "not-tags", "not-tags-any", "id", "name",
                   "admin_state_up", "provisioning_status", "protocol_port", "weight",
                   "created_at", "project_id", "cascade", "position", "action", "compare_type")
TAG_PARAMETERS = ("tags", "tags-any", "not-tags", "not-tags-any")
LIST_VALUES = ("true", "false", "0", "-1", "1", "infinite", "asc", "desc", "id", "name:desc",
               "created_at:asc,id", "ACTIVE", "", " ", "%", "\x00", "1e400", "9" * 30)


def real_objects(client: TestClient) -> dict[str, str]:
    """A whole tree to aim path parameters at, keyed by path parameter name."""
    lb = create_lb(client, name="fuzzed")
    listener = create_listener(client, lb["id"])
    pool = create_pool(client, lb["id"], listener_id=listener["id"])
    member = create_member(client, pool["id"], "192.0.2.10")
    monitor = client.post("/v2/lbaas/healthmonitors", json={"healthmonitor": {
        "pool_id": pool["id"], "type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 3}})
    assert monitor.status_code == 201, monitor.text
    wait_lb_active(client, lb["id"])
    policy = client.post("/v2/lbaas/l7policies", json={"l7policy": {
        "listener_id": listener["id"], "action": "REDIRECT_TO_POOL", "redirect_pool_id": pool["id"],
        "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"}]}})
    assert policy.status_code == 201, policy.text
    wait_lb_active(client, lb["id"])
    return {"lb_id": lb["id"], "listener_id": listener["id"], "pool_id": pool["id"],
            "member_id": member["id"], "hm_id": monitor.json()["healthmonitor"]["id"],
            "l7policy_id": policy.json()["l7policy"]["id"],
            "l7rule_id": policy.json()["l7policy"]["rules"][0]["id"],
            "project_id": PROJECT, "provider": "amphora"}


def list_queries(ids: dict[str, str]) -> st.SearchStrategy[dict[str, object]]:
    """Query strings as clients send them to collections: known and unknown keys, odd values."""
    value = st.one_of(st.sampled_from(LIST_VALUES + tuple(ids.values())), st.text(max_size=12),
                      st.integers().map(str))
    return st.dictionaries(st.sampled_from(LIST_PARAMETERS), st.one_of(value, st.lists(value, max_size=3)),
                           max_size=4)


def cases(operation: APIOperation, ids: dict[str, str]) -> st.SearchStrategy[schemathesis.Case]:
    modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if len(operation.body) else [])
    known = {p.name: ids[p.name] for p in operation.path_parameters if p.name in ids}
    strategies = [operation.as_strategy(mode) for mode in modes]
    if known:
        strategies += [operation.as_strategy(mode, path_parameters=known) for mode in modes]
    return st.one_of(strategies)


LONE_SURROGATE = "\ud800"
MANY_TAGS = ",".join(f"tag{n}" for n in range(1000))


def poisoned(value: object, which: int) -> tuple[object, int]:
    """``value`` with its ``which``-th string (depth first, keys too) replaced by a lone
    surrogate; the count of strings left to skip when there are fewer."""
    if isinstance(value, str):
        return (LONE_SURROGATE, -1) if which == 0 else (value, which - 1)
    if isinstance(value, list):
        items = []
        for item in value:
            item, which = poisoned(item, which)
            items.append(item)
        return items, which
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            key, which = poisoned(key, which)
            item, which = poisoned(item, which)
            result[key] = item
        return result, which
    return value, which


POISONS = st.one_of(st.none(), st.integers(min_value=0, max_value=30),
                    st.sampled_from(TAG_PARAMETERS))


def send_poisoned(client: TestClient, case: schemathesis.Case, body: object) -> Any:
    """The request of ``case`` with ``body`` as JSON text (ASCII, so a lone surrogate goes
    as ``\\ud800``: schemathesis itself cannot encode one)."""
    return client.request(case.method, case.formatted_path, params=case.query,
                          content=json.dumps(body).encode(),
                          headers={"Content-Type": "application/json"})


def assert_no_server_error(client: TestClient, operation: APIOperation,
                           ids: dict[str, str]) -> None:
    """Send generated requests for ``operation``; fail on the first 5xx answer.

    Some get poisoned: a lone surrogate in place of one string of the body (JSON can
    carry it, no database can), or a thousand values in a tag filter.
    """

    @FUZZ_SETTINGS
    @given(case=cases(operation, ids), query=list_queries(ids), poison=POISONS)
    def send(case: schemathesis.Case, query: dict[str, object], poison: int | str | None) -> None:
        if operation.method.upper() == "GET":
            case.query = {**(case.query or {}), **query}
            if isinstance(poison, str):
                case.query[poison] = MANY_TAGS
        elif isinstance(poison, int) and isinstance(case.body, (dict, list)):
            body, left = poisoned(case.body, poison)
            if left < 0:
                response = send_poisoned(client, case, body)
                assert response.status_code < 500 or response.status_code == NOT_IMPLEMENTED, (
                    f"{response.status_code} {response.text}\n{case.method} "
                    f"{case.formatted_path} {json.dumps(body)}")
                return
        response = case.call()
        assert response.status_code < 500 or response.status_code == NOT_IMPLEMENTED, (
            f"{response.status_code} {response.text}\nreproduce: {case.as_curl_command()}")

    send()


def test_no_generated_request_gets_a_server_error(client: TestClient, subtests: pytest.Subtests):
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = {(method.upper(), path) for path, item in client.app.openapi()["paths"].items()
                  for method in item}
    assert {(op.method.upper(), op.path) for op in operations} == documented
    ids = real_objects(client)
    for operation in sorted(operations, key=lambda op: op.method.upper() == "DELETE"):
        with subtests.test(msg=operation.label):
            assert_no_server_error(client, operation, ids)
