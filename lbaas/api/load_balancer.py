"""``/v2/lbaas/loadbalancers``: the load balancer resource and its sub-resources."""
from __future__ import annotations

from typing import Annotated, Any, Unpack

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field
from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session, immediateload, joinedload

from lbaas import constants
from lbaas.api import certificates, faults, resource, single_create, subnets
from lbaas.api.availability_zone import apply_availability_zone
from lbaas.api.common import (
    ApiState,
    apply_changes,
    check_quota,
    context,
    get_or_404,
    in_event_loop,
    list_objects,
    lock_load_balancer,
    rendered,
    show_object,
    state,
    submit_change,
)
from lbaas.api.context import RequestContext
from lbaas.api.flavor import apply_flavor
from lbaas.api.resource import Api, Out, SentProjectId, as_list, list_of, text
from lbaas.api.single_create import (
    ListenerFullResponse,
    ListenerSingleCreate,
    PoolFullResponse,
    PoolSingleCreate,
)
from lbaas.api.stats import statistics
from lbaas.api.types import Description, IPAddress, Name, Schema, Tags, Uuid, updates
from lbaas.controller import actions
from lbaas.db import status
from lbaas.db.models import AdditionalVip, Listener, LoadBalancer, Pool, Tag, new_id
from lbaas.drivers.network.base import VipRequest
from lbaas.network.errors import AddressInUse, NetworkError, NoFreeAddress

router = APIRouter(prefix="/lbaas/loadbalancers", tags=["load balancers"])
RESOURCE = "Load Balancer"


class AdditionalVipPOST(Schema):
    subnet_id: Uuid
    ip_address: IPAddress | None = None
    port_id: Uuid | None = None


def _additional_vips(vips: list[AdditionalVip]) -> list[dict[str, str | None]]:
    return [{"subnet_id": vip.subnet_id, "ip_address": vip.ip_address, "port_id": vip.port_id}
            for vip in vips]


# Children created with the load balancer, changed through their own resources.
CHILDREN = Api(update=False, filter=False, out=resource.ids, shown_as=list[resource.Ref])


class LoadBalancerPOST(Schema):
    name: Annotated[Name | None, Api(out=text)] = None
    description: Annotated[Description | None, Api(out=text)] = None
    admin_state_up: Annotated[bool, Api(column="enabled")] = True
    vip_address: Annotated[IPAddress | None, Api(update=False)] = None
    vip_port_id: Annotated[Uuid | None, Api(update=False)] = None
    vip_subnet_id: Annotated[Uuid | None, Api(update=False)] = None
    vip_network_id: Annotated[Uuid | None, Api(update=False)] = None
    vip_qos_policy_id: Uuid | None = None
    vip_sg_ids: Annotated[list[Uuid] | None, Api(out=as_list)] = None
    additional_vips: Annotated[list[AdditionalVipPOST], Api(
        update=False, out=_additional_vips, shown_as=list[dict[str, str | None]])] = []
    # Upstream shows the default provider by its old name.
    provider: Annotated[str | None, Field(max_length=64),
                        Api(update=False, out=lambda name: name or "octavia")] = None
    flavor_id: Annotated[Uuid | None, Api(update=False)] = None
    availability_zone: Annotated[Name | None, Api(update=False)] = None
    tags: Tags | None = None
    project_id: SentProjectId = None
    # The fully-populated create (see single_create).
    listeners: Annotated[list[ListenerSingleCreate], CHILDREN] = []
    pools: Annotated[list[PoolSingleCreate], CHILDREN] = []


PUT_DEFAULTS: dict[str, Any] = {"admin_state_up": True, "tags": [], "vip_sg_ids": []}


class LoadBalancerRootPOST(Schema):
    loadbalancer: LoadBalancerPOST


LOAD_BALANCER = resource.Resource(
    "loadbalancer", LoadBalancer, LoadBalancerPOST, title="LoadBalancer",
    outputs=resource.LIFECYCLE,
    after=(Out.of("vip_vnic_type", str),))
to_api = LOAD_BALANCER.to_api
# The create's response: listeners and pools as full objects.
CREATED = LOAD_BALANCER.rooted("LoadBalancerFullRootResponse", LOAD_BALANCER.variant(
    "LoadBalancerFullResponse", listeners=list_of(ListenerFullResponse),
    pools=list_of(PoolFullResponse)))


