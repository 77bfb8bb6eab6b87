"""``/v2/lbaas/healthmonitors``: the health monitor of a pool."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response
from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from sqlalchemy import select

from lbaas import constants, validate
from lbaas.api import faults, listing
from lbaas.api.common import (
    ApiState,
    apply_changes,
    check_quota,
    context,
    get_or_404,
    list_objects,
    lock_pool,
    show_object,
    state,
    submit_change,
    timestamp,
)
from lbaas.api.context import RequestContext
from lbaas.api.types import Name, OneOf, ProjectId, Schema, Tags, Uuid, updates
from lbaas.config import Settings
from lbaas.db.models import HealthMonitor, Pool

router = APIRouter(prefix="/lbaas/healthmonitors", tags=["health monitors"])
RESOURCE = "Health Monitor"

HTTP_TYPES = ("HTTP", "HTTPS")
HTTP_FIELDS = ("http_method", "url_path", "expected_codes")
DEFAULT_HTTP_METHOD = "GET"
DEFAULT_URL_PATH = "/"
DEFAULT_EXPECTED_CODES = "200"
DEFAULT_MAX_RETRIES_DOWN = 3
RENAMES = {"admin_state_up": "enabled", "max_retries": "rise_threshold",
           "max_retries_down": "fall_threshold"}


def _url_path(value: str) -> str:
    """Only a path: no scheme, host or port, it starts with ``/``, and haproxy can send it."""
    try:
        parts = urlsplit(value)
        valid = not (parts.scheme or parts.netloc) and parts.path.startswith("/")
    except ValueError:
        valid = False
    if not valid:
        raise ValueError("Value must be a valid URL Path string")
    return validate.url_path(value)


MonitorType = Annotated[str, OneOf(constants.HEALTH_MONITOR_TYPES)]
HttpMethod = Annotated[str, OneOf(constants.HTTP_METHODS)]
# haproxy's timers: ``inter`` (the delay) at least 1 s, both at most ~24.8 days.
Delay = Annotated[int, Field(ge=validate.MIN_DELAY_SECONDS, le=validate.MAX_TIMER_SECONDS)]
Seconds = Annotated[int, Field(ge=0, le=validate.MAX_TIMER_SECONDS)]
Retries = Annotated[int, Field(ge=1, le=10)]
UrlPath = Annotated[str, AfterValidator(_url_path)]
ExpectedCodes = Annotated[str, AfterValidator(validate.expected_codes)]
HttpVersion = Annotated[float, OneOf(constants.HTTP_VERSIONS)]
DomainName = Annotated[str, StringConstraints(min_length=1, max_length=255),
                       AfterValidator(validate.domain_name)]


class HealthMonitorSingleCreate(Schema):
    """A health monitor as nested in a pool of a fully-populated load balancer create."""

    type: MonitorType
    delay: Delay
    timeout: Seconds
    max_retries: Retries
    max_retries_down: Retries = DEFAULT_MAX_RETRIES_DOWN
    http_method: HttpMethod | None = None
    url_path: UrlPath | None = None
    expected_codes: ExpectedCodes | None = None
    http_version: HttpVersion | None = None
    domain_name: DomainName | None = None
    name: Name | None = None
    admin_state_up: bool = True
    tags: Tags | None = None


class HealthMonitorPOST(HealthMonitorSingleCreate):
    pool_id: Uuid
    project_id: ProjectId | None = None


class HealthMonitorPUT(Schema):
    name: Name | None = None
    delay: Delay | None = None
    timeout: Seconds | None = None
    max_retries: Retries | None = None
    max_retries_down: Retries | None = None
    http_method: HttpMethod | None = None
    url_path: UrlPath | None = None
    expected_codes: ExpectedCodes | None = None
    http_version: HttpVersion | None = None
    domain_name: DomainName | None = None
    admin_state_up: bool | None = None
    tags: Tags | None = None


PUT_DEFAULTS: dict[str, Any] = {
    "admin_state_up": True, "tags": [], "http_method": DEFAULT_HTTP_METHOD,
    "url_path": DEFAULT_URL_PATH, "expected_codes": DEFAULT_EXPECTED_CODES,
    "max_retries_down": DEFAULT_MAX_RETRIES_DOWN,
}
# Fields a PUT may not clear (upstream answers InvalidOption for a null).
REQUIRED_ON_PUT = ("delay", "max_retries", "timeout")


class HealthMonitorRootPOST(Schema):
    healthmonitor: HealthMonitorPOST


class HealthMonitorRootPUT(Schema):
    healthmonitor: HealthMonitorPUT


class HealthMonitorResponse(BaseModel):
    """The response body of one health monitor (documentation of ``to_api``)."""

    id: str
    name: str
    type: str
    delay: int
    timeout: int
    max_retries: int
    max_retries_down: int
    http_method: str | None
    url_path: str | None
    expected_codes: str | None
    admin_state_up: bool
    project_id: str | None
    tenant_id: str | None
    pools: list[dict[str, str]]
    provisioning_status: str
    operating_status: str
    created_at: str | None
    updated_at: str | None
    tags: list[str]
    http_version: float | None
    domain_name: str | None


class HealthMonitorRootResponse(BaseModel):
    healthmonitor: HealthMonitorResponse


class HealthMonitorsRootResponse(BaseModel):
    healthmonitors: list[HealthMonitorResponse]
    healthmonitors_links: list[dict[str, str]]


COLLECTION = listing.Collection(
    model=HealthMonitor, plural="healthmonitors",
    columns={
        "id": HealthMonitor.id, "name": HealthMonitor.name, "type": HealthMonitor.type,
        "delay": HealthMonitor.delay, "timeout": HealthMonitor.timeout,
        "max_retries": HealthMonitor.rise_threshold,
        "max_retries_down": HealthMonitor.fall_threshold,
        "http_method": HealthMonitor.http_method, "url_path": HealthMonitor.url_path,
        "expected_codes": HealthMonitor.expected_codes,
        "admin_state_up": HealthMonitor.enabled, "project_id": HealthMonitor.project_id,
        "provisioning_status": HealthMonitor.provisioning_status,
        "operating_status": HealthMonitor.operating_status,
        "created_at": HealthMonitor.created_at, "updated_at": HealthMonitor.updated_at,
        "http_version": HealthMonitor.http_version, "domain_name": HealthMonitor.domain_name,
    },
)


def to_api(hm: HealthMonitor) -> dict[str, Any]:
    return {
        "id": hm.id,
        "name": hm.name or "",
        "type": hm.type,
        "delay": hm.delay,
        "timeout": hm.timeout,
        "max_retries": hm.rise_threshold,
        "max_retries_down": hm.fall_threshold,
        "http_method": hm.http_method,
        "url_path": hm.url_path,
        "expected_codes": hm.expected_codes,
        "admin_state_up": hm.enabled,
        "project_id": hm.project_id,
        "tenant_id": hm.project_id,
        "pools": [{"id": hm.pool_id}],
        "provisioning_status": hm.provisioning_status,
        "operating_status": hm.operating_status,
        "created_at": timestamp(hm.created_at),
        "updated_at": timestamp(hm.updated_at),
        "tags": hm.tags,
        "http_version": hm.http_version,
        "domain_name": hm.domain_name,
    }


def _check_type_for_pool(hm_type: str, delay: int, pool: Pool, settings: Settings) -> None:
    """The health-monitor type matrix, and the UDP-CONNECT minimum interval."""
    if pool.protocol in (constants.UDP, constants.SCTP):
        allowed = constants.HEALTH_MONITORS_FOR_L4_DATAGRAM
        if hm_type not in allowed:
            raise faults.ValidationException(
                detail=f"The associated pool protocol is {pool.protocol}, so only a "
                       f"{'/'.join(allowed)} health monitor is supported.")
        try:  # an SCTP monitor needs the kernel's SCTP
            validate.datagram_monitor_type(hm_type)
        except validate.InvalidValue as exc:
            raise faults.DisabledOption(option="type", value=f"{hm_type} ({exc})") from exc
        minimum = settings.api_settings.udp_connect_min_interval_health_monitor
        if hm_type == "UDP-CONNECT" and 0 <= minimum and delay < minimum:
            raise faults.ValidationException(
                detail=f"The request delay value {delay} should be larger than {minimum} "
                       "for UDP-CONNECT health monitor type.")
    elif hm_type not in constants.HEALTH_MONITORS_FOR_STREAM:
        raise faults.ValidationException(
            detail=f"The {hm_type} type is only supported for pools of type "
                   f"{constants.UDP}/{constants.SCTP}.")


def _check_http_fields(hm_type: str, given: Iterable[str]) -> None:
    """http_method, url_path and expected_codes belong to HTTP and HTTPS monitors only."""
    if hm_type in HTTP_TYPES:
        return
    for name in HTTP_FIELDS:
        if name in given:
            raise faults.InvalidOption(value=name, option=f"health monitors of type {hm_type}")


def _check_domain_name(domain_name: str | None, http_version: float | None) -> None:
    if not domain_name:
        return
    if not http_version:
        raise faults.ValidationException(
            detail="'http_version' must be specified when 'domain_name' is provided.")
    if http_version < 1.1:
        raise faults.InvalidOption(value=f"http_version {http_version}",
                                   option="health monitors HTTP 1.1 domain name health check")


def validate_health_monitor(body: HealthMonitorSingleCreate, pool: Pool,
                            settings: Settings) -> None:
    """Upstream's checks of a new health monitor for ``pool`` (400s)."""
    if body.type == "PING" and not settings.api_settings.allow_ping_health_monitors:
        raise faults.DisabledOption(option="type", value="PING")
    _check_type_for_pool(body.type, body.delay, pool, settings)
    _check_http_fields(body.type, [name for name in HTTP_FIELDS if getattr(body, name)])
    _check_domain_name(body.domain_name, body.http_version)


