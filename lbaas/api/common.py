"""Helpers every resource module uses: lookups, the load-balancer lock, quotas, formatting."""
from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

import pydantic_core
from fastapi import Depends, Request, Response
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lbaas import cert_manager, constants, drivers
from lbaas.api import faults, listing, policy
from lbaas.api.context import RequestContext, noauth_context
from lbaas.cert_manager.base import CertManager
from lbaas.config import Settings
from lbaas.controller import actions, jobs
from lbaas.db import status
from lbaas.db.engine import Database
from lbaas.db.models import (
    HealthMonitor,
    L7Policy,
    L7Rule,
    Listener,
    LoadBalancer,
    Member,
    Pool,
    Quota,
)
from lbaas.drivers.network.base import NetworkDriver


@dataclass
class ApiState:
    settings: Settings
    db: Database
    wakeup: jobs.Wakeup

    @functools.cached_property
    def network(self) -> NetworkDriver:
        """The network driver, with which a load balancer's create reserves its VIP."""
        return drivers.load_network(self.settings, self.db)

    @functools.cached_property
    def cert_manager(self) -> CertManager:
        """Reads the certificate references of listeners and pools (lbaas.api.certificates)."""
        return cert_manager.load(self.settings, self.db)


# The dependencies below never block, so they are coroutines: FastAPI would run a plain
# function in the thread pool, one hand-off per dependency per request.
P = ParamSpec("P")
R = TypeVar("R")


