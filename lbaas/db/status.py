"""Provisioning-status changes on a load balancer's tree, shared by the API and the worker.

The load balancer row is the lock of its whole tree: a change test-and-sets it from
ACTIVE to PENDING_UPDATE with one conditional UPDATE, so of two concurrent writers exactly
one wins (on every database, without relying on SELECT ... FOR UPDATE).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, literal, select, union_all, update
from sqlalchemy.orm import Session

from lbaas import constants
from lbaas.db import l7_order
from lbaas.db.models import (
    HealthMonitor,
    L7Policy,
    L7Rule,
    Listener,
    LoadBalancer,
    Member,
    Pool,
    utcnow,
)
from lbaas.db.rows import changed

KINDS: dict[str, Any] = {
    "loadbalancer": LoadBalancer,
    "listener": Listener,
    "pool": Pool,
    "member": Member,
    "healthmonitor": HealthMonitor,
    "l7policy": L7Policy,
    "l7rule": L7Rule,
}
PENDING = (constants.PENDING_CREATE, constants.PENDING_UPDATE, constants.PENDING_DELETE)


def test_and_set(session: Session, lb_id: str, status: str,
                 allowed: Iterable[str] = constants.MUTABLE_STATUSES) -> bool:
    """Move the load balancer to ``status`` if it is in ``allowed``; False if it is not."""
    return changed(session,
        update(LoadBalancer)
        .where(LoadBalancer.id == lb_id, LoadBalancer.provisioning_status.in_(tuple(allowed)))
        .values(provisioning_status=status, updated_at=utcnow())
        .execution_options(synchronize_session=False)) == 1


def set_status(session: Session, kind: str, ids: Iterable[str], status: str) -> None:
    ids = list(ids)
    if ids:
        model = KINDS[kind]
        session.execute(update(model).where(model.id.in_(ids))
                        .values(provisioning_status=status)
                        .execution_options(synchronize_session=False))


def _in_tree(model: Any, lb_id: Any) -> Any:
    """A WHERE clause selecting the rows of ``model`` that belong to load balancer ``lb_id``
    (an id, or the bound parameter that will hold it)."""
    if model in (Listener, Pool):
        return model.load_balancer_id == lb_id
    if model is L7Policy:
        return L7Policy.listener_id.in_(select(Listener.id).where(Listener.load_balancer_id == lb_id))
    if model is L7Rule:
        return L7Rule.l7policy_id.in_(select(L7Policy.id).where(_in_tree(L7Policy, lb_id)))
    return model.pool_id.in_(select(Pool.id).where(Pool.load_balancer_id == lb_id))


def release(session: Session, lb_id: str) -> None:
    """Every PENDING_UPDATE object of the tree (the locked parents) and the LB -> ACTIVE.
    One query finds them (a create has none), so only their tables are written: an
    UPDATE per kind of child was a tenth of a create's worker time."""
    locked = pending_tree_objects(session, lb_id, (constants.PENDING_UPDATE,))
    for kind, ids in locked.items():
        set_status(session, kind, ids, constants.ACTIVE)
    session.execute(update(LoadBalancer).where(LoadBalancer.id == lb_id)
                    .values(provisioning_status=constants.ACTIVE, updated_at=utcnow())
                    .execution_options(synchronize_session=False))


def settle(session: Session, lb_id: str, targets: dict[str, list[str]]) -> None:
    """A change went through: targets pending deletion are removed, the rest become ACTIVE."""
    for kind, ids in targets.items():
        if kind == "loadbalancer":
            continue
        model = KINDS[kind]
        doomed = session.scalars(select(model).where(
            model.id.in_(ids), model.provisioning_status == constants.PENDING_DELETE)).all()
        for obj in doomed:
            delete_object(session, obj)
        set_status(session, kind, [i for i in ids if i not in {o.id for o in doomed}],
                   constants.ACTIVE)
        if kind in ("healthmonitor", "l7policy", "l7rule"):
            _set_enabled_operating_status(session, model, ids)
        if kind == "healthmonitor":
            # The pool is monitored now: its members' health is unknown until checked.
            monitored = select(HealthMonitor.pool_id).where(HealthMonitor.id.in_(ids))
            session.execute(update(Member).where(Member.pool_id.in_(monitored),
                                                 Member.operating_status == constants.NO_MONITOR)
                            .values(operating_status=constants.OFFLINE)
                            .execution_options(synchronize_session=False))
    release(session, lb_id)


