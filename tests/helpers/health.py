"""Health-manager tests' helpers: the heartbeat key, waiting for messages to be counted."""
from __future__ import annotations

import time

from sqlalchemy import select

from lbaas import service
from lbaas.db.models import Amphora
from lbaas.health.manager import HealthManager

KEY = "health-test-key"


def wait_counted(manager: HealthManager, before: dict[str, int], handled: int = 1,
                 timeout: float = 10.0) -> dict[str, int]:
    """Wait until ``handled`` more heartbeats were accepted or dropped; the new counters."""
    outcomes = ("accepted", "invalid_hmac", "malformed", "replayed", "duplicate",
                "unknown_amphora", "sequence_ahead", "failed")
    deadline = time.monotonic() + timeout
    while True:
        now = manager.counters.snapshot()
        if sum(now.get(k, 0) - before.get(k, 0) for k in outcomes) >= handled:
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"heartbeats not handled: {before} -> {now}")
        time.sleep(0.01)


def amphora_of(services: service.Services, lb_id: str) -> str:
    with services.db.read() as session:
        return session.scalars(select(Amphora.id).where(Amphora.load_balancer_id == lb_id,
                                                        Amphora.status == "ALLOCATED")).one()
