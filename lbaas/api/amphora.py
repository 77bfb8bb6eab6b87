"""``/v2/octavia/amphorae`` (admin): the amphorae behind load balancers, their failover,
configuration push, statistics and removal."""
from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lbaas import constants
from lbaas.api import faults, listing, resource
from lbaas.api.common import ApiState, context, in_event_loop, show_object, state
from lbaas.api.context import RequestContext
from lbaas.api.resource import Out
from lbaas.config import Settings
from lbaas.controller import actions
from lbaas.db import status
from lbaas.db.models import ROW_ONLY, Amphora, Listener, ListenerStatistics, utcnow
from lbaas.db.rows import changed

router = APIRouter(prefix="/octavia/amphorae", tags=["amphorae"])
RESOURCE = "Amphora"
OPTIONAL_TEXT = ("compute_id", "lb_network_ip", "vrrp_ip", "ha_ip", "vrrp_port_id", "ha_port_id")
AMPHORA = resource.Resource("amphora", Amphora, plural="amphorae", tagged=False, outputs=(
    resource.ID, Out.of("loadbalancer_id", str | None, "load_balancer_id"),
    *(Out.of(name, str | None) for name in OPTIONAL_TEXT),
    Out.of("cert_expiration", str | None, shape=resource.timestamp),
    Out.of("cert_busy", bool), Out.of("role", str | None), Out.of("status", str),
    Out.of("vrrp_interface", str | None), Out.of("vrrp_id", int | None),
    Out.of("vrrp_priority", int | None), Out.of("cached_zone", str | None),
    *resource.TIMESTAMPS, Out.of("image_id", str | None), Out.of("compute_flavor", str | None)))


class AmphoraStatistics(BaseModel):
    id: str
    listener_id: str
    loadbalancer_id: str
    active_connections: int
    bytes_in: int
    bytes_out: int
    request_errors: int
    total_connections: int


class AmphoraStatisticsRootResponse(BaseModel):
    amphora_stats: list[AmphoraStatistics]


def shows_zones(settings: Settings) -> bool:
    """Whether amphorae are placed in zones: the hosts of the compute agent driver, or the
    failure domains of ``[compute] hosts``, when the operator lists them. By default every
    amphora runs on this one host and no zone applies, so ``cached_zone`` is null (as
    upstream's without availability zones)."""
    return ("hosts" in settings.compute.model_fields_set
            or settings.controller_worker.compute_driver == "compute_agent_driver")


def to_api(amphora: Amphora, zones: bool) -> dict[str, Any]:
    body = AMPHORA.to_api(amphora)
    if not zones:
        body["cached_zone"] = None
    return body


def _find(session: Session, amphora_id: str) -> Amphora:
    """The amphora, or 404 if it does not exist or was deleted (as upstream)."""
    amphora = session.get(Amphora, amphora_id, options=ROW_ONLY)
    if amphora is None or amphora.status == constants.DELETED:
        raise faults.NotFound(resource=RESOURCE, id=amphora_id)
    return amphora


@router.get("", summary="List amphorae",
            response_model=AMPHORA.list_root, response_model_exclude_unset=True)
@in_event_loop
def list_all(request: Request, api: ApiState = Depends(state),
             ctx: RequestContext = Depends(context)) -> Any:
    stmt = select(Amphora).options(*ROW_ONLY).where(Amphora.status != constants.DELETED)
    with api.db.read() as session:
        return listing.respond(session, stmt, AMPHORA.collection, request.query_params, api.settings,
                               str(request.url).split("?")[0],
                               functools.partial(to_api, zones=shows_zones(api.settings)))


@router.get("/{amphora_id}", summary="Show an amphora",
            response_model=AMPHORA.response_root, response_model_exclude_unset=True)
@in_event_loop
def show(amphora_id: str, request: Request, api: ApiState = Depends(state),
         ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        return show_object(request, api, "amphora",
                           to_api(_find(session, amphora_id), shows_zones(api.settings)))


@router.put("/{amphora_id}/failover", status_code=202, summary="Fail over an amphora")
def failover(amphora_id: str, api: ApiState = Depends(state),
             ctx: RequestContext = Depends(context)) -> Response:
    """Replace the amphora: its load balancer goes PENDING_UPDATE (409 unless ACTIVE) until
    a new amphora serves in its role. A spare is simply removed (the pool makes another)."""
    with api.db.write() as session:
        amphora = _find(session, amphora_id)
        lb_id = amphora.load_balancer_id
        if lb_id is None:
            _mark_for_delete(session, amphora, (constants.READY, constants.ERROR))
            actions.delete_amphora(session, amphora_id=amphora_id)
        else:
            if not status.test_and_set(session, lb_id, constants.PENDING_UPDATE):
                raise faults.ImmutableObject(resource="Load Balancer", id=lb_id)
            actions.failover_amphora(session, lb_id=lb_id, amphora_id=amphora_id)
    api.wakeup.notify()
    return Response(status_code=202)


@router.put("/{amphora_id}/config", status_code=202,
            summary="Push the configuration to an amphora again")
def configure(amphora_id: str, api: ApiState = Depends(state),
              ctx: RequestContext = Depends(context)) -> Response:
    with api.db.write() as session:
        _find(session, amphora_id)
        actions.update_amphora_config(session, amphora_id=amphora_id)
    api.wakeup.notify()
    return Response(status_code=202)


@router.get("/{amphora_id}/stats", response_model=AmphoraStatisticsRootResponse,
            summary="Show an amphora's per-listener statistics")
@in_event_loop
def stats(amphora_id: str, api: ApiState = Depends(state),
          ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        _find(session, amphora_id)
        rows = session.execute(
            select(ListenerStatistics, Listener.load_balancer_id)
            .join(Listener, Listener.id == ListenerStatistics.listener_id)
            .where(ListenerStatistics.amphora_id == amphora_id)
            .order_by(ListenerStatistics.listener_id)).all()
        if not rows:
            raise faults.NotFound(resource="Amphora stats for", id=amphora_id)
        return {"amphora_stats": [
            {"id": amphora_id, "listener_id": row.listener_id, "loadbalancer_id": lb_id,
             "active_connections": row.active_connections, "bytes_in": row.bytes_in,
             "bytes_out": row.bytes_out, "request_errors": row.request_errors,
             "total_connections": row.total_connections}
            for row, lb_id in rows]}


def _mark_for_delete(session: Session, amphora: Amphora, allowed: tuple[str, ...]) -> None:
    """PENDING_DELETE if the status is one of ``allowed`` (one conditional UPDATE), else 409."""
    marked = changed(session,
        update(Amphora).where(Amphora.id == amphora.id, Amphora.status.in_(allowed))
        .values(status=constants.PENDING_DELETE, updated_at=utcnow())
        .execution_options(synchronize_session=False))
    if not marked:
        raise faults.ImmutableObject(resource=RESOURCE, id=amphora.id)


@router.delete("/{amphora_id}", status_code=204, summary="Delete an amphora in ERROR")
def delete(amphora_id: str, api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Response:
    """Remove a failed (or spare) amphora; any other status is 409, as upstream."""
    with api.db.write() as session:
        amphora = _find(session, amphora_id)
        _mark_for_delete(session, amphora, (constants.READY, constants.ERROR))
        actions.delete_amphora(session, amphora_id=amphora_id)
    api.wakeup.notify()
    return Response(status_code=204)
