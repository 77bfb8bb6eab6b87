"""``/v2/lbaas/quotas``: per-project limits on the number of objects.

A limit stored as NULL means "the configured default" (``[quotas] default_*_quota``);
-1 means unlimited. Responses carry the deprecated spellings ``load_balancer`` and
``health_monitor`` next to ``loadbalancer`` and ``healthmonitor``, as upstream's do.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import or_, select

from lbaas import constants
from lbaas.api import listing
from lbaas.api.common import ApiState, context, list_objects, state
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


class QuotaPUT(Schema):
    loadbalancer: Limit | None = None
    load_balancer: Limit | None = None
    listener: Limit | None = None
    pool: Limit | None = None
    healthmonitor: Limit | None = None
    health_monitor: Limit | None = None
    member: Limit | None = None
    l7policy: Limit | None = None
    l7rule: Limit | None = None


class QuotaRootPUT(Schema):
    quota: QuotaPUT


class QuotaResponse(BaseModel):
    """One project's limits (documentation of ``to_api``)."""

    project_id: str
    tenant_id: str
    loadbalancer: int | None
    load_balancer: int | None
    listener: int | None
    pool: int | None
    healthmonitor: int | None
    health_monitor: int | None
    member: int | None
    l7policy: int | None
    l7rule: int | None


class QuotaRootResponse(BaseModel):
    quota: QuotaResponse


COLLECTION = listing.Collection(
    model=Quota, plural="quotas", tagged=False, key="project_id",
    columns={"project_id": Quota.project_id,
             **{name: getattr(Quota, column) for name, column in LIMITS.items()},
             **{old: getattr(Quota, LIMITS[new]) for old, new in DEPRECATED.items()}},
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


def _requested(body: QuotaPUT) -> dict[str, int | None]:
    """``{column: limit}`` for the fields sent; the current name wins over a deprecated one."""
    sent = body.model_dump(exclude_unset=True)
    for old, new in DEPRECATED.items():
        if old in sent:
            sent.setdefault(new, sent.pop(old))
    return {LIMITS[name]: value for name, value in sent.items()}


@router.get("", summary="List the projects with non-default quotas")
def list_all(request: Request, api: ApiState = Depends(state),
             ctx: RequestContext = Depends(context)) -> Any:
    # Rows whose every limit is NULL (e.g. created only to lock a project) are defaults.
    stmt = select(Quota).where(or_(*(getattr(Quota, column).is_not(None)
                                     for column in LIMITS.values())))
    return list_objects(request, api, ctx, stmt, COLLECTION,
                        lambda row: to_api(row.project_id, stored(row)))


@router.get("/{project_id}", response_model=QuotaRootResponse,
            summary="Show the quotas that apply to a project")
def show(project_id: str, api: ApiState = Depends(state)) -> Any:
    with api.db.read() as session:
        row = session.get(Quota, project_id)
        return {"quota": to_api(project_id, effective(row, api.settings))}


@router.get("/{project_id}/default", response_model=QuotaRootResponse,
            summary="Show the default quotas")
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
