"""The FastAPI application: routers under ``/v2`` and ``/v2.0``, faults as upstream's."""
from __future__ import annotations

import logging

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lbaas.api import faults, network, root
from lbaas.api.common import ApiState
from lbaas.api.validation import fault_from_validation_error

LOG = logging.getLogger(__name__)


def v2_router() -> APIRouter:
    """Every resource of the v2 API, mounted once under each prefix."""
    from lbaas.api import health_monitor, listener, load_balancer, member, pool, provider, quota

    router = APIRouter()
    for module in (load_balancer, listener, pool, quota, provider, member, health_monitor):
        router.include_router(module.router)
    return router


def _fault(error: faults.APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.code)


def create_app(api: ApiState) -> FastAPI:
    app = FastAPI(title="lbaas: Octavia-compatible load balancing", version="2.30",
                  docs_url="/docs", redoc_url=None)
    app.state.api = api

    @app.middleware("http")
    async def accept_json_only(request: Request, call_next):  # type: ignore[no-untyped-def]
        # Upstream answers 406 in API-WG format when Accept rules out JSON.
        accept = request.headers.get("accept", "")
        if accept and not any(kind.split(";")[0].strip() in ("*/*", "application/*", "application/json")
                              for kind in accept.split(",")):
            return JSONResponse({"errors": [{"status": 406, "title": "Not Acceptable",
                                             "detail": faults.NotAcceptable.msg,
                                             "request_id": None}]}, status_code=406)
        # Upstream also accepts a ".json" suffix on any path (but our own OpenAPI document).
        if request.url.path.endswith(".json") and request.url.path != app.openapi_url:
            request.scope["path"] = request.url.path[: -len(".json")]
        return await call_next(request)

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
    # The network registry in Neutron's shape, at the root prefixes (not under /lbaas).
    app.include_router(network.router, prefix="/v2")
    app.include_router(network.router, prefix="/v2.0", include_in_schema=False)
    app.include_router(v2_router(), prefix="/v2")
    app.include_router(v2_router(), prefix="/v2.0", include_in_schema=False)
    return app
