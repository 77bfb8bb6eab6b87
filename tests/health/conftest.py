"""A health manager on loopback in front of the no-op service, and a way to talk to it."""
from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lbaas import config, service
from lbaas.amphora.agent.status_message import amphora_key, wrap
from lbaas.health.manager import HealthManager
from tests.helpers import NOOP_DRIVERS
from tests.helpers.health import KEY, wait_counted


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
