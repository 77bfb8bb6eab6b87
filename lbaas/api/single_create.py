"""The fully-populated load balancer create: listeners, pools, members and health monitors
in the body of ``POST /v2/lbaas/loadbalancers``, created in the same transaction.

As upstream: a listener's ``default_pool``, and the ``redirect_pool`` of each of its
``l7policies``, is either a full pool definition or, when it carries no more than a name
(and the ``admin_state_up``/``tls_enabled`` every pool has), a reference by name to one of
the top-level ``pools`` (or to a pool defined elsewhere in the request). Every pool a
listener or policy names must be named, and pool names are unique within the request.
Each object is validated by its own resource module's rules.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from lbaas.api import faults
from lbaas.api import health_monitor as hm_api
from lbaas.api import l7policy as l7policy_api
from lbaas.api import l7rule as l7rule_api
from lbaas.api import listener as listener_api
from lbaas.api import member as member_api
from lbaas.api import pool as pool_api
from lbaas.api.resource import list_of
from lbaas.config import Settings
from lbaas.db.models import Listener, LoadBalancer, Pool

# Fields every pool object has upstream (set to their defaults when not sent); a pool
# object with another field besides its name is a full definition.
ALWAYS_PRESENT = {"admin_state_up", "tls_enabled"}
REFERENCE_SIZE = 3


class PoolSingleCreate(pool_api.PoolOptions):
    """A pool nested in a load balancer create: a definition, or a reference by name."""

    protocol: pool_api.PoolProtocol | None = None
    lb_algorithm: pool_api.LbAlgorithm | None = None
    healthmonitor: hm_api.HealthMonitorSingleCreate | None = None
    members: list[member_api.MemberSingleCreate] | None = None

    def definition(self) -> pool_api.PoolFields:
        """The pool's settings, once it is known to be a definition: 400 if it lacks
        its protocol or algorithm."""
        for attribute in ("protocol", "lb_algorithm"):
            if getattr(self, attribute) is None:
                raise faults.ValidationException(
                    detail=f"Pool definition for '{self.name}' missing required attribute: "
                           f"{attribute}")
        return pool_api.PoolFields.model_validate(
            self.model_dump(include=set(pool_api.PoolFields.model_fields), exclude_unset=True))


class L7PolicySingleCreate(l7policy_api.L7PolicyFields):
    """An L7 policy nested in a listener; its redirect pool is a definition or a name."""

    redirect_pool: PoolSingleCreate | None = None


class ListenerSingleCreate(listener_api.ListenerFields):
    """A listener nested in a load balancer create."""

    default_pool: PoolSingleCreate | None = None
    l7policies: list[L7PolicySingleCreate] | None = None


L7PolicyFullResponse = l7policy_api.L7POLICY.variant(
    "L7PolicyFullResponse", rules=list_of(l7rule_api.L7RULE.response_model))
ListenerFullResponse = listener_api.LISTENER.variant(
    "ListenerFullResponse", drop=("loadbalancers",), l7policies=list_of(L7PolicyFullResponse))
PoolFullResponse = pool_api.POOL.variant(
    "PoolFullResponse", drop=("loadbalancers", "healthmonitor_id"),
    members=list_of(member_api.MEMBER.response_model),
    healthmonitor=hm_api.HEALTH_MONITOR.response_model)


@dataclass
class Tree:
    """A checked request: pool definitions in creation order, and the listeners with the
    name of their default pool and of each L7 policy's redirect pool."""

    pools: list[PoolSingleCreate]
    listeners: list[tuple[ListenerSingleCreate, str | None, list[str | None]]]

    def counts(self) -> dict[str, int]:
        """How many objects of each quota resource the tree creates."""
        policies = [policy for listener, _, _ in self.listeners
                    for policy in listener.l7policies or []]
        return {
            "listener": len(self.listeners),
            "pool": len(self.pools),
            "healthmonitor": sum(1 for pool in self.pools if pool.healthmonitor is not None),
            "member": sum(len(pool.members or []) for pool in self.pools),
            "l7policy": len(policies),
            "l7rule": sum(len(policy.rules or []) for policy in policies),
        }


def _is_definition(pool: PoolSingleCreate) -> bool:
    return len(pool.model_fields_set | ALWAYS_PRESENT) > REFERENCE_SIZE


def _pool_name(pool: PoolSingleCreate | None, definitions: list[PoolSingleCreate],
               references: list[str]) -> str | None:
    """The name of a listener's or policy's pool; a full definition joins ``definitions``."""
    if pool is None:
        return None
    if not pool.name:
        raise faults.ValidationException(
            detail="Pools must be named when creating a fully populated loadbalancer.")
    if _is_definition(pool):
        definitions.append(pool)
    else:
        references.append(pool.name)
    return pool.name


