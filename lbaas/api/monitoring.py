"""``GET /healthcheck``, upstream's (oslo.middleware's shape), and ``GET /metrics``, the
control plane and its load balancers in Prometheus' format.

/healthcheck answers without a token: ``OK`` (200) or the failed checks' reasons (503),
as text, HTML or JSON after the Accept header. Admins (any caller under noauth, every
caller with ``[healthcheck] detailed``) get the details: each check, the running services
and the process. Results are cached for ``healthcheck_refresh_interval`` seconds, as
upstream's, so that a busy balancer's probes do not load the database.
"""
from __future__ import annotations

import datetime as dt
import gc
import html
import ipaddress
import platform
import sys
import threading
import time
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry
from sqlalchemy import text

from lbaas.api import faults, prometheus
from lbaas.api.common import ApiState, context, state
from lbaas.api.context import RequestContext
from lbaas.db import overview

router = APIRouter(include_in_schema=False)
# Served as text, HTML or Prometheus' formats: the JSON-only rule leaves them alone.
PATHS = frozenset({"/healthcheck", "/metrics"})

DB_UNAVAILABLE = "The Octavia database is unavailable."


@dataclass(frozen=True)
class CheckResult:
    kind: str
    ok: bool
    reason: str
    details: str = ""


def _db_check(api: ApiState) -> CheckResult:
    try:
        with api.db.read() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database is the answer
        return CheckResult("OctaviaDBCheckResult", False, DB_UNAVAILABLE,
                           f"Database health check failed due to: {exc}.")
    return CheckResult("OctaviaDBCheckResult", True, "OK")


def _services_check(api: ApiState) -> CheckResult:
    try:
        with api.db.read() as session:
            view = overview.read(session, api.settings)
    except Exception as exc:
        return CheckResult("LbaasServicesCheckResult", False, DB_UNAVAILABLE, str(exc))
    running = {s.kind for s in view.services if s.alive}
    missing = [kind for kind in ("worker", "health-manager") if kind not in running]
    details = "; ".join(f"{s.kind} on {s.host} (pid {s.pid}), last seen "
                        f"{view.age(s.last_seen):.0f} s ago" for s in view.services if s.alive)
    if missing:
        return CheckResult("LbaasServicesCheckResult", False,
                           f"No {' and no '.join(missing)} is running.", details)
    return CheckResult("LbaasServicesCheckResult", True, "OK", details)


CHECKS = {"octavia_db_check": _db_check, "lbaas_services_check": _services_check}


class _Cache:
    """The last results, reused for ``healthcheck_refresh_interval`` seconds."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at = -float("inf")
        self.results: list[CheckResult] = []

    def results_for(self, api: ApiState) -> list[CheckResult]:
        with self.lock:
            if time.monotonic() - self.at >= api.settings.api_settings.healthcheck_refresh_interval:
                self.results = [CHECKS[name](api) for name in api.settings.healthcheck.backends]
                self.at = time.monotonic()
            return self.results


def _cache(request: Request) -> _Cache:
    cache = getattr(request.app.state, "healthcheck", None)
    if cache is None:
        cache = request.app.state.healthcheck = _Cache()
    return cache


def _wants(request: Request) -> str:
    """text/plain, text/html or application/json, as oslo.middleware picks from Accept."""
    accept = request.headers.get("accept", "")
    for kind in (part.split(";")[0].strip() for part in accept.split(",")):
        if kind in ("application/json", "text/html", "text/plain"):
            return kind
    return "text/plain"


def _detailed_body(results: list[CheckResult]) -> dict[str, object]:
    return {
        "detailed": True,
        "now": str(dt.datetime.now()),
        "platform": platform.platform(),
        "python_version": sys.version,
        "gc": {"counts": list(gc.get_count()), "threshold": list(gc.get_threshold())},
        "reasons": [{"class": r.kind, "reason": r.reason, "details": r.details} for r in results],
        "threads": [thread.name for thread in threading.enumerate()],
    }


def _html(results: list[CheckResult], detailed: bool) -> str:
    header = "<TH>Kind</TH><TH>Reason</TH><TH>Details</TH>" if detailed else "<TH>Reason</TH>"
    rows = "".join(
        f"<TR><TD>{html.escape(r.kind)}</TD><TD>{html.escape(r.reason)}</TD>"
        f"<TD>{html.escape(r.details)}</TD></TR>" if detailed
        else f"<TR><TD>{html.escape(r.reason)}</TD></TR>" for r in results)
    return ("<HTML>\n<HEAD><TITLE>Healthcheck Status</TITLE></HEAD>\n<BODY>\n"
            f"<H2>Result of {len(results)} checks:</H2>\n<TABLE bgcolor=\"#ffffff\" border=\"1\">"
            f"<TBODY><TR>{header}</TR>{rows}</TBODY></TABLE>\n</BODY>\n</HTML>\n")


@router.api_route("/healthcheck", methods=["GET", "HEAD"])
def healthcheck(request: Request, ctx: RequestContext = Depends(context),
                api: ApiState = Depends(state)) -> Response:
    if not api.settings.api_settings.healthcheck_enabled:
        raise faults.NotFound(resource="Resource", id="/healthcheck")
    results = _cache(request).results_for(api)
    healthy = all(result.ok for result in results)
    code = 200 if healthy else 503
    if request.method == "HEAD":
        return Response(status_code=204 if healthy else 503)
    failed = [r.reason for r in results if not r.ok]
    detailed = api.settings.healthcheck.detailed or ctx.is_admin
    if detailed:  # the services are worth showing to an admin even when not a backend
        results = results + [c for c in (_services_check(api),)
                             if c.kind not in {r.kind for r in results}]
    wanted = _wants(request)
    if wanted == "application/json":
        body = (_detailed_body(results) if detailed
                else {"detailed": False, "reasons": failed or ["OK"]})
        return JSONResponse(body, status_code=code)
    if wanted == "text/html":
        return Response(_html(results, detailed), status_code=code, media_type="text/html")
    return PlainTextResponse("OK" if healthy else "\n".join(failed), status_code=code)


def _trusted(request: Request, api: ApiState) -> bool:
    """Whether the caller's address is one the operator lets scrape without a token."""
    client = request.client.host if request.client else None
    try:
        address = ipaddress.ip_address(client or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(cidr)
               for cidr in api.settings.api_settings.metrics_allowed_cidrs)


@router.get("/metrics")
def metrics(request: Request, ctx: RequestContext = Depends(context),
            api: ApiState = Depends(state)) -> Response:
    if not api.settings.api_settings.metrics_enabled:
        raise faults.NotFound(resource="Resource", id="/metrics")
    if ctx.anonymous and not _trusted(request, api):
        raise faults.MetricsNeedAToken()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(prometheus.Collector(api.db, api.settings))
    body, content_type = _encoded(registry, request.headers.get("accept", ""))
    return Response(body, media_type=content_type)


def _encoded(registry: CollectorRegistry, accept: str) -> tuple[bytes, str]:
    """The scrape in the format ``accept`` asks for; an Accept header prometheus-client
    cannot read (a malformed OpenMetrics version) gets the text format, not a 500."""
    try:
        encoder, content_type = choose_encoder(accept)
    except (TypeError, ValueError):
        encoder, content_type = choose_encoder("")
    return encoder(registry), content_type
