"""``/v2/lbaas/l7policies/{l7policy_id}/rules``: the match conditions of an L7 policy.

A policy applies when all its enabled rules match (``invert`` negates one). Root keys are
``rule``/``rules``, as upstream's.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import StringConstraints
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
from lbaas.api.resource import Api, SentProjectId
from lbaas.api.types import OneOf, Schema, Tags, no_control_characters, updates
from lbaas.db.models import L7Policy, L7Rule

router = APIRouter(prefix="/lbaas/l7policies/{l7policy_id}/rules", tags=["l7 rules"])
RESOURCE = "L7Rule"

RuleType = Annotated[str, OneOf(constants.L7RULE_TYPES)]
CompareType = Annotated[str, OneOf(constants.L7RULE_COMPARE_TYPES)]
OneLine = Annotated[str, StringConstraints(max_length=255), no_control_characters]


class L7RuleSingleCreate(Schema):
    """A rule as nested in a policy (of a policy create or a fully-populated LB create)."""

    type: RuleType
    compare_type: CompareType
    key: OneLine | None = None
    value: OneLine
    invert: bool = False
    admin_state_up: Annotated[bool, Api(column="enabled")] = True
    tags: Tags | None = None


class L7RulePOST(L7RuleSingleCreate):
    project_id: SentProjectId = None


PUT_DEFAULTS: dict[str, Any] = {"invert": False, "admin_state_up": True, "tags": []}


class L7RuleRootPOST(Schema):
    rule: L7RulePOST


L7RULE = resource.Resource(
    "rule", L7Rule, L7RulePOST, title="L7Rule",
    outputs=resource.LIFECYCLE)
to_api = L7RULE.to_api


# --- Rules (upstream's ``validate.l7rule_data``, shared with the renderer) -----------------

def validate_rule(rule_type: str | None, compare_type: str | None, key: str | None,
                  value: str | None) -> None:
    """400 (upstream's L7RuleValidation) unless the rule is consistent in itself and renders
    (``lbaas.validate.l7rule_problem`` says which rule types take which keys and values)."""
    problem = validate.l7rule_problem(rule_type, compare_type, key, value)
    if problem:
        raise faults.L7RuleValidation(error=problem)


def check_rule_count(policy: L7Policy, adding: int = 1) -> None:
    """409 if the policy would have more than upstream's 50 rules."""
    if len(policy.rules) + adding > constants.MAX_L7RULES_PER_L7POLICY:
        raise faults.TooManyL7RulesOnL7Policy(id=policy.id)


def new_rule(body: L7RuleSingleCreate, policy: L7Policy) -> L7Rule:
    """A rule of ``policy`` in PENDING_CREATE / OFFLINE, for a body ``validate_rule`` accepted."""
    rule = L7Rule(l7policy=policy, project_id=policy.project_id, type=body.type,
                  compare_type=body.compare_type, key=body.key, value=body.value,
                  invert=body.invert, enabled=body.admin_state_up,
                  provisioning_status=constants.PENDING_CREATE, operating_status=constants.OFFLINE)
    rule.tags = body.tags
    return rule


def lock_l7policy(session: Session, policy: L7Policy,
                  allowed: Sequence[str] = constants.MUTABLE_STATUSES) -> None:
    """Take the locks for a change of one of ``policy``'s rules (409 if busy).

    As upstream: the policy must be in ``allowed`` (ACTIVE; for a change or removal of an
    existing rule also ERROR); the load balancer, the listener and the policy go
    PENDING_UPDATE until the change's flow settles them (``lock_parents``).
    """
    if policy.provisioning_status not in allowed:
        raise faults.ImmutableObject(resource="L7Policy", id=policy.id)
    lock_load_balancer(session, policy.listener.load_balancer_id)
    lock_parents(session, "listener", [policy.listener])
    lock_parents(session, "l7policy", [policy])


# --- Handlers -----------------------------------------------------------------------------

def _policy(session: Session, l7policy_id: str, ctx: RequestContext) -> L7Policy:
    return get_or_404(session, L7Policy, l7policy_id, "L7Policy", ctx)


def _rule(session: Session, policy: L7Policy, rule_id: str, ctx: RequestContext) -> L7Rule:
    rule = get_or_404(session, L7Rule, rule_id, RESOURCE, ctx)
    if rule.l7policy_id != policy.id:
        raise faults.NotFound(resource=RESOURCE, id=rule_id)
    return rule


@router.post("", status_code=201, summary="Create an L7 rule",
             response_model=L7RULE.response_root, response_model_exclude_unset=True)
def create(l7policy_id: str, body: L7RuleRootPOST, api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Any:
    spec = body.rule
    with api.db.write() as session:
        policy = _policy(session, l7policy_id, ctx)
        validate_rule(spec.type, spec.compare_type, spec.key, spec.value)
        check_rule_count(policy)
        check_quota(session, api.settings, policy.project_id, {"l7rule": 1})
        lock_l7policy(session, policy)
        rule = new_rule(spec, policy)
        session.add(rule)
        session.flush()
        submit_change(session, policy.listener.load_balancer_id, l7rule=[rule.id])
        result = {"rule": to_api(rule)}
    api.wakeup.notify()
    return result


@router.get("", summary="List the rules of an L7 policy",
            response_model=L7RULE.list_root, response_model_exclude_unset=True)
@in_event_loop
def list_all(l7policy_id: str, request: Request, api: ApiState = Depends(state),
             ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        _policy(session, l7policy_id, ctx)
    return list_objects(request, api, ctx, select(L7Rule).where(L7Rule.l7policy_id == l7policy_id),
                        L7RULE.collection, to_api)


@router.get("/{l7rule_id}", summary="Show an L7 rule",
            response_model=L7RULE.response_root, response_model_exclude_unset=True)
@in_event_loop
def show(l7policy_id: str, l7rule_id: str, request: Request, api: ApiState = Depends(state),
         ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        rule = _rule(session, _policy(session, l7policy_id, ctx), l7rule_id, ctx)
        return show_object(request, api, "rule", to_api(rule))


@router.put("/{l7rule_id}", summary="Update an L7 rule",
            response_model=L7RULE.response_root, response_model_exclude_unset=True)
def update(l7policy_id: str, l7rule_id: str,
           body: L7RULE.put_root,  # type: ignore[name-defined]
           api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Any:
    with api.db.write() as session:
        policy = _policy(session, l7policy_id, ctx)
        rule = _rule(session, policy, l7rule_id, ctx)
        changes = updates(body.rule, PUT_DEFAULTS)
        merged = {"type": rule.type, "compare_type": rule.compare_type, "key": rule.key,
                  "value": rule.value, **changes}
        validate_rule(merged["type"], merged["compare_type"], merged["key"], merged["value"])
        lock_l7policy(session, policy, constants.DELETABLE_STATUSES)
        apply_changes(rule, changes, L7RULE.renames)
        rule.provisioning_status = constants.PENDING_UPDATE
        session.flush()
        submit_change(session, policy.listener.load_balancer_id, l7rule=[rule.id])
        result = {"rule": to_api(rule)}
    api.wakeup.notify()
    return result


@router.delete("/{l7rule_id}", status_code=204, summary="Delete an L7 rule")
def delete(l7policy_id: str, l7rule_id: str, api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Response:
    with api.db.write() as session:
        policy = _policy(session, l7policy_id, ctx)
        rule = _rule(session, policy, l7rule_id, ctx)
        lock_l7policy(session, policy, constants.DELETABLE_STATUSES)
        rule.provisioning_status = constants.PENDING_DELETE
        submit_change(session, policy.listener.load_balancer_id, l7rule=[rule.id])
    api.wakeup.notify()
    return Response(status_code=204)