# How show loads what ``to_api`` reads: two queries, where the models' default takes one
# per collection plus one per collection of each child. Only the children's ids are
# read, so their own relationships stay unloaded; pools are a query of their own so
# that the join grows with listeners x tags x additional VIPs, never x pools (for one
# object, a plain lazy load issued at once is cheaper than a selectin load).
SHOW_LOADING = (joinedload(LoadBalancer.tag_rows), joinedload(LoadBalancer.additional_vips),
                joinedload(LoadBalancer.listeners).load_only(Listener.id).lazyload("*"),
                immediateload(LoadBalancer.pools).load_only(Pool.id).lazyload("*"))
# A list reads its page as plain rows, not objects: the load balancers' columns, then
# (``page_to_api``) their children's ids, tags and additional VIPs, a query each for the
# whole page. For 1,000 populated load balancers, selectin loads of the children (even of
# their ids alone) took 170 ms and the load balancers as objects 20; as rows, 15 in all.
LIST_COLUMNS = tuple(LoadBalancer.__table__.columns)
IDS_PER_QUERY = 1000  # ids in one IN (...): a default page in one query


def _children(*columns: Any, order_by: Any = None) -> Select[Unpack[tuple[Any, ...]]]:
    """The rows of ``columns`` whose first (a load balancer's id) is in the ``ids``
    parameter. Built once: a statement made per request cost a fifth of a list's CPU in
    its construction and its cache key, which SQLAlchemy keeps on the statement."""
    stmt = select(*columns).where(columns[0].in_(bindparam("ids", expanding=True)))
    return stmt if order_by is None else stmt.order_by(order_by)


LISTENER_IDS = _children(Listener.load_balancer_id, Listener.id, order_by=Listener.created_at)
POOL_IDS = _children(Pool.load_balancer_id, Pool.id, order_by=Pool.created_at)
TAGS = _children(Tag.resource_id, Tag.tag, order_by=Tag.tag)
ADDITIONAL_VIPS = _children(AdditionalVip.load_balancer_id, AdditionalVip.subnet_id,
                            AdditionalVip.ip_address, AdditionalVip.port_id)


def _by_load_balancer(session: Session, stmt: Select[Unpack[tuple[Any, ...]]],
                      ids: list[str]) -> dict[str, list[Any]]:
    """The rows of a ``_children`` statement for ``ids``, grouped by load balancer, each
    group in the statement's order. Run as Core, not through the ORM: plain rows need
    none of its loading, which took half the time."""
    found: dict[str, list[Any]] = {}
    connection = session.connection()
    for start in range(0, len(ids), IDS_PER_QUERY):
        for row in connection.execute(stmt, {"ids": ids[start:start + IDS_PER_QUERY]}):
            found.setdefault(row[0], []).append(row)
    return found


def page_to_api(session: Session, rows: list[Any]) -> list[dict[str, Any]]:
    """A page of load balancers (rows of ``LIST_COLUMNS``) as ``to_api`` shows them, with
    their children's ids, tags and additional VIPs read for the whole page, in the
    relationships' order."""
    ids = [lb.id for lb in rows]
    listeners = _by_load_balancer(session, LISTENER_IDS, ids)
    pools = _by_load_balancer(session, POOL_IDS, ids)
    tags = _by_load_balancer(session, TAGS, ids)
    vips = _by_load_balancer(session, ADDITIONAL_VIPS, ids)
    return [to_api(lb, {"listeners": [{"id": row.id} for row in listeners.get(lb.id, ())],
                        "pools": [{"id": row.id} for row in pools.get(lb.id, ())],
                        "tags": [row.tag for row in tags.get(lb.id, ())],
                        "additional_vips": _additional_vips(vips.get(lb.id, []))})
            for lb in rows]


def _validate_vip(body: LoadBalancerPOST, api: ApiState) -> None:
    if not (body.vip_port_id or body.vip_network_id or body.vip_subnet_id):
        raise faults.VIPValidationException(objects="port_id, network_id, subnet_id")
    networking = api.settings.networking
    for field, allowed in (("vip_port_id", networking.allow_vip_port_id),
                           ("vip_network_id", networking.allow_vip_network_id),
                           ("vip_subnet_id", networking.allow_vip_subnet_id)):
        if getattr(body, field) and not allowed:
            raise faults.ValidationException(
                detail=f"{field} is not allowed in this deployment.")
    if body.vip_network_id:
        if networking.valid_vip_networks is not None and body.vip_network_id not in networking.valid_vip_networks:
            raise faults.ValidationException(
                detail=f"Supplied VIP network_id is not allowed: {body.vip_network_id}")
        if body.vip_network_id in networking.denylist_vip_networks:
            raise faults.ValidationException(
                detail=f"Supplied VIP network_id is not allowed: {body.vip_network_id}")
    subnets = [vip.subnet_id for vip in body.additional_vips]
    if len(set(subnets)) != len(subnets) or (body.vip_subnet_id in subnets):
        raise faults.ValidationException(
            detail="Duplicate VIP subnet(s) specified. Only one IP can be bound per subnet.")
    if body.vip_address and body.vip_address in networking.reserved_ips:
        raise faults.ValidationException(
            detail=f"VIP address {body.vip_address} is reserved and cannot be used.")


