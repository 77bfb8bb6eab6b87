"""Traffic counters of listeners, summed over the amphorae that reported them."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lbaas import constants
from lbaas.db.models import Amphora, ListenerStatistics


def statistics(session: Session, listener_ids: list[str]) -> dict[str, int]:
    """Summed counters of these listeners; active connections only from serving amphorae."""
    row = session.execute(
        select(func.coalesce(func.sum(ListenerStatistics.bytes_in), 0),
               func.coalesce(func.sum(ListenerStatistics.bytes_out), 0),
               func.coalesce(func.sum(ListenerStatistics.total_connections), 0),
               func.coalesce(func.sum(ListenerStatistics.request_errors), 0))
        .where(ListenerStatistics.listener_id.in_(listener_ids))).one()
    active = session.scalar(
        select(func.coalesce(func.sum(ListenerStatistics.active_connections), 0))
        .join(Amphora, Amphora.id == ListenerStatistics.amphora_id)
        .where(ListenerStatistics.listener_id.in_(listener_ids),
               Amphora.status == constants.ALLOCATED))
    return {"bytes_in": int(row[0]), "bytes_out": int(row[1]),
            "active_connections": int(active or 0), "total_connections": int(row[2]),
            "request_errors": int(row[3])}
