"""``/v2/lbaas/l7policies``: ordered routing policies of HTTP and TERMINATED_HTTPS listeners.

A policy REJECTs, redirects (REDIRECT_TO_URL, REDIRECT_PREFIX) or sends to another pool of
the load balancer (REDIRECT_TO_POOL) the requests that match all its rules. ``position``
numbers a listener's policies 1..n; inserting, moving and deleting re-number them.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import AfterValidator, Field, StringConstraints
from rfc3986 import uri_reference, validators
from rfc3986.exceptions import RFC3986Exception
from sqlalchemy import select
from sqlalchemy.orm import Session

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
    lock_load_balancer,
    lock_parents,
    show_object,
    state,
    submit_change,
)
from lbaas.api.context import RequestContext
from lbaas.api.l7rule import L7RuleSingleCreate, check_rule_count, new_rule, validate_rule
from lbaas.api.pool import check_protocols
from lbaas.api.resource import Api, SentProjectId, text
from lbaas.api.types import Description, Name, OneOf, Schema, Tags, Uuid, updates
from lbaas.db import l7_order
from lbaas.db.models import L7Policy, Listener, Pool

router = APIRouter(prefix="/lbaas/l7policies", tags=["l7 policies"])
RESOURCE = "L7Policy"


URL_RULES = (validators.Validator().require_presence_of("scheme", "host")
             .allow_schemes("http", "https")
             .check_validity_of("scheme", "userinfo", "host", "port", "path", "query", "fragment"))


def _url(value: str) -> str:
    """An absolute http or https URL (upstream's ``URLType``, also checked with rfc3986)."""
    try:
        URL_RULES.validate(uri_reference(value))
    except (RFC3986Exception, ValueError) as exc:
        raise ValueError(f"Not a valid URL: {value}") from exc
    return validate.redirect_url(value)


Action = Annotated[str, OneOf(constants.L7POLICY_ACTIONS)]
Url = Annotated[str, StringConstraints(max_length=255), AfterValidator(_url)]
RedirectCode = Annotated[int, OneOf(constants.L7POLICY_REDIRECT_HTTP_CODES)]
Position = Annotated[int, Field(ge=constants.MIN_POLICY_POSITION, le=constants.MAX_POLICY_POSITION)]

# The field each action needs, and the action a redirect target implies when none is sent.
TARGETS = {
    constants.L7POLICY_ACTION_REDIRECT_TO_POOL: "redirect_pool_id",
    constants.L7POLICY_ACTION_REDIRECT_TO_URL: "redirect_url",
    constants.L7POLICY_ACTION_REDIRECT_PREFIX: "redirect_prefix",
}
REDIRECTS = (constants.L7POLICY_ACTION_REDIRECT_TO_URL, constants.L7POLICY_ACTION_REDIRECT_PREFIX)


class L7PolicyFields(Schema):
    """A policy's settings: the part of every body that creates a policy."""

    name: Annotated[Name | None, Api(out=text)] = None
    description: Annotated[Description | None, Api(out=text)] = None
    admin_state_up: Annotated[bool, Api(column="enabled")] = True
    action: Action
    redirect_url: Url | None = None
    redirect_prefix: Url | None = None
    redirect_http_code: RedirectCode | None = None
    position: Position = constants.MAX_POLICY_POSITION
    # Created with the policy, changed through their own resource; shown by id.
    rules: Annotated[list[L7RuleSingleCreate] | None, Api(
        update=False, filter=False, out=resource.ids, shown_as=list[resource.Ref])] = None
    tags: Tags | None = None


class L7PolicyPOST(L7PolicyFields):
    listener_id: Annotated[Uuid, Api(update=False)]
    redirect_pool_id: Uuid | None = None
    project_id: SentProjectId = None


PUT_DEFAULTS: dict[str, Any] = {"admin_state_up": True, "tags": []}


class L7PolicyRootPOST(Schema):
    l7policy: L7PolicyPOST


L7POLICY = resource.Resource(
    "l7policy", L7Policy, L7PolicyPOST, plural="l7policies", title="L7Policy",
    outputs=resource.LIFECYCLE)
to_api = L7POLICY.to_api


# --- Rules --------------------------------------------------------------------------------

def resolve_action(current: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """The policy's action and redirect fields after ``sent`` (upstream's sanitizing).

    ``current`` holds the action and redirect fields before the change (all None on a
    create); ``redirect_pool_id`` may be any non-empty marker of a pool (a single create
    names its pool). A sent action decides; without one, a sent redirect target implies
    its action. The fields of other actions are cleared, and redirects get a 302 unless
    another code is given.
    """
    pool, url, prefix = (sent.get(field) for field in TARGETS.values())
    if pool and (url or prefix):
        raise faults.InvalidL7PolicyArgs(
            msg="Cannot specify redirect_pool_id and redirect_url or redirect_prefix at the "
                "same time")
    if "action" in sent:
        action = sent["action"]
        if action is None:
            raise faults.InvalidL7PolicyAction(action=None)
    else:
        implied = [act for act, field in TARGETS.items() if sent.get(field)]
        action = implied[0] if implied else current["action"]
    values = {**current, **sent, "action": action}
    needed = TARGETS.get(action)
    if needed and not values.get(needed):
        what = "redirect_pool_id or redirect_pool" if needed == "redirect_pool_id" else needed
        raise faults.InvalidL7PolicyArgs(msg=f"{what} must not be None")
    result = {field: (values.get(field) if field == needed else None) for field in TARGETS.values()}
    code = values.get("redirect_http_code") or constants.L7POLICY_DEFAULT_REDIRECT_HTTP_CODE
    return {**result, "action": action,
            "redirect_http_code": code if action in REDIRECTS else None}


def check_listener(listener: Listener) -> None:
    """400 unless ``listener`` can have L7 policies (the amphora renders them for HTTP only)."""
    if listener.protocol == constants.PROMETHEUS:
        raise faults.ListenerNoChildren(protocol=listener.protocol)
    if listener.protocol not in constants.L7POLICY_LISTENER_PROTOCOLS:
        raise faults.ValidationException(
            detail=f"L7 policies are only supported on "
                   f"{' and '.join(constants.L7POLICY_LISTENER_PROTOCOLS)} listeners, not on "
                   f"{listener.protocol} listeners.")


def check_redirect_pool(pool: Pool, listener: Listener) -> None:
    """The redirect pool must be on the listener's load balancer (404) and fit its protocol."""
    if pool.load_balancer_id != listener.load_balancer_id:
        raise faults.NotFound(resource="Pool", id=pool.id)
    check_protocols(listener.protocol, pool.protocol)


def _redirect_pool(session: Session, pool_id: str, listener: Listener,
                   ctx: RequestContext) -> Pool:
    pool = get_or_404(session, Pool, pool_id, "Pool", ctx)
    check_redirect_pool(pool, listener)
    return pool


def new_policy(spec: L7PolicyFields, listener: Listener, actions: dict[str, Any]) -> L7Policy:
    """A policy of ``listener`` in PENDING_CREATE / OFFLINE, placed at ``spec.position``,
    with its nested rules (each checked as a rule of its own).

    ``actions`` are the resolved action and redirect fields (``resolve_action``); the
    caller sets the redirect pool.
    """
    policy = L7Policy(project_id=listener.project_id, name=spec.name, description=spec.description,
                      enabled=spec.admin_state_up, provisioning_status=constants.PENDING_CREATE,
                      operating_status=constants.OFFLINE, action=actions["action"],
                      redirect_url=actions["redirect_url"], redirect_prefix=actions["redirect_prefix"],
                      redirect_http_code=actions["redirect_http_code"])
    policy.tags = spec.tags
    rules = spec.rules or []
    check_rule_count(policy, len(rules))
    for body in rules:
        validate_rule(body.type, body.compare_type, body.key, body.value)
        new_rule(body, policy)
    l7_order.renumber(listener.l7policies, policy, spec.position)
    policy.listener = listener
    return policy


def _lock_listener(session: Session, listener: Listener) -> None:
    """As upstream: the load balancer and the listener go PENDING_UPDATE (409 if busy)."""
    lock_load_balancer(session, listener.load_balancer_id)
    lock_parents(session, "listener", [listener])


# --- Handlers -----------------------------------------------------------------------------

@router.post("", status_code=201, summary="Create an L7 policy",
             response_model=L7POLICY.response_root, response_model_exclude_unset=True)
def create(body: L7PolicyRootPOST, api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Any:
    spec = body.l7policy
    with api.db.write() as session:
        listener = get_or_404(session, Listener, spec.listener_id, "Listener", ctx)
        check_listener(listener)
        pool = (_redirect_pool(session, spec.redirect_pool_id, listener, ctx)
                if spec.redirect_pool_id else None)
        check_quota(session, api.settings, listener.project_id,
                    {"l7policy": 1, "l7rule": len(spec.rules or [])})
        actions = resolve_action(dict.fromkeys(("action", *TARGETS.values())),
                                 spec.model_dump(include={"action", *TARGETS.values(),
                                                          "redirect_http_code"}))
        _lock_listener(session, listener)
        policy = new_policy(spec, listener, actions)
        policy.redirect_pool = pool if actions["redirect_pool_id"] else None
        session.add(policy)
        session.flush()
        submit_change(session, listener.load_balancer_id, l7policy=[policy.id],
                      l7rule=[rule.id for rule in policy.rules])
        result = {"l7policy": to_api(policy)}
    api.wakeup.notify()
    return result


@router.get("", summary="List L7 policies",
            response_model=L7POLICY.list_root, response_model_exclude_unset=True)
@in_event_loop
def list_all(request: Request, api: ApiState = Depends(state),
             ctx: RequestContext = Depends(context)) -> Any:
    return list_objects(request, api, ctx, select(L7Policy), L7POLICY.collection, to_api)


@router.get("/{l7policy_id}", summary="Show an L7 policy",
            response_model=L7POLICY.response_root, response_model_exclude_unset=True)
@in_event_loop
def show(l7policy_id: str, request: Request, api: ApiState = Depends(state),
         ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        policy = get_or_404(session, L7Policy, l7policy_id, RESOURCE, ctx)
        return show_object(request, api, "l7policy", to_api(policy))


@router.put("/{l7policy_id}", summary="Update an L7 policy",
            response_model=L7POLICY.response_root, response_model_exclude_unset=True)
def update(l7policy_id: str, body: L7POLICY.put_root,  # type: ignore[name-defined]
           api: ApiState = Depends(state), ctx: RequestContext = Depends(context)) -> Any:
    changes = updates(body.l7policy, PUT_DEFAULTS)
    with api.db.write() as session:
        policy = get_or_404(session, L7Policy, l7policy_id, RESOURCE, ctx)
        listener = policy.listener
        current = {field: getattr(policy, field)
                   for field in ("action", "redirect_http_code", *TARGETS.values())}
        actions = resolve_action(current, {key: value for key, value in changes.items()
                                           if key in current})
        pool = (_redirect_pool(session, actions["redirect_pool_id"], listener, ctx)
                if changes.get("redirect_pool_id") else policy.redirect_pool)
        _lock_listener(session, listener)
        apply_changes(policy, {key: value for key, value in {**changes, **actions}.items()
                               if key not in ("position", "redirect_pool_id")},
                      L7POLICY.renames)
        policy.redirect_pool = pool if actions["redirect_pool_id"] else None
        if changes.get("position") is not None:
            l7_order.renumber(listener.l7policies, policy, changes["position"])
        policy.provisioning_status = constants.PENDING_UPDATE
        session.flush()
        submit_change(session, listener.load_balancer_id, l7policy=[policy.id])
        result = {"l7policy": to_api(policy)}
    api.wakeup.notify()
    return result


@router.delete("/{l7policy_id}", status_code=204, summary="Delete an L7 policy with its rules")
def delete(l7policy_id: str, api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Response:
    """The listener's other policies are re-numbered when the flow removes this one."""
    with api.db.write() as session:
        policy = get_or_404(session, L7Policy, l7policy_id, RESOURCE, ctx)
        _lock_listener(session, policy.listener)
        policy.provisioning_status = constants.PENDING_DELETE
        submit_change(session, policy.listener.load_balancer_id, l7policy=[policy.id])
    api.wakeup.notify()
    return Response(status_code=204)
