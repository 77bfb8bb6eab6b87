"""``/v2.0/networks`` and ``/v2.0/subnets``: the registry, read-only, in Neutron's shape.

Clients such as ``openstack loadbalancer create --vip-subnet-id NAME`` and
``openstack subnet list`` look networks and subnets up through the network API at the
same endpoint; these routes answer them. Lists follow Neutron's semantics: any field
filters (a repeated parameter matches any of its values), ``fields``, ``sort_key`` /
``sort_dir``, ``limit`` / ``marker`` / ``page_reverse`` with ``<collection>_links``.
Errors are Neutron's ``{"NeutronError": {"type", "message", "detail"}}``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.datastructures import QueryParams

from lbaas.api import listing
from lbaas.api.common import ApiState, context, in_event_loop, state
from lbaas.api.context import RequestContext
from lbaas.api.resource import timestamp
from lbaas.db.models import Network, Subnet
from lbaas.network import management, registry

router = APIRouter(tags=["networks (read-only)"])

PAGING_PARAMS = {"limit", "marker", "page_reverse", "sort_key", "sort_dir", "fields"}


class NetworkResponse(BaseModel):
    """One network as Neutron shows it (documentation of ``network_to_api``)."""

    id: str
    name: str
    description: str
    status: str
    admin_state_up: bool
    subnets: list[str]
    shared: bool
    project_id: str
    tenant_id: str
    router_external: bool = Field(alias="router:external")
    mtu: int
    port_security_enabled: bool
    provider_network_type: str = Field(alias="provider:network_type")
    provider_physical_network: str | None = Field(alias="provider:physical_network")
    provider_segmentation_id: int | None = Field(alias="provider:segmentation_id")
    availability_zone_hints: list[str]
    availability_zones: list[str]
    l2_adjacency: bool
    tags: list[str]
    created_at: str | None
    updated_at: str | None


class AllocationPool(BaseModel):
    start: str
    end: str


class SubnetResponse(BaseModel):
    """One subnet as Neutron shows it (documentation of ``subnet_to_api``)."""

    id: str
    name: str
    description: str
    network_id: str
    cidr: str
    ip_version: int
    gateway_ip: str | None
    allocation_pools: list[AllocationPool]
    enable_dhcp: bool
    dns_nameservers: list[str]
    host_routes: list[dict[str, str]]
    ipv6_address_mode: str | None
    ipv6_ra_mode: str | None
    subnetpool_id: str | None
    segment_id: str | None
    service_types: list[str]
    project_id: str
    tenant_id: str
    tags: list[str]
    created_at: str | None
    updated_at: str | None


class NetworkRootResponse(BaseModel):
    network: NetworkResponse


class SubnetRootResponse(BaseModel):
    subnet: SubnetResponse


def _neutron_time(value: Any) -> str | None:
    stamp = timestamp(value)
    return f"{stamp}Z" if stamp else None


def network_to_api(network: Network) -> dict[str, Any]:
    project = network.project_id or ""
    return {
        "id": network.id,
        "name": network.name,
        "description": "",
        "status": "ACTIVE",
        "admin_state_up": True,
        "subnets": [subnet.id for subnet in network.subnets],
        "shared": network.shared,
        "project_id": project,
        "tenant_id": project,
        "router:external": False,
        "mtu": network.mtu,
        "port_security_enabled": False,
        # A local network (one host's bridge) looks flat to a Neutron client.
        "provider:network_type": "vxlan" if network.network_type == "vxlan" else "flat",
        "provider:physical_network": network.physical_network or network.physical_interface,
        "provider:segmentation_id": network.segmentation_id,
        "availability_zone_hints": [],
        "availability_zones": [],
        "l2_adjacency": True,
        "tags": [],
        "created_at": _neutron_time(network.created_at),
        "updated_at": _neutron_time(network.updated_at or network.created_at),
    }


def subnet_to_api(subnet: Subnet) -> dict[str, Any]:
    project = subnet.project_id or ""
    return {
        "id": subnet.id,
        "name": subnet.name,
        "description": "",
        "network_id": subnet.network_id,
        "cidr": subnet.cidr,
        "ip_version": subnet.ip_version,
        "gateway_ip": subnet.gateway_ip,
        "allocation_pools": list(subnet.allocation_pools),
        "enable_dhcp": False,
        "dns_nameservers": [],
        "host_routes": [],
        "ipv6_address_mode": None,
        "ipv6_ra_mode": None,
        "subnetpool_id": None,
        "segment_id": None,
        "service_types": [],
        "project_id": project,
        "tenant_id": project,
        "tags": [],
        "created_at": _neutron_time(subnet.created_at),
        "updated_at": _neutron_time(subnet.updated_at or subnet.created_at),
    }


def neutron_error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"NeutronError": {"type": kind, "message": message, "detail": ""}},
                        status_code=status)


class BadRequest(Exception):
    """A list parameter Neutron would refuse with 400."""


def _as_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _matches(value: Any, wanted: list[str]) -> bool:
    """Neutron's equality filter: any of the wanted values; booleans in any case."""
    values = value if isinstance(value, list) else [value]
    texts = {_as_text(item) for item in values if item is not None}
    return any((want.lower() if isinstance(value, bool) else want) in texts for want in wanted)