def new_health_monitor(body: HealthMonitorSingleCreate, pool: Pool) -> HealthMonitor:
    """A new health monitor of ``pool`` in PENDING_CREATE, for a body that was validated.

    HTTP and HTTPS monitors get upstream's defaults for method, path and expected codes.
    """
    is_http = body.type in HTTP_TYPES
    hm = HealthMonitor(
        pool=pool, project_id=pool.project_id, name=body.name, enabled=body.admin_state_up,
        type=body.type, delay=body.delay, timeout=body.timeout,
        rise_threshold=body.max_retries, fall_threshold=body.max_retries_down,
        http_method=(body.http_method or DEFAULT_HTTP_METHOD) if is_http else None,
        url_path=(body.url_path or DEFAULT_URL_PATH) if is_http else None,
        expected_codes=(body.expected_codes or DEFAULT_EXPECTED_CODES) if is_http else None,
        http_version=body.http_version, domain_name=body.domain_name,
        provisioning_status=constants.PENDING_CREATE, operating_status=constants.OFFLINE,
    )
    hm.tags = body.tags
    return hm


def validate_update(hm: HealthMonitor, body: HealthMonitorPUT, settings: Settings) -> None:
    """Upstream's checks of a health-monitor update against the stored monitor (400s)."""
    sent = body.model_fields_set
    _check_http_fields(hm.type, sent)
    for name in REQUIRED_ON_PUT:
        if name in sent and getattr(body, name) is None:
            raise faults.InvalidOption(value=None, option=name)
    _check_domain_name(body.domain_name if "domain_name" in sent else hm.domain_name,
                       body.http_version if "http_version" in sent else hm.http_version)
    if hm.pool.protocol in (constants.UDP, constants.SCTP):
        delay = body.delay if body.delay is not None else hm.delay
        _check_type_for_pool(hm.type, delay, hm.pool, settings)


