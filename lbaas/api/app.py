"""The FastAPI application: routers under ``/v2`` and ``/v2.0``, faults as upstream's."""
from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lbaas import log
from lbaas.amphora import capabilities
from lbaas.api import faults, monitoring, network, policy, root
from lbaas.api.common import ApiState, context
from lbaas.api.keystone import KeystoneAuth
from lbaas.api.validation import fault_from_validation_error

LOG = logging.getLogger(__name__)


def v2_router() -> APIRouter:
    """Every resource of the v2 API, mounted once under each prefix."""
    from lbaas.api import (
        amphora,
        availability_zone,
        availability_zone_profile,
        flavor,
        flavor_profile,
        health_monitor,
        l7policy,
        l7rule,
        listener,
        load_balancer,
        member,
        pool,
        provider,
        quota,
    )

    router = APIRouter()
    for module in (load_balancer, listener, pool, quota, provider, member, health_monitor,
                   l7policy, l7rule,
                   flavor_profile, flavor, availability_zone_profile, availability_zone, amphora):
        router.include_router(module.router)
    return router


def _fault(error: faults.APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.code)


class JsonOnly:
    """Upstream's JSON-only rules, as a plain ASGI middleware (``@app.middleware("http")``
    would cost a task and a streamed response on every request).

    Answers 406 in API-WG format when Accept rules out JSON, and ignores a ``.json``
    suffix on any path but our own OpenAPI document's.
    """

    def __init__(self, app: ASGIApp, openapi_url: str | None) -> None:
        self.app = app
        self.openapi_url = openapi_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in monitoring.PATHS:
            accept = Headers(scope=scope).get("accept", "")
            if accept and not any(kind.split(";")[0].strip() in ("*/*", "application/*", "application/json")
                                  for kind in accept.split(",")):
                response = JSONResponse({"errors": [{"status": 406, "title": "Not Acceptable",
                                                     "detail": faults.NotAcceptable.msg,
                                                     "request_id": log.request_id.get()}]},
                                        status_code=406)
                await response(scope, receive, send)
                return
            path = scope["path"]
            if path.endswith(".json") and path != self.openapi_url:
                scope = {**scope, "path": path[: -len(".json")]}
        await self.app(scope, receive, send)


class RequestId:
    """oslo.middleware's request id: a new ``req-<uuid>`` for each request, answered in
    ``x-openstack-request-id`` and carried by every log line of the request's work (the
    jobs it queues take it to the worker)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        current = log.new_request_id()
        token = log.request_id.set(current)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"x-openstack-request-id", current.encode())]
            await send(message)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.request_id.reset(token)


def create_app(api: ApiState) -> FastAPI:
    # Every route depends on the request context, which checks the route's policy rule
    # (lbaas.api.policy) when auth_strategy = keystone.
    app = FastAPI(title="lbaas: Octavia-compatible load balancing", version="2.30",
                  docs_url="/docs", redoc_url=None, dependencies=[Depends(context)])
    app.state.api = api
    for protocol, reason in capabilities.unserved_protocols().items():  # probed once, here
        LOG.warning("%s listeners, pools and monitors will be refused: %s", protocol, reason)

    app.add_middleware(JsonOnly, openapi_url=app.openapi_url)
    if api.settings.api_settings.auth_strategy == "keystone":
        app.state.policy = policy.load_enforcer(api.settings)
        app.add_middleware(KeystoneAuth, options=api.settings.keystone_authtoken)
    app.add_middleware(RequestId)  # outermost: even a refusal above carries its id

    @app.exception_handler(faults.APIError)
    async def api_error(_request: Request, error: faults.APIError) -> JSONResponse:
        return _fault(error)

    @app.exception_handler(RequestValidationError)
    async def invalid_input(_request: Request, error: RequestValidationError) -> JSONResponse:
        return _fault(fault_from_validation_error(error))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        fault = faults.APIError(str(error.detail))
        fault.code = error.status_code
        return _fault(fault)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> JSONResponse:
        LOG.exception("unexpected error while serving a request")
        return _fault(faults.APIError("An unknown exception occurred."))

    app.include_router(root.router)
    app.include_router(monitoring.router)
    # The network registry in Neutron's shape, at the root prefixes (not under /lbaas).
    app.include_router(network.router, prefix="/v2")
    app.include_router(network.router, prefix="/v2.0", include_in_schema=False)
    app.include_router(v2_router(), prefix="/v2")
    app.include_router(v2_router(), prefix="/v2.0", include_in_schema=False)
    return app
