"""``/v2/lbaas/quotas``: per-project limits on the number of objects.

A limit stored as NULL means "the configured default" (``[quotas] default_*_quota``);
-1 means unlimited. Responses carry the deprecated spellings ``load_balancer`` and
``health_monitor`` next to ``loadbalancer`` and ``healthmonitor``, as upstream's do.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, create_model
from sqlalchemy import or_, select

from lbaas import constants
from lbaas.api import listing
from lbaas.api.common import ApiState, context, in_event_loop, list_objects, state
from lbaas.api.context import RequestContext
from lbaas.api.types import Schema
from lbaas.config import Settings
from lbaas.db.models import Quota

router = APIRouter(prefix="/lbaas/quotas", tags=["quotas"])

# API name -> column of the quotas table (and of its ``[quotas] default_<column>_quota``).
LIMITS: dict[str, str] = {
    "loadbalancer": "load_balancer", "listener": "listener", "pool": "pool",
    "healthmonitor": "health_monitor", "member": "member", "l7policy": "l7policy",
    "l7rule": "l7rule",
}
# Deprecated (Rocky) spellings -> current API name.
DEPRECATED: dict[str, str] = {"load_balancer": "loadbalancer", "health_monitor": "healthmonitor"}

Limit = Annotated[int, Field(ge=constants.QUOTA_UNLIMITED, le=constants.MAX_QUOTA)]


# Every limit under each of its names, in a PUT and in responses.
NAMES = (*LIMITS, *DEPRECATED)
SENT: dict[str, Any] = {name: (Limit | None, None) for name in NAMES}
QuotaPUT = create_model("QuotaPUT", __base__=Schema, **SENT)


class QuotaRootPUT(Schema):
    quota: QuotaPUT  # type: ignore[valid-type]


# One project's limits; each may be missing (``fields`` asks for some).
SHOWN: dict[str, Any] = {"project_id": (str | None, None), "tenant_id": (str | None, None),
                         **{name: (int | None, None) for name in NAMES}}
QuotaResponse = create_model("QuotaResponse", **SHOWN)


class QuotaRootResponse(BaseModel):
    quota: QuotaResponse  # type: ignore[valid-type]


class QuotasRootResponse(BaseModel):
    quotas: list[QuotaResponse]  # type: ignore[valid-type]
    quotas_links: list[dict[str, str]] = []


COLLECTION = listing.Collection(
    model=Quota, plural="quotas", tagged=False, key="project_id",
    columns={"project_id": Quota.project_id,
             **{name: getattr(Quota, LIMITS[DEPRECATED.get(name, name)]) for name in NAMES}},
)


def to_api(project_id: str, limits: Mapping[str, int | None]) -> dict[str, Any]:
    """The response body from ``{column: limit}``, with the deprecated aliases."""
    body: dict[str, Any] = {"project_id": project_id, "tenant_id": project_id}
    body.update({name: limits[column] for name, column in LIMITS.items()})
    body.update({old: body[new] for old, new in DEPRECATED.items()})
    return body


def stored(row: Quota | None) -> dict[str, int | None]:
    """The limits a project has set; NULL (None) where it uses the default."""
    return {column: (getattr(row, column) if row is not None else None) for column in LIMITS.values()}


def defaults(settings: Settings) -> dict[str, int]:
    return {column: getattr(settings.quotas, f"default_{column}_quota") for column in LIMITS.values()}


def effective(row: Quota | None, settings: Settings) -> dict[str, int]:
    """The limits that apply: the project's own, else the configured defaults."""
    default = defaults(settings)
    return {column: default[column] if value is None else value
            for column, value in stored(row).items()}


def _requested(body: BaseModel) -> dict[str, int | None]:
    """``{column: limit}`` for the fields sent; the current name wins over a deprecated one."""
    sent = body.model_dump(exclude_unset=True)
    for old, new in DEPRECATED.items():
        if old in sent:
            sent.setdefault(new, sent.pop(old))
    return {LIMITS[name]: value for name, value in sent.items()}


@router.get("", summary="List the projects with non-default quotas",
            response_model=QuotasRootResponse, response_model_exclude_unset=True)
@in_event_loop
def list_all(request: Request, api: ApiState = Depends(state),
             ctx: RequestContext = Depends(context)) -> Any:
    # Rows whose every limit is NULL (e.g. created only to lock a project) are defaults.
    stmt = select(Quota).where(or_(*(getattr(Quota, column).is_not(None)
                                     for column in LIMITS.values())))
    return list_objects(request, api, ctx, stmt, COLLECTION,
                        lambda row: to_api(row.project_id, stored(row)))


@router.get("/{project_id}", response_model=QuotaRootResponse, response_model_exclude_unset=True,
            summary="Show the quotas that apply to a project")
@in_event_loop
def show(project_id: str, api: ApiState = Depends(state)) -> Any:
    with api.db.read() as session:
        row = session.get(Quota, project_id)
        return {"quota": to_api(project_id, effective(row, api.settings))}


@router.get("/{project_id}/default", response_model=QuotaRootResponse,
            summary="Show the default quotas")
@in_event_loop
def show_default(project_id: str, api: ApiState = Depends(state)) -> Any:
    return {"quota": to_api(project_id, defaults(api.settings))}


@router.put("/{project_id}", status_code=202, response_model=QuotaRootResponse,
            summary="Set some or all of a project's quotas")
def update(project_id: str, body: QuotaRootPUT, api: ApiState = Depends(state)) -> Any:
    """Only the limits sent change; ``null`` puts a limit back to the default."""
    with api.db.write() as session:
        row = session.get(Quota, project_id)
        if row is None:
            row = Quota(project_id=project_id)
            session.add(row)
        for column, value in _requested(body.quota).items():
            setattr(row, column, value)
        session.flush()
        return {"quota": to_api(project_id, effective(row, api.settings))}


@router.delete("/{project_id}", status_code=202, summary="Reset a project's quotas to the defaults")
def reset(project_id: str, api: ApiState = Depends(state)) -> Response:
    with api.db.write() as session:
        row = session.get(Quota, project_id)
        if row is not None:
            for column in LIMITS.values():
                setattr(row, column, None)
    return Response(status_code=202)
