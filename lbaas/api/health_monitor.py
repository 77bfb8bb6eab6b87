"""``/v2/lbaas/healthmonitors``: the health monitor of a pool."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response
from pydantic import AfterValidator, Field, StringConstraints
from sqlalchemy import select

from lbaas import constants, validate
from lbaas.api import faults, resource
from lbaas.api.common import (
    ApiState,
    apply_changes,
    check_quota,
    context,
    get_or_404,
    in_event_loop,
    list_objects,
    lock_pool,
    show_object,
    state,
    submit_change,
)
from lbaas.api.context import RequestContext
from lbaas.api.resource import Api, Out, SentProjectId, text
from lbaas.api.types import Name, OneOf, Schema, Tags, Uuid, updates
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

    type: Annotated[MonitorType, Api(update=False)]
    delay: Delay
    timeout: Seconds
    max_retries: Annotated[Retries, Api(column="rise_threshold")]
    max_retries_down: Annotated[Retries, Api(column="fall_threshold")] = DEFAULT_MAX_RETRIES_DOWN
    http_method: HttpMethod | None = None
    url_path: UrlPath | None = None
    expected_codes: ExpectedCodes | None = None
    http_version: HttpVersion | None = None
    domain_name: DomainName | None = None
    name: Annotated[Name | None, Api(out=text)] = None
    admin_state_up: Annotated[bool, Api(column="enabled")] = True
    tags: Tags | None = None


class HealthMonitorPOST(HealthMonitorSingleCreate):
    pool_id: Annotated[Uuid, Api(update=False, shown=False)]
    project_id: SentProjectId = None


class HealthMonitorRootPOST(Schema):
    healthmonitor: HealthMonitorPOST


HEALTH_MONITOR = resource.Resource(
    "healthmonitor", HealthMonitor, HealthMonitorPOST,
    outputs=(*resource.LIFECYCLE,
             Out("pools", list[resource.Ref], resource.ref("pool_id"))))
to_api = HEALTH_MONITOR.to_api

PUT_DEFAULTS: dict[str, Any] = {
    "admin_state_up": True, "tags": [], "http_method": DEFAULT_HTTP_METHOD,
    "url_path": DEFAULT_URL_PATH, "expected_codes": DEFAULT_EXPECTED_CODES,
    "max_retries_down": DEFAULT_MAX_RETRIES_DOWN,
}
# Fields a PUT may not clear (upstream answers InvalidOption for a null).
REQUIRED_ON_PUT = ("delay", "max_retries", "timeout")


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


def validate_update(hm: HealthMonitor, sent: dict[str, Any], settings: Settings) -> None:
    """Upstream's checks of a health-monitor update (the fields a PUT sent) against the
    stored monitor (400s)."""
    _check_http_fields(hm.type, sent)
    for name in REQUIRED_ON_PUT:
        if name in sent and sent[name] is None:
            raise faults.InvalidOption(value=None, option=name)
    _check_domain_name(sent.get("domain_name", hm.domain_name),
                       sent.get("http_version", hm.http_version))
    if hm.pool.protocol in (constants.UDP, constants.SCTP):
        _check_type_for_pool(hm.type, sent.get("delay") or hm.delay, hm.pool, settings)


@router.post("", status_code=201, summary="Create a health monitor",
             response_model=HEALTH_MONITOR.response_root, response_model_exclude_unset=True)
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
            response_model=HEALTH_MONITOR.list_root, response_model_exclude_unset=True)
@in_event_loop
def list_all(request: Request, api: ApiState = Depends(state),
             ctx: RequestContext = Depends(context)) -> Any:
    return list_objects(request, api, ctx, select(HealthMonitor), HEALTH_MONITOR.collection,
                        to_api)


@router.get("/{hm_id}", summary="Show a health monitor",
            response_model=HEALTH_MONITOR.response_root, response_model_exclude_unset=True)
@in_event_loop
def show(hm_id: str, request: Request, api: ApiState = Depends(state),
         ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        hm = get_or_404(session, HealthMonitor, hm_id, RESOURCE, ctx)
        return show_object(request, api, "healthmonitor", to_api(hm))


@router.put("/{hm_id}", summary="Update a health monitor",
            response_model=HEALTH_MONITOR.response_root, response_model_exclude_unset=True)
def update(hm_id: str, body: HEALTH_MONITOR.put_root,  # type: ignore[name-defined]
           api: ApiState = Depends(state), ctx: RequestContext = Depends(context)) -> Any:
    with api.db.write() as session:
        hm = get_or_404(session, HealthMonitor, hm_id, RESOURCE, ctx)
        validate_update(hm, body.healthmonitor.model_dump(exclude_unset=True), api.settings)
        lock_pool(session, hm.pool, constants.DELETABLE_STATUSES)
        apply_changes(hm, updates(body.healthmonitor, PUT_DEFAULTS), HEALTH_MONITOR.renames)
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
