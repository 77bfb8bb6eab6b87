"""What a job asks the worker to do: one ``Action`` per flow, and one typed function per
action that puts it on the board in the caller's transaction.

Callers (the API, the health manager, housekeeping, the reconciler) never spell an
action or its payload themselves: a typo or a missing argument is a type error here, not
a job that sits on the board until a worker drops it. The worker's table of flows is
keyed by ``Action`` (``lbaas.controller.worker.FLOWS``); a test checks that every action
has its flow and that each function's arguments are its flow's parameters.
"""
from __future__ import annotations

import enum

from sqlalchemy.orm import Session

from lbaas.controller import jobs


class Action(enum.StrEnum):
    CREATE_LOAD_BALANCER = "create_load_balancer"
    DELETE_LOAD_BALANCER = "delete_load_balancer"
    FAILOVER_LOAD_BALANCER = "failover_load_balancer"
    FAILOVER_AMPHORA = "failover_amphora"
    CHANGE = "change"
    DELETE_AMPHORA = "delete_amphora"
    UPDATE_AMPHORA_CONFIG = "update_amphora_config"
    BUILD_SPARE = "build_spare"


def create_load_balancer(session: Session, lb_id: str) -> None:
    jobs.enqueue(session, Action.CREATE_LOAD_BALANCER, lb_id=lb_id)


def delete_load_balancer(session: Session, lb_id: str, cascade: bool) -> None:
    jobs.enqueue(session, Action.DELETE_LOAD_BALANCER, lb_id=lb_id, cascade=cascade)


def failover_load_balancer(session: Session, lb_id: str) -> None:
    jobs.enqueue(session, Action.FAILOVER_LOAD_BALANCER, lb_id=lb_id)


def failover_amphora(session: Session, lb_id: str, amphora_id: str) -> None:
    jobs.enqueue(session, Action.FAILOVER_AMPHORA, lb_id=lb_id, amphora_id=amphora_id)


def change(session: Session, lb_id: str, targets: dict[str, list[str]]) -> None:
    """Push a load balancer's configuration, then settle ``targets`` (kind -> ids)."""
    jobs.enqueue(session, Action.CHANGE, lb_id=lb_id, targets=targets)


def delete_amphora(session: Session, amphora_id: str) -> None:
    jobs.enqueue(session, Action.DELETE_AMPHORA, amphora_id=amphora_id)


def update_amphora_config(session: Session, amphora_id: str) -> None:
    jobs.enqueue(session, Action.UPDATE_AMPHORA_CONFIG, amphora_id=amphora_id)


def build_spare(session: Session, amphora_id: str) -> None:
    jobs.enqueue(session, Action.BUILD_SPARE, amphora_id=amphora_id)
