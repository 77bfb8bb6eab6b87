"""``/v2/lbaas/pools/{pool_id}/members``: pool members, one by one or as a batch."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from lbaas import constants
from lbaas.api import faults, resource, subnets
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
from lbaas.api.types import IPAddress, Name, Port, Schema, Tags, Uuid, updates
from lbaas.config import Settings
from lbaas.db.models import Member, Pool

router = APIRouter(prefix="/lbaas/pools/{pool_id}/members", tags=["members"])
RESOURCE = "Member"

Weight = Annotated[int, Field(ge=0, le=256)]


class MemberSingleCreate(Schema):
    """A member as nested in a pool of a fully-populated load balancer create."""

    address: Annotated[IPAddress, Api(column="ip_address", update=False)]
    protocol_port: Annotated[Port, Api(update=False)]
    name: Annotated[Name | None, Api(out=text)] = None
    admin_state_up: Annotated[bool, Api(column="enabled")] = True
    weight: Weight = 1
    backup: bool = False
    subnet_id: Annotated[Uuid | None, Api(update=False)] = None
    monitor_address: IPAddress | None = None
    monitor_port: Port | None = None
    # Shown as the member's ``vnic_type``.
    request_sriov: Annotated[bool, Api(update=False, shown=False, filter=False)] = False
    tags: Tags | None = None


class MemberPOST(MemberSingleCreate):
    project_id: SentProjectId = None


PUT_DEFAULTS: dict[str, Any] = {"admin_state_up": True, "weight": 1, "backup": False, "tags": []}
# A batch entry for an existing member always sets these (they have POST defaults), as upstream.
BATCH_ALWAYS_SET = ("admin_state_up", "weight", "backup")


class MemberRootPOST(Schema):
    member: MemberPOST


class MembersRootPUT(Schema):
    members: list[MemberPOST]


MEMBER = resource.Resource(
    "member", Member, MemberPOST,
    outputs=resource.LIFECYCLE,
    after=(Out.of("vnic_type", str),))
to_api = MEMBER.to_api


def _check_not_reserved(address: str, settings: Settings) -> None:
    ip = ipaddress.ip_address(address)
    if any(ip == ipaddress.ip_address(reserved) for reserved in settings.networking.reserved_ips):
        raise faults.InvalidOption(value=ip.exploded.upper(), option="member address")


def _unusable(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Addresses no member can have: this host or none (loopback, unspecified), not one
    host (multicast, broadcast and the rest of 240.0.0.0/4), or only meaningful on one
    link (link-local: haproxy cannot even resolve one with a zone, ``fe80::1%eth0``)."""
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        return _unusable(mapped)
    return (ip.is_loopback or ip.is_unspecified or ip.is_multicast or ip.is_link_local
            or (ip.version == 4 and ip.is_reserved) or getattr(ip, "scope_id", None) is not None)


def check_member_address(address: str | None, pool: Pool, settings: Settings,
                         option: str = "member address") -> None:
    """400 (upstream's InvalidOption) for an address a member cannot have: an unusable one,
    one of the load balancer's own (a VIP: a request to it loops back into the listener;
    its amphorae's), or one on the management network, where the amphora agents listen."""
    if address is None:
        return
    ip = ipaddress.ip_address(address)
    lb = pool.load_balancer
    own = [lb.vip_address, *(vip.ip_address for vip in lb.additional_vips),
           *(own_address for amphora in lb.amphorae
             for own_address in (amphora.vrrp_ip, amphora.ha_ip, amphora.lb_network_ip))
           ] if lb else []
    management = ipaddress.ip_network(settings.networking.lb_network_cidr, strict=False)
    if (_unusable(ip) or any(ip == ipaddress.ip_address(item) for item in own if item)
            or (ip.version == management.version and ip in management)):
        raise faults.InvalidOption(value=address, option=option)


def _check_vip_family(address: str, pool: Pool) -> None:
    """The amphora's LVS (UDP/SCTP) cannot forward between IPv4 and IPv6."""
    lb = pool.load_balancer
    if pool.protocol not in (constants.UDP, constants.SCTP) or not pool.listeners or lb is None:
        return
    vips = [lb.vip_address, *(vip.ip_address for vip in lb.additional_vips)]
    families = {ipaddress.ip_address(vip).version for vip in vips if vip}
    if families and ipaddress.ip_address(address).version not in families:
        raise faults.ProviderUnsupportedOption(
            prov=lb.provider or constants.AMPHORA_PROVIDER,
            user_msg="This provider doesn't support mixing IPv4 and IPv6 addresses for its "
                     f"VIP and members in {pool.protocol} load balancers.")