def in_event_loop(endpoint: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """A read endpoint served from the event loop rather than FastAPI's thread pool.

    A read is a few indexed queries: handing it to a worker thread and back cost about
    0.6 ms of the API process's CPU per request here, a third of a load balancer's show
    (docs/benchmarks.md). Writes stay in the pool, since they may wait on the database's
    lock; FastAPI reads the wrapped function's signature for the dependencies."""
    @functools.wraps(endpoint)
    async def serve(*args: P.args, **kwargs: P.kwargs) -> R:
        return endpoint(*args, **kwargs)
    return serve


async def state(request: Request) -> ApiState:
    api: ApiState = request.app.state.api
    return api


async def context(request: Request, api: ApiState = Depends(state)) -> RequestContext:
    """Who calls, and (under Keystone) whether the route's policy rule lets them.

    Every route of the v2 API depends on this (see ``lbaas.api.app``), so the policy is
    checked once per request whether or not the handler reads the context.
    """
    enforcer = getattr(request.app.state, "policy", None)
    if enforcer is None:
        return noauth_context(request, api.settings)
    return policy.authorize(request, enforcer)


class Owned(Protocol):
    """A model an API caller acts on: it belongs to a project."""

    @property
    def project_id(self) -> str | None: ...


OwnedT = TypeVar("OwnedT", bound=Owned)


def get_or_404(session: Session, model: type[OwnedT], object_id: str, resource: str,
               ctx: RequestContext, options: Sequence[Any] = ()) -> OwnedT:
    """The object, 404 if it does not exist or is deleted, 403 if the caller may not act
    on its project (as upstream: the object is loaded, then the policy checked on it).

    ``options`` are loader options for the query (how to load what the response reads).
    """
    obj = session.get(model, object_id, options=options)
    if obj is None or getattr(obj, "provisioning_status", None) == constants.DELETED:
        raise faults.NotFound(resource=resource, id=object_id)
    ctx.authorize(obj.project_id)
    return obj


def get_subresource(session: Session, model: type, object_id: str, resource: str,
                    ctx: RequestContext) -> Any:
    """A referenced object (e.g. ``loadbalancer_id`` in a body): 400 rather than 404 if
    it does not exist; 403 if it belongs to a project the caller may not act on."""
    try:
        return get_or_404(session, model, object_id, resource, ctx)
    except faults.NotFound as exc:
        raise faults.InvalidSubresource(resource=resource, id=object_id) from exc


def lock_load_balancer(session: Session, lb_id: str) -> None:
    """Take the load balancer's lock for a change of one of its children (409 if busy)."""
    if not status.test_and_set(session, lb_id, constants.PENDING_UPDATE):
        raise faults.ImmutableObject(resource="Load Balancer", id=lb_id)


def lock_parents(session: Session, kind: str, parents: Sequence[Any]) -> None:
    """The parents a change locks go PENDING_UPDATE until its flow settles them, except
    those in ERROR: they stay ERROR (and unserved) until a change of their own repairs
    them, rather than being rendered again and released ACTIVE whatever the push did."""
    status.set_status(session, kind, [parent.id for parent in parents
                                      if parent.provisioning_status != constants.ERROR],
                      constants.PENDING_UPDATE)


def lock_pool(session: Session, pool: Pool,
              allowed: Sequence[str] = constants.MUTABLE_STATUSES) -> None:
    """Take the locks for a change below ``pool`` (a member or health monitor; 409 if busy).

    As upstream: the pool must be in ``allowed`` (ACTIVE; a change or removal of an
    existing child also ERROR, so that a broken tree can be repaired), the load balancer
    goes PENDING_UPDATE, and the pool and its listeners PENDING_UPDATE until the change's
    flow settles them (``lock_parents``).
    """
    if pool.provisioning_status not in allowed:
        raise faults.ImmutableObject(resource="Pool", id=pool.id)
    lock_load_balancer(session, pool.load_balancer_id)
    lock_parents(session, "pool", [pool])
    lock_parents(session, "listener", pool.listeners)


def apply_changes(obj: Any, changes: dict[str, Any], renames: dict[str, str]) -> None:
    """Set API-named ``changes`` on a row; ``renames`` maps API names that differ in the DB."""
    for key, value in changes.items():
        setattr(obj, renames.get(key, key), value)


def submit_change(session: Session, lb_id: str, **targets: list[str]) -> None:
    """Queue the flow that pushes the change and settles the targets' statuses."""
    actions.change(session, lb_id=lb_id, targets=targets)


QUOTA_COUNTED: dict[str, tuple[str, Any, str]] = {
    # API resource name: (quota column, model, config default option)
    "loadbalancer": ("load_balancer", LoadBalancer, "default_load_balancer_quota"),
    "listener": ("listener", Listener, "default_listener_quota"),
    "pool": ("pool", Pool, "default_pool_quota"),
    "healthmonitor": ("health_monitor", HealthMonitor, "default_health_monitor_quota"),
    "member": ("member", Member, "default_member_quota"),
    "l7policy": ("l7policy", L7Policy, "default_l7policy_quota"),
    "l7rule": ("l7rule", L7Rule, "default_l7rule_quota"),
}


def quota_limit(session: Session, settings: Settings, project_id: str, resource: str) -> int:
    column, _, default_option = QUOTA_COUNTED[resource]
    row = session.get(Quota, project_id)
    value: int | None = getattr(row, column) if row is not None else None
    default: int = getattr(settings.quotas, default_option)
    return default if value is None else value


def quota_usage(session: Session, project_id: str, resource: str) -> int:
    _, model, _ = QUOTA_COUNTED[resource]
    stmt = select(func.count()).select_from(model).where(model.project_id == project_id)
    if model is LoadBalancer:
        stmt = stmt.where(LoadBalancer.provisioning_status != constants.DELETED)
    return session.scalar(stmt) or 0


def _lock_project(session: Session, project_id: str) -> None:
    """Lock the project's quota row (creating it empty if needed); SQLite is locked already."""
    if session.get_bind().dialect.name == "sqlite":
        return
    locked = select(Quota).where(Quota.project_id == project_id).with_for_update()
    if session.execute(locked).first() is None:
        try:
            with session.begin_nested():
                session.add(Quota(project_id=project_id))
        except IntegrityError:
            pass  # another writer created it first; locking it below waits for them
        session.execute(locked)


def check_quota(session: Session, settings: Settings, project_id: str | None,
                wanted: dict[str, int]) -> None:
    """403 if creating ``wanted`` objects would exceed any of the project's quotas; 400 for
    an object of no project (none to count it against, as upstream).

    Runs inside the write transaction that creates the objects; writers are serialized
    (SQLite's write lock, or the quota row's lock elsewhere), so two creates cannot both
    squeeze under the limit.
    """
    if project_id is None:
        raise faults.MissingProjectID()
    _lock_project(session, project_id)
    over = []
    for resource, count in wanted.items():
        if count <= 0:
            continue
        limit = quota_limit(session, settings, project_id, resource)
        if limit != constants.QUOTA_UNLIMITED and quota_usage(session, project_id, resource) + count > limit:
            over.append(resource)
    if over:
        raise faults.QuotaException(resource=", ".join(over))


def list_objects(request: Request, api: ApiState, ctx: RequestContext, stmt: Select[Any],
                 collection: listing.Collection, to_api: Callable[[Any], dict[str, Any]],
                 page_to_api: listing.PageToApi | None = None) -> dict[str, Any]:
    """A collection's list response, limited to the caller's project unless it sees all."""
    if not ctx.all_projects:
        stmt = stmt.where(collection.model.project_id == ctx.project_id)
    with api.db.read() as session:
        return listing.respond(session, stmt, collection, request.query_params, api.settings,
                               str(request.url).split("?")[0], to_api, page_to_api)


def rendered(content: dict[str, Any]) -> Response:
    """``content`` as JSON, the bytes FastAPI would send through the route's response model,
    without checking it against that model again: for a page of 1,000 load balancers the
    check and its serialization took longer (30 ms) than reading them. For a body whose
    values ``to_api`` already gives in their response types. Serialized by pydantic's
    own serializer, the one the model would use (a tenth of ``json.dumps``'s time)."""
    return Response(pydantic_core.to_json(content), media_type="application/json")


def show_object(request: Request, api: ApiState, root: str, item: dict[str, Any]) -> dict[str, Any]:
    """One object's response, trimmed to the ``fields`` asked for."""
    return {root: listing.select_fields(item, listing.parse_fields(request.query_params, api.settings))}