def validate_provider(provider: str | None, api: ApiState) -> str:
    name = provider or api.settings.api_settings.default_provider_driver
    if name not in api.settings.api_settings.enabled_provider_drivers:
        raise faults.ProviderNotEnabled(prov=name)
    return name


def new_load_balancer(body: LoadBalancerPOST, api: ApiState, ctx: RequestContext) -> LoadBalancer:
    """A validated, unsaved load balancer row in PENDING_CREATE / OFFLINE."""
    project_id = ctx.target_project(body.project_id)
    if not project_id:
        raise faults.MissingProjectID()
    _validate_vip(body, api)
    lb = LoadBalancer(
        id=new_id(), project_id=project_id, name=body.name, description=body.description,
        enabled=body.admin_state_up, provisioning_status=constants.PENDING_CREATE,
        operating_status=constants.OFFLINE,
        topology=api.settings.controller_worker.loadbalancer_topology,
        provider=validate_provider(body.provider, api), vip_address=body.vip_address,
        vip_port_id=body.vip_port_id, vip_subnet_id=body.vip_subnet_id,
        vip_network_id=body.vip_network_id, vip_qos_policy_id=body.vip_qos_policy_id,
        vip_sg_ids=body.vip_sg_ids or [],
        additional_vips=[AdditionalVip(subnet_id=vip.subnet_id, ip_address=vip.ip_address,
                                       port_id=vip.port_id) for vip in body.additional_vips],
    )
    lb.tags = body.tags
    return lb


def reserve_vip(session: Session, api: ApiState, lb: LoadBalancer) -> None:
    """Reserve the VIP while answering the create, as upstream does, so that the 201
    already names its address, port, subnet and network (clients print and keep it).

    The port is held in this request's transaction: a create refused for any reason holds
    nothing. The worker's flow finds it (by ``vip_port_id``) and plugs it.
    """
    request = VipRequest(load_balancer_id=lb.id, ip_address=lb.vip_address,
                         port_id=lb.vip_port_id, subnet_id=lb.vip_subnet_id,
                         network_id=lb.vip_network_id)
    try:
        port = api.network.reserve_vip(session, request)
    except (AddressInUse, NoFreeAddress) as exc:
        raise faults.VIPUnavailable(detail=str(exc)) from exc
    except NetworkError as exc:
        raise faults.ValidationException(detail=str(exc)) from exc
    lb.vip_address, lb.vip_port_id = port.ip_address, port.id
    lb.vip_subnet_id, lb.vip_network_id = port.subnet_id, port.network_id


@router.post("", status_code=201, summary="Create a load balancer, optionally with its children",
             response_model=CREATED, response_model_exclude_unset=True)
