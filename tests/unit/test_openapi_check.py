"""The check every API test's client runs (tests.helpers.openapi) catches a response that
its OpenAPI document does not allow, and a JSON response the document gives no schema."""
from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel

from tests.helpers.openapi import checked


class Thing(BaseModel):
    size: int


def app() -> FastAPI:
    made = FastAPI()

    @made.get("/things/{thing_id}", response_model=Thing)
    def show(thing_id: str) -> JSONResponse:  # a response that skips the model's checks
        return JSONResponse({"size": "large"} if thing_id == "bad" else {"size": 1})

    @made.get("/things/{thing_id}/owner", response_model=None)
    def owner(thing_id: str) -> JSONResponse:
        return JSONResponse({"name": "x"})
    return made


def test_a_response_the_document_allows_passes():
    with checked(TestClient(app())) as client:
        assert client.get("/things/good").json() == {"size": 1}


def test_a_response_the_document_does_not_allow_fails_the_test():
    with checked(TestClient(app())) as client, pytest.raises(
            AssertionError, match=r"GET /things/\{thing_id\} 200 answered what its OpenAPI "
                                  r"schema does not allow: 'large' is not of type 'integer'"):
        client.get("/things/bad")


def test_a_json_response_without_a_documented_schema_fails_the_test():
    with checked(TestClient(app())) as client, pytest.raises(
            AssertionError, match="gives no schema"):
        client.get("/things/good/owner")