def _set_enabled_operating_status(session: Session, model: Any, ids: list[str]) -> None:
    """As upstream's Mark*ActiveInDB: an active health monitor, L7 policy or rule is ONLINE,
    or OFFLINE if disabled."""
    for enabled, operating in ((True, constants.ONLINE), (False, constants.OFFLINE)):
        session.execute(update(model).where(model.id.in_(ids), model.enabled.is_(enabled))
                        .values(operating_status=operating)
                        .execution_options(synchronize_session=False))


def fail(session: Session, lb_id: str, targets: dict[str, list[str]]) -> None:
    """A change failed: its targets -> ERROR, the parents it locked -> ACTIVE."""
    for kind, ids in targets.items():
        if kind != "loadbalancer":
            set_status(session, kind, ids, constants.ERROR)
    release(session, lb_id)
    if "loadbalancer" in targets:
        session.execute(update(LoadBalancer).where(LoadBalancer.id == lb_id)
                        .values(provisioning_status=constants.ERROR)
                        .execution_options(synchronize_session=False))


def delete_object(session: Session, obj: Any) -> None:
    """Hard-delete a child object with what hangs off it (as upstream's flows do)."""
    if isinstance(obj, Pool):
        session.execute(update(Listener).where(Listener.default_pool_id == obj.id)
                        .values(default_pool_id=None).execution_options(synchronize_session=False))
    if isinstance(obj, HealthMonitor):
        # Without a monitor the pool's members are NO_MONITOR again, whatever they were.
        session.execute(update(Member).where(Member.pool_id == obj.pool_id)
                        .values(operating_status=constants.NO_MONITOR)
                        .execution_options(synchronize_session=False))
    session.delete(obj)
    session.flush()
    if isinstance(obj, L7Policy):
        l7_order.renumber(session.scalars(
            select(L7Policy).where(L7Policy.listener_id == obj.listener_id)).all())
        session.flush()


def delete_children(session: Session, lb_id: str) -> None:
    """Cascade delete: listeners (with their L7 policies and rules), pools, members and
    health monitors of the LB."""
    lb = session.get(LoadBalancer, lb_id)
    if lb is None:
        return
    for listener in list(lb.listeners):
        listener.default_pool_id = None
    session.flush()
    for obj in [*lb.listeners, *lb.pools]:
        session.delete(obj)
    session.flush()


# Built once, its values bound per call: building this union of six queries (and its
# cache key) took 2 ms of CPU; a create runs it twice, every change once.
_PENDING_TREE = union_all(*(
    select(literal(kind).label("kind"), model.id.label("id"))
    .where(_in_tree(model, bindparam("lb_id")),
           model.provisioning_status.in_(bindparam("statuses", expanding=True)))
    for kind, model in KINDS.items() if model is not LoadBalancer))


def pending_tree_objects(session: Session, lb_id: str,
                         statuses: tuple[str, ...] = PENDING) -> dict[str, list[str]]:
    """The ids of the LB's children in a PENDING_* state (or ``statuses``), by kind (in
    KINDS order)."""
    found: dict[str, list[str]] = {}
    for kind, object_id in session.execute(_PENDING_TREE, {"lb_id": lb_id,
                                                           "statuses": list(statuses)}):
        found.setdefault(kind, []).append(object_id)
    return {kind: found[kind] for kind in KINDS if kind in found}