def validate_member(session: Session, body: MemberSingleCreate, pool: Pool,
                    settings: Settings) -> None:
    """Upstream's checks of a new member of ``pool`` (400, or 501 from the provider)."""
    _check_not_reserved(body.address, settings)
    check_member_address(body.address, pool, settings)
    check_member_address(body.monitor_address, pool, settings, "member monitor address")
    subnets.check_subnet(session, settings, body.subnet_id)
    if body.request_sriov:
        # SR-IOV members need a flavor with allow_member_sriov, and no amphora here has
        # SR-IOV ports to give them.
        raise faults.MemberSRIOVDisabled()
    _check_vip_family(body.address, pool)


def new_member(body: MemberSingleCreate, pool: Pool) -> Member:
    """A new member of ``pool`` in PENDING_CREATE, for a body ``validate_member`` accepted.

    Its operating status is NO_MONITOR unless the pool has a health monitor (then OFFLINE),
    so a caller building a whole tree attaches the pool's health monitor first.
    """
    member = Member(
        pool=pool, project_id=pool.project_id, name=body.name, enabled=body.admin_state_up,
        ip_address=body.address, protocol_port=body.protocol_port, weight=body.weight,
        backup=body.backup, subnet_id=body.subnet_id, monitor_address=body.monitor_address,
        monitor_port=body.monitor_port, vnic_type="normal",
        provisioning_status=constants.PENDING_CREATE,
        operating_status=(constants.NO_MONITOR if pool.health_monitor is None
                          else constants.OFFLINE),
    )
    member.tags = body.tags
    return member


def _pool(session: Session, pool_id: str, ctx: RequestContext) -> Pool:
    return get_or_404(session, Pool, pool_id, "Pool", ctx)


def _member(session: Session, pool: Pool, member_id: str, ctx: RequestContext) -> Member:
    member = get_or_404(session, Member, member_id, RESOURCE, ctx)
    if member.pool_id != pool.id:
        raise faults.NotFound(resource=RESOURCE, id=member_id)
    return member


def check_unique(pool: Pool, address: str, port: int) -> None:
    """409 if the pool already has a member at this address and port."""
    if any(m.ip_address == address and m.protocol_port == port for m in pool.members):
        raise faults.DuplicateMemberEntry(ip_address=address, port=port)


@router.post("", status_code=201, summary="Create a member",
             response_model=MEMBER.response_root, response_model_exclude_unset=True)
