"""A health manager on loopback in front of the no-op service, and a way to talk to it."""
from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lbaas import config, service
from lbaas.amphora.agent.status_message import amphora_key, wrap
from lbaas.db.models import Amphora
from lbaas.health.manager import HealthManager
from tests.conftest import NOOP_DRIVERS

KEY = "health-test-key"


@pytest.fixture
def settings(tmp_path: Path) -> config.Settings:
    return config.load(environ={
        "LBAAS__DEFAULT__state_path": str(tmp_path), **NOOP_DRIVERS,
        "LBAAS__health_manager__bind_port": "0",  # any free port
        "LBAAS__health_manager__heartbeat_key": KEY,
        "LBAAS__health_manager__heartbeat_interval": "0.5",
        "LBAAS__health_manager__heartbeat_timeout": "2",
        "LBAAS__health_manager__failover_grace_period": "0",
        "LBAAS__health_manager__failover_threshold": "2",
    })


@pytest.fixture
def health_manager(services: service.Services) -> Iterator[HealthManager]:
    manager = HealthManager(services.settings, services.db)
    manager.updater.start()
    manager.receiver.start()  # the failover checker is driven by the tests themselves
    try:
        yield manager
    finally:
        manager.stop()


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


@pytest.fixture
def send(health_manager: HealthManager) -> Iterator[Callable[..., dict[str, int]]]:
    """Send one datagram (a message, signed with ``key``, or raw bytes) and wait for it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send_one(message: dict[str, Any] | bytes, key: str | None = None) -> dict[str, int]:
        """``key`` None: the key of the amphora the message names, as its agent signs."""
        before = health_manager.counters.snapshot()
        if key is None and isinstance(message, dict):
            key = amphora_key(KEY, str(message.get("id", "")))
        datagram = message if isinstance(message, bytes) else wrap(message, key or KEY)
        sock.sendto(datagram, health_manager.receiver.address)
        return wait_counted(health_manager, before)

    try:
        yield send_one
    finally:
        sock.close()


def amphora_of(services: service.Services, lb_id: str) -> str:
    with services.db.read() as session:
        return session.scalars(select(Amphora.id).where(Amphora.load_balancer_id == lb_id,
                                                        Amphora.status == "ALLOCATED")).one()
