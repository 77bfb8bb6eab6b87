"""Database cleanup: purge rows that stayed DELETED longer than the configured ages.

As upstream's ``DatabaseCleanup``: an amphora row is purged when it has been DELETED for
``amphora_expiry_age`` seconds *and* its health row (if any) is as old, so an amphora that
still sends (zombie) heartbeats keeps its row; a load balancer row is purged, with
whatever still hangs off it, ``load_balancer_expiry_age`` seconds after it was deleted.
Housekeepers of several controllers take turns (a lock), so each row is purged once.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from lbaas import constants
from lbaas.db import locks, status
from lbaas.db.engine import Database
from lbaas.db.models import (
    Amphora,
    AmphoraHealth,
    Listener,
    ListenerStatistics,
    LoadBalancer,
    utcnow,
)

LOG = logging.getLogger(__name__)


def _deleted_before(model: type[Amphora] | type[LoadBalancer], status_column: Any,
                    age: int) -> tuple[Any, ...]:
    """WHERE clauses: DELETED rows last changed more than ``age`` seconds ago."""
    cutoff = utcnow() - dt.timedelta(seconds=age)
    return (status_column == constants.DELETED,
            func.coalesce(model.updated_at, model.created_at) < cutoff)


def delete_old_amphorae(db: Database, expiry_age: int) -> int:
    """Purge expired DELETED amphorae and their health rows; returns how many."""
    cutoff = utcnow() - dt.timedelta(seconds=expiry_age)
    with db.write() as session:
        locks.hold(session, "cleanup")  # another housekeeper purges after this one
        fresh_health = select(AmphoraHealth.amphora_id).where(AmphoraHealth.last_update >= cutoff)
        amphora_ids = list(session.scalars(select(Amphora.id).where(
            *_deleted_before(Amphora, Amphora.status, expiry_age), Amphora.id.notin_(fresh_health))))
        if amphora_ids:
            session.execute(delete(AmphoraHealth).where(AmphoraHealth.amphora_id.in_(amphora_ids)))
            session.execute(delete(ListenerStatistics)
                            .where(ListenerStatistics.amphora_id.in_(amphora_ids)))
            session.execute(delete(Amphora).where(Amphora.id.in_(amphora_ids)))
    for amphora_id in amphora_ids:
        LOG.info("purged the record of amphora %s (deleted over %d s ago)", amphora_id, expiry_age)
    return len(amphora_ids)


def cleanup_load_balancers(db: Database, expiry_age: int) -> int:
    """Purge expired DELETED load balancers with their remaining children; returns how many."""
    with db.write() as session:
        locks.hold(session, "cleanup")
        lb_ids = list(session.scalars(select(LoadBalancer.id).where(
            *_deleted_before(LoadBalancer, LoadBalancer.provisioning_status, expiry_age))))
        for lb_id in lb_ids:
            _purge_load_balancer(session, lb_id)
    for lb_id in lb_ids:
        LOG.info("purged the record of load balancer %s (deleted over %d s ago)",
                 lb_id, expiry_age)
    return len(lb_ids)


def _purge_load_balancer(session: Session, lb_id: str) -> None:
    listener_ids = select(Listener.id).where(Listener.load_balancer_id == lb_id)
    session.execute(delete(ListenerStatistics)
                    .where(ListenerStatistics.listener_id.in_(listener_ids)))
    status.delete_children(session, lb_id)
    # Its amphorae rows (DELETED) stay until their own expiry; they just lose the reference.
    session.execute(update(Amphora).where(Amphora.load_balancer_id == lb_id)
                    .values(load_balancer_id=None).execution_options(synchronize_session=False))
    session.delete(session.get(LoadBalancer, lb_id))