def create(pool_id: str, body: MemberRootPOST, api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Any:
    with api.db.write() as session:
        pool = _pool(session, pool_id, ctx)
        validate_member(session, body.member, pool, api.settings)
        check_quota(session, api.settings, pool.project_id, {"member": 1})
        lock_pool(session, pool)
        check_unique(pool, body.member.address, body.member.protocol_port)
        member = new_member(body.member, pool)
        session.add(member)
        session.flush()
        submit_change(session, pool.load_balancer_id, member=[member.id])
        result = {"member": to_api(member)}
    api.wakeup.notify()
    return result


@router.get("", summary="List the members of a pool",
            response_model=MEMBER.list_root, response_model_exclude_unset=True)
@in_event_loop
def list_all(pool_id: str, request: Request, api: ApiState = Depends(state),
             ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        _pool(session, pool_id, ctx)
    return list_objects(request, api, ctx, select(Member).where(Member.pool_id == pool_id),
                        MEMBER.collection, to_api)


@router.get("/{member_id}", summary="Show a member",
            response_model=MEMBER.response_root, response_model_exclude_unset=True)
@in_event_loop
def show(pool_id: str, member_id: str, request: Request, api: ApiState = Depends(state),
         ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        member = _member(session, _pool(session, pool_id, ctx), member_id, ctx)
        return show_object(request, api, "member", to_api(member))


@router.put("/{member_id}", summary="Update a member",
            response_model=MEMBER.response_root, response_model_exclude_unset=True)
def update(pool_id: str, member_id: str,
           body: MEMBER.put_root,  # type: ignore[name-defined]
           api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Any:
    with api.db.write() as session:
        pool = _pool(session, pool_id, ctx)
        member = _member(session, pool, member_id, ctx)
        check_member_address(body.member.monitor_address, pool, api.settings,
                             "member monitor address")
        lock_pool(session, pool, constants.DELETABLE_STATUSES)
        apply_changes(member, updates(body.member, PUT_DEFAULTS), MEMBER.renames)
        member.provisioning_status = constants.PENDING_UPDATE
        session.flush()
        submit_change(session, pool.load_balancer_id, member=[member.id])
        result = {"member": to_api(member)}
    api.wakeup.notify()
    return result


@router.delete("/{member_id}", status_code=204, summary="Delete a member")
def delete(pool_id: str, member_id: str, api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Response:
    with api.db.write() as session:
        pool = _pool(session, pool_id, ctx)
        member = _member(session, pool, member_id, ctx)
        lock_pool(session, pool, constants.DELETABLE_STATUSES)
        member.provisioning_status = constants.PENDING_DELETE
        submit_change(session, pool.load_balancer_id, member=[member.id])
    api.wakeup.notify()
    return Response(status_code=204)


@dataclass
class BatchPlan:
    """What a batch update does to a pool's members."""

    created: list[MemberPOST] = field(default_factory=list)
    updated: list[tuple[Member, MemberPOST]] = field(default_factory=list)
    deleted: list[Member] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.created or self.updated or self.deleted)


def plan_batch(pool: Pool, wanted: list[MemberPOST], additive_only: bool) -> BatchPlan:
    """Match the wanted members to the pool's by (address, protocol_port)."""
    existing = {(m.ip_address, m.protocol_port): m for m in pool.members}
    plan = BatchPlan()
    seen: set[tuple[str, int]] = set()
    for body in wanted:
        key = (body.address, body.protocol_port)
        if key in seen:
            raise faults.ValidationException(
                detail=f"Member with address {key[0]} and protocol_port {key[1]} "
                       "is specified more than once.")
        seen.add(key)
        if key in existing:
            plan.updated.append((existing[key], body))
        else:
            plan.created.append(body)
    if not additive_only:
        plan.deleted = [m for key, m in existing.items() if key not in seen]
    return plan


def _batch_changes(body: MemberPOST) -> dict[str, Any]:
    """What a batch entry sets on an existing member: what it sent plus the defaulted fields."""
    sent = body.model_dump(include=set(MEMBER.put_model.model_fields))
    return {key: value for key, value in sent.items()
            if key in body.model_fields_set or key in BATCH_ALWAYS_SET}


def _check_mutable(pool: Pool) -> None:
    """409 unless a change to ``pool`` could start now (without taking the lock)."""
    if pool.provisioning_status not in constants.MUTABLE_STATUSES:
        raise faults.ImmutableObject(resource="Pool", id=pool.id)
    if pool.load_balancer.provisioning_status not in constants.MUTABLE_STATUSES:
        raise faults.ImmutableObject(resource="Load Balancer", id=pool.load_balancer_id)


def _truthy(value: str) -> bool:
    """oslo's ``bool_from_string``: anything unrecognised is False."""
    return value.strip().lower() in ("1", "t", "true", "on", "y", "yes")


@router.put("", status_code=202, summary="Replace (or add to) the members of a pool")
def batch_update(pool_id: str, body: MembersRootPUT, additive_only: str = Query("false"),
                 api: ApiState = Depends(state),
                 ctx: RequestContext = Depends(context)) -> Response:
    with api.db.write() as session:
        pool = _pool(session, pool_id, ctx)
        plan = plan_batch(pool, body.members, _truthy(additive_only))
        for wanted in plan.created:
            validate_member(session, wanted, pool, api.settings)
        for _, wanted in plan.updated:
            check_member_address(wanted.monitor_address, pool, api.settings,
                                 "member monitor address")
        if plan.is_empty():
            _check_mutable(pool)
            return Response(status_code=202)
        check_quota(session, api.settings, pool.project_id,
                    {"member": len(plan.created) - len(plan.deleted)})
        lock_pool(session, pool)
        targets = _apply_batch(session, pool, plan)
        submit_change(session, pool.load_balancer_id, member=targets)
    api.wakeup.notify()
    return Response(status_code=202)


def _apply_batch(session: Session, pool: Pool, plan: BatchPlan) -> list[str]:
    """Write the plan's rows with their PENDING_* statuses; the ids the flow settles."""
    created = [new_member(wanted, pool) for wanted in plan.created]
    session.add_all(created)
    for member, wanted in plan.updated:
        apply_changes(member, _batch_changes(wanted), MEMBER.renames)
        member.provisioning_status = constants.PENDING_UPDATE
    for member in plan.deleted:
        member.provisioning_status = constants.PENDING_DELETE
    session.flush()
    return [m.id for m in [*created, *(m for m, _ in plan.updated), *plan.deleted]]
