"""Every successful JSON response a test receives must be what ``/openapi.json`` says.

The API's response models are derived from each resource's declaration
(lbaas.api.resource); this check is what keeps the published document true.
"""
from __future__ import annotations

import re
from functools import cached_property
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator


class Document:
    """One OpenAPI document, with its paths as patterns and a validator per response."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        # Literal paths before templated ones: ``/loadbalancers/stats`` is not an lb id.
        self.routes = sorted(
            ((re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", path) + "$"), path)
             for path in document["paths"]), key=lambda item: item[1].count("{"))
        self.validators: dict[tuple[str, str, int], Draft202012Validator | None] = {}

    def template(self, url_path: str) -> str | None:
        """The document's path that ``url_path`` is an instance of."""
        return next((path for pattern, path in self.routes if pattern.match(url_path)), None)

    def response_schema(self, path: str, method: str, status: int) -> dict[str, Any] | None:
        operation = self.document["paths"][path].get(method, {})
        documented: dict[str, Any] = operation.get("responses", {}).get(str(status), {})
        schema: dict[str, Any] | None = documented.get("content", {}).get(
            "application/json", {}).get("schema")
        return schema

    def validator(self, path: str, method: str, status: int) -> Draft202012Validator | None:
        key = (path, method, status)
        if key not in self.validators:
            schema = self.response_schema(path, method, status)
            self.validators[key] = Draft202012Validator(
                {**schema, "components": self.document["components"]}) if schema else None
        return self.validators[key]


Routes = tuple[tuple[str, tuple[str, ...]], ...]
_built: dict[Routes, Document] = {}


def document_of(app: FastAPI) -> Document:
    """``app``'s document, built once per set of routes: building one takes half a second,
    and every test makes its own app (with the same routes)."""
    routes = tuple(sorted((route.path, tuple(sorted(route.methods)))
                          for route in app.routes if isinstance(route, APIRoute)))
    if routes not in _built:
        _built[routes] = Document(app.openapi())
    return _built[routes]


class ResponseCheck:
    """An httpx response hook checking responses against ``app``'s OpenAPI document."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    @cached_property
    def document(self) -> Document:
        return document_of(self.app)

    def __call__(self, response: httpx.Response) -> None:
        if not (200 <= response.status_code < 300
                and response.headers.get("content-type", "").startswith("application/json")):
            return
        response.read()
        request = response.request
        path = self.document.template(request.url.path)
        if path is None:
            return  # not part of the document (``/``, ``/healthcheck``)
        where = f"{request.method} {path} {response.status_code}"
        validator = self.document.validator(path, request.method.lower(), response.status_code)
        assert validator is not None, f"{where}: the OpenAPI document gives no schema"
        errors = sorted(validator.iter_errors(response.json()), key=str)
        assert not errors, f"{where} answered what its OpenAPI schema does not allow: " \
                           f"{errors[0].message} at {list(errors[0].absolute_path)}"


def checked(client: TestClient) -> TestClient:
    """``client``, failing any test that receives a response ``/openapi.json`` does not allow."""
    assert isinstance(client.app, FastAPI)
    client.event_hooks["response"].append(ResponseCheck(client.app))
    return client