def plan(listeners: list[ListenerSingleCreate], pools: list[PoolSingleCreate]) -> Tree:
    """Check how the request's pools are named and referenced (400s) and order the work."""
    definitions = list(pools)
    references: list[str] = []
    wiring = [(listener, _pool_name(listener.default_pool, definitions, references),
               [_pool_name(policy.redirect_pool, definitions, references)
                for policy in listener.l7policies or []])
              for listener in listeners]
    names = [pool.name for pool in definitions]
    if len(set(names)) != len(names):
        raise faults.ValidationException(
            detail="Pool names must be unique when creating a fully populated loadbalancer.")
    for name in references:
        if name not in names:
            raise faults.ValidationException(
                detail=f"Pool '{name}' was referenced but no full definition was found.")
    for pool in definitions:
        pool.definition()
    return Tree(pools=definitions, listeners=wiring)


def _new_pool(spec: PoolSingleCreate, lb: LoadBalancer, settings: Settings) -> Pool:
    """The pool and its health monitor (first, so members get the right operating status)."""
    pool = pool_api.new_pool(spec.definition(), lb, settings)
    if spec.healthmonitor is not None:
        hm_api.validate_health_monitor(spec.healthmonitor, pool, settings)
        hm_api.new_health_monitor(spec.healthmonitor, pool)
    return pool


def _add_members(session: Session, spec: PoolSingleCreate, pool: Pool,
                 settings: Settings) -> None:
    for body in spec.members or []:
        member_api.validate_member(session, body, pool, settings)
        member_api.check_unique(pool, body.address, body.protocol_port)
        member_api.new_member(body, pool)


def build(session: Session, tree: Tree, lb: LoadBalancer, settings: Settings) -> None:
    """Create the tree's objects on ``lb`` in PENDING_CREATE, each checked by its own rules.

    Members come last: some of their rules depend on the listeners their pool serves.
    """
    created = {spec.name: _new_pool(spec, lb, settings) for spec in tree.pools}
    for spec, pool_name, redirect_pools in tree.listeners:
        listener = listener_api.new_listener(spec, lb, settings)
        if pool_name is not None:
            pool_api.check_protocols(listener.protocol, created[pool_name].protocol)
            listener.default_pool = created[pool_name]
        elif spec.default_pool_id:
            listener.default_pool = listener_api.default_pool(
                session, lb, spec.default_pool_id, spec.protocol)
        for policy, redirect_pool in zip(spec.l7policies or [], redirect_pools, strict=True):
            _add_policy(policy, listener, created[redirect_pool] if redirect_pool else None)
    for pool_spec in tree.pools:
        _add_members(session, pool_spec, created[pool_spec.name], settings)


def _add_policy(spec: L7PolicySingleCreate, listener: Listener, pool: Pool | None) -> None:
    """An L7 policy of ``listener`` with its rules, redirecting to ``pool`` of the request."""
    l7policy_api.check_listener(listener)
    actions = l7policy_api.resolve_action(
        dict.fromkeys(("action", *l7policy_api.TARGETS.values())),
        {**spec.model_dump(include={"action", "redirect_url", "redirect_prefix",
                                    "redirect_http_code"}),
         "redirect_pool_id": pool and pool.name})
    policy = l7policy_api.new_policy(spec, listener, actions)
    if actions["redirect_pool_id"] and pool is not None:
        pool_api.check_protocols(listener.protocol, pool.protocol)
        policy.redirect_pool = pool


def _full_policy(policy: Any) -> dict[str, Any]:
    return {**l7policy_api.to_api(policy),
            "rules": [l7rule_api.to_api(rule) for rule in policy.rules]}


def _full_listener(listener: Any) -> dict[str, Any]:
    body = listener_api.to_api(listener)
    del body["loadbalancers"]
    body["l7policies"] = [_full_policy(policy) for policy in listener.l7policies]
    return body


def _full_pool(pool: Pool) -> dict[str, Any]:
    body = pool_api.to_api(pool)
    del body["loadbalancers"], body["healthmonitor_id"]
    body["members"] = [member_api.to_api(member) for member in pool.members]
    if pool.health_monitor is not None:
        body["healthmonitor"] = hm_api.to_api(pool.health_monitor)
    return body


def full_children(lb: LoadBalancer) -> dict[str, list[dict[str, Any]]]:
    """``listeners`` and ``pools`` as full objects, as in upstream's LoadBalancerFullResponse."""
    return {"listeners": [_full_listener(listener) for listener in lb.listeners],
            "pools": [_full_pool(pool) for pool in lb.pools]}