def create(body: LoadBalancerRootPOST, api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Any:
    spec = body.loadbalancer
    with api.db.write() as session:
        lb = new_load_balancer(spec, api, ctx)
        apply_flavor(session, lb, spec.flavor_id, spec.provider)
        apply_availability_zone(session, lb, spec.availability_zone)
        subnets.check_vip(session, api.settings, spec)
        tree = single_create.plan(spec.listeners, spec.pools)
        check_quota(session, api.settings, lb.project_id, {"loadbalancer": 1, **tree.counts()})
        reserve_vip(session, api, lb)
        single_create.build(session, tree, lb, api.settings)
        certificates.check_load_balancer(lb, api.cert_manager, ctx)
        session.add(lb)  # with everything built on it
        session.flush()
        actions.create_load_balancer(session, lb_id=lb.id)
        result = {"loadbalancer": {**to_api(lb), **single_create.full_children(lb)}}
    api.wakeup.notify()
    return result


@router.get("", summary="List load balancers",
            response_model=LOAD_BALANCER.list_root, response_model_exclude_unset=True)
@in_event_loop
def list_all(request: Request, api: ApiState = Depends(state),
             ctx: RequestContext = Depends(context)) -> Any:
    stmt = select(*LIST_COLUMNS).where(LoadBalancer.provisioning_status != constants.DELETED)
    return rendered(list_objects(request, api, ctx, stmt, LOAD_BALANCER.collection, to_api,
                                 page_to_api))


@router.get("/{lb_id}", summary="Show a load balancer",
            response_model=LOAD_BALANCER.response_root, response_model_exclude_unset=True)
@in_event_loop
def show(lb_id: str, request: Request, api: ApiState = Depends(state),
         ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        lb = get_or_404(session, LoadBalancer, lb_id, RESOURCE, ctx, options=SHOW_LOADING)
        return rendered(show_object(request, api, "loadbalancer", to_api(lb)))


@router.put("/{lb_id}", summary="Update a load balancer",
            response_model=LOAD_BALANCER.response_root, response_model_exclude_unset=True)
def update(lb_id: str, body: LOAD_BALANCER.put_root,  # type: ignore[name-defined]
           api: ApiState = Depends(state), ctx: RequestContext = Depends(context)) -> Any:
    with api.db.write() as session:
        lb = get_or_404(session, LoadBalancer, lb_id, RESOURCE, ctx)
        changes = updates(body.loadbalancer, PUT_DEFAULTS)
        lock_load_balancer(session, lb_id)
        session.refresh(lb)
        apply_changes(lb, changes, LOAD_BALANCER.renames)
        submit_change(session, lb_id, loadbalancer=[lb_id])
        session.flush()
        result = {"loadbalancer": to_api(lb)}
    api.wakeup.notify()
    return result


@router.delete("/{lb_id}", status_code=204, summary="Delete a load balancer")
def delete(lb_id: str, cascade: bool = Query(False), api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Response:
    with api.db.write() as session:
        lb = get_or_404(session, LoadBalancer, lb_id, RESOURCE, ctx)
        if (lb.listeners or lb.pools) and not cascade:
            raise faults.ValidationException(
                detail=f"Cannot delete Load Balancer {lb_id} - it has children")
        if not status.test_and_set(session, lb_id, constants.PENDING_DELETE,
                                   constants.DELETABLE_STATUSES):
            raise faults.ImmutableObject(resource=RESOURCE, id=lb_id)
        actions.delete_load_balancer(session, lb_id=lb_id, cascade=cascade)
    api.wakeup.notify()
    return Response(status_code=204)


@router.put("/{lb_id}/failover", status_code=202, summary="Fail over a load balancer")
def failover(lb_id: str, api: ApiState = Depends(state),
             ctx: RequestContext = Depends(context)) -> Response:
    with api.db.write() as session:
        get_or_404(session, LoadBalancer, lb_id, RESOURCE, ctx)
        if not status.test_and_set(session, lb_id, constants.PENDING_UPDATE,
                                   constants.FAILOVERABLE_STATUSES):
            raise faults.ImmutableObject(resource=RESOURCE, id=lb_id)
        actions.failover_load_balancer(session, lb_id=lb_id)
    api.wakeup.notify()
    return Response(status_code=202)


def _status_tree(lb: LoadBalancer) -> dict[str, Any]:
    def statuses(obj: Any, **extra: Any) -> dict[str, Any]:
        return {"id": obj.id, "name": obj.name or "",
                "operating_status": obj.operating_status,
                "provisioning_status": obj.provisioning_status, **extra}

    def pool_tree(pool: Any) -> dict[str, Any]:
        tree = statuses(pool, members=[
            statuses(m, address=m.ip_address, protocol_port=m.protocol_port)
            for m in pool.members])
        if pool.health_monitor is not None:
            tree["health_monitor"] = statuses(pool.health_monitor, type=pool.health_monitor.type)
        return tree

    return {"statuses": {"loadbalancer": statuses(lb, listeners=[
        statuses(listener, pools=[pool_tree(pool) for pool in _listener_pools(listener)])
        for listener in lb.listeners])}}


def _listener_pools(listener: Any) -> list[Any]:
    """As upstream's listener data model: the default pool and the pools its L7 policies use."""
    pools = [listener.default_pool, *(policy.redirect_pool for policy in listener.l7policies)]
    return list({pool.id: pool for pool in pools if pool is not None}.values())


@router.get("/{lb_id}/status", summary="Show a load balancer's status tree")
@router.get("/{lb_id}/statuses", include_in_schema=False)
@in_event_loop
def status_tree(lb_id: str, api: ApiState = Depends(state),
                ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        return _status_tree(get_or_404(session, LoadBalancer, lb_id, RESOURCE, ctx))


@router.get("/{lb_id}/stats", summary="Show a load balancer's statistics")
@in_event_loop
def stats(lb_id: str, api: ApiState = Depends(state),
          ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        lb = get_or_404(session, LoadBalancer, lb_id, RESOURCE, ctx)
        return {"stats": statistics(session, [listener.id for listener in lb.listeners])}