def _sort_by(key: str) -> Callable[[dict[str, Any]], tuple[bool, Any]]:
    return lambda item: _sort_value(item.get(key))


def _sort_value(value: Any) -> tuple[bool, Any]:
    """Numbers by value, anything else by its text; missing values last."""
    if value is None:
        return (True, "")
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return (False, value if numeric else _as_text(value))


def _filter(items: list[dict[str, Any]], params: QueryParams, known: set[str]) -> list[dict[str, Any]]:
    for name in params.keys():
        if name in PAGING_PARAMS:
            continue
        if name not in known:
            raise BadRequest(f"[{name}] is invalid attribute for filtering")
        items = [item for item in items if _matches(item.get(name), params.getlist(name))]
    return items


def _sort(items: list[dict[str, Any]], params: QueryParams, known: set[str]) -> list[dict[str, Any]]:
    keys = params.getlist("sort_key") or ["id"]
    directions = params.getlist("sort_dir")
    for position in reversed(range(len(keys))):  # stable sorts, least significant key first
        key = keys[position]
        direction = directions[position] if position < len(directions) else "asc"
        if key not in known:
            raise BadRequest(f"{key} is an invalid attribute for sort_key")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"{direction} is an invalid value for sort_dir")
        items = sorted(items, key=_sort_by(key), reverse=direction == "desc")
    return items


def _list_request(params: QueryParams) -> listing.ListRequest:
    raw = params.get("limit") or "0"
    if not (raw.isascii() and raw.isdigit()):
        raise BadRequest(f"Bad limit request: Limit must be an integer 0 or greater and not '{raw}'")
    return listing.ListRequest(limit=int(raw) or None, marker=params.get("marker"),
                               page_reverse=_as_text(params.get("page_reverse", "")) == "true",
                               sort=[], filters={}, tags={}, fields=_fields(params))


def _fields(params: QueryParams) -> list[str]:
    return [item.strip() for raw in params.getlist("fields") for item in raw.split(",") if item.strip()]


def _paginate(items: list[dict[str, Any]], request: listing.ListRequest) -> list[dict[str, Any]]:
    ordered = list(reversed(items)) if request.page_reverse else items
    if request.marker:
        after = next((i + 1 for i, item in enumerate(ordered) if item["id"] == request.marker), 0)
        ordered = ordered[after:]
    page = ordered[:request.limit] if request.limit else ordered
    return list(reversed(page)) if request.page_reverse else page


def _collection(items: list[dict[str, Any]], request: Request, plural: str,
                response: type[BaseModel]) -> dict[str, Any] | JSONResponse:
    """Filter, sort and paginate ``items`` (the registry is small, so in memory)."""
    params = request.query_params
    known = {field.alias or name for name, field in response.model_fields.items()}
    try:
        page_request = _list_request(params)
        page = _paginate(_sort(_filter(items, params, known), params, known), page_request)
    except BadRequest as exc:
        return neutron_error(400, "HTTPBadRequest", str(exc))
    body: dict[str, Any] = {plural: [listing.select_fields(item, page_request.fields) for item in page]}
    if page_request.limit:
        body[f"{plural}_links"] = listing.links(str(request.url).split("?")[0], params, page_request,
                                                [item["id"] for item in page])
    return body


def _visible(ctx: RequestContext, network: Network) -> bool:
    """Shared networks and the caller's own; never the management network (operators see
    it with ``lbaas network list``)."""
    return ((network.shared or ctx.owns(network.project_id))
            and not management.is_management_network(network))


@router.get("/networks", summary="List networks of the local registry")
@in_event_loop
def list_networks(request: Request, api: ApiState = Depends(state),
                  ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        items = [network_to_api(network) for network in registry.list_networks(session)
                 if _visible(ctx, network)]
    return _collection(items, request, "networks", NetworkResponse)


@router.get("/networks/{network_id}", summary="Show a network",
            responses={200: {"model": NetworkRootResponse}})
@in_event_loop
def show_network(network_id: str, request: Request, api: ApiState = Depends(state),
                 ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        network = session.get(Network, network_id)
        if network is None or not _visible(ctx, network):
            return neutron_error(404, "NetworkNotFound", f"Network {network_id} could not be found.")
        item = network_to_api(network)
    return {"network": listing.select_fields(item, _fields(request.query_params))}


@router.get("/subnets", summary="List subnets of the local registry")
@in_event_loop
def list_subnets(request: Request, api: ApiState = Depends(state),
                 ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        items = [subnet_to_api(subnet) for subnet in registry.list_subnets(session)
                 if _visible(ctx, subnet.network)]
    return _collection(items, request, "subnets", SubnetResponse)


@router.get("/subnets/{subnet_id}", summary="Show a subnet",
            responses={200: {"model": SubnetRootResponse}})
@in_event_loop
def show_subnet(subnet_id: str, request: Request, api: ApiState = Depends(state),
                ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        subnet = session.get(Subnet, subnet_id)
        if subnet is None or not _visible(ctx, subnet.network):
            return neutron_error(404, "SubnetNotFound", f"Subnet {subnet_id} could not be found.")
        item = subnet_to_api(subnet)
    return {"subnet": listing.select_fields(item, _fields(request.query_params))}