@router.post("", status_code=201, summary="Create a health monitor",
             responses={201: {"model": HealthMonitorRootResponse}})
def create(body: HealthMonitorRootPOST, api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Any:
    wanted = body.healthmonitor
    with api.db.write() as session:
        pool = get_or_404(session, Pool, wanted.pool_id, "Pool", ctx)
        validate_health_monitor(wanted, pool, api.settings)
        check_quota(session, api.settings, pool.project_id, {"healthmonitor": 1})
        lock_pool(session, pool)
        if pool.health_monitor is not None:
            raise faults.DuplicateHealthMonitor()
        hm = new_health_monitor(wanted, pool)
        session.add(hm)
        session.flush()
        submit_change(session, pool.load_balancer_id, healthmonitor=[hm.id])
        result = {"healthmonitor": to_api(hm)}
    api.wakeup.notify()
    return result


@router.get("", summary="List health monitors",
            responses={200: {"model": HealthMonitorsRootResponse}})
def list_all(request: Request, api: ApiState = Depends(state),
             ctx: RequestContext = Depends(context)) -> Any:
    return list_objects(request, api, ctx, select(HealthMonitor), COLLECTION, to_api)


@router.get("/{hm_id}", summary="Show a health monitor",
            responses={200: {"model": HealthMonitorRootResponse}})
def show(hm_id: str, request: Request, api: ApiState = Depends(state),
         ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        hm = get_or_404(session, HealthMonitor, hm_id, RESOURCE, ctx)
        return show_object(request, api, "healthmonitor", to_api(hm))


@router.put("/{hm_id}", summary="Update a health monitor",
            responses={200: {"model": HealthMonitorRootResponse}})
def update(hm_id: str, body: HealthMonitorRootPUT, api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Any:
    with api.db.write() as session:
        hm = get_or_404(session, HealthMonitor, hm_id, RESOURCE, ctx)
        validate_update(hm, body.healthmonitor, api.settings)
        lock_pool(session, hm.pool, constants.DELETABLE_STATUSES)
        apply_changes(hm, updates(body.healthmonitor, PUT_DEFAULTS), RENAMES)
        hm.provisioning_status = constants.PENDING_UPDATE
        session.flush()
        submit_change(session, hm.pool.load_balancer_id, healthmonitor=[hm.id])
        result = {"healthmonitor": to_api(hm)}
    api.wakeup.notify()
    return result


@router.delete("/{hm_id}", status_code=204, summary="Delete a health monitor")
def delete(hm_id: str, api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Response:
    with api.db.write() as session:
        hm = get_or_404(session, HealthMonitor, hm_id, RESOURCE, ctx)
        lock_pool(session, hm.pool, constants.DELETABLE_STATUSES)
        hm.provisioning_status = constants.PENDING_DELETE
        submit_change(session, hm.pool.load_balancer_id, healthmonitor=[hm.id])
    api.wakeup.notify()
    return Response(status_code=204)
