"""In-memory load balancer trees with fixed, readable ids (``uid``), and the render
options of a test amphora: what the haproxy configuration tests build their cases from."""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from lbaas.amphora.haproxy_config import RenderOptions
from lbaas.db import models

AMPHORA_ID = "a0000000-0000-4000-8000-000000000001"
AMPHORA_DIR = Path("/var/lib/lbaas/amphorae") / AMPHORA_ID


OPTIONS = RenderOptions(
    amphora_id=AMPHORA_ID,
    stats_socket=f"{AMPHORA_DIR}/haproxy.sock",
    server_state_file=f"{AMPHORA_DIR}/haproxy.state",
    pid_file=f"{AMPHORA_DIR}/haproxy.pid",
    ping_command="/usr/lib/lbaas/ping-wrapper.sh",
)


def uid(kind: int, number: int = 1) -> str:
    """A readable fixed id: 1=load balancer, 2=listener, 3=pool, 4=member, 5=monitor,
    6=L7 policy, 7=L7 rule."""
    return f"{kind}0000000-0000-4000-8000-{number:012d}"


STATUS = {"provisioning_status": "ACTIVE", "operating_status": "ONLINE", "enabled": True}


def member(number: int, address: str = "", port: int = 8080, **fields: Any) -> models.Member:
    address = address or f"10.0.1.{10 + number}"
    values = {"weight": 1, "backup": False}
    return models.Member(id=uid(4, number), ip_address=address, protocol_port=port,
                         **{**STATUS, **values, **fields})


def monitor(kind: str = "HTTP", **fields: Any) -> models.HealthMonitor:
    values = {"delay": 5, "timeout": 3, "rise_threshold": 2, "fall_threshold": 3}
    if kind in ("HTTP", "HTTPS"):
        values.update(http_method="GET", url_path="/", expected_codes="200")
    return models.HealthMonitor(id=uid(5), type=kind, **{**STATUS, **values, **fields})


def pool(protocol: str = "HTTP", members: tuple[models.Member, ...] | None = None,
         health_monitor: models.HealthMonitor | None = None, number: int = 1,
         **fields: Any) -> models.Pool:
    """A pool; two members on 10.0.1.11 and .12 unless ``members`` says otherwise."""
    values = {"lb_algorithm": "ROUND_ROBIN", "tls_enabled": False, "session_persistence": None}
    members = (member(1), member(2)) if members is None else members
    return models.Pool(id=uid(3, number), protocol=protocol, members=list(members),
                       health_monitor=health_monitor, **{**STATUS, **values, **fields})


def listener(protocol: str = "HTTP", port: int = 80, default_pool: models.Pool | None = None,
             number: int = 1, **fields: Any) -> models.Listener:
    values = {"connection_limit": -1, "insert_headers": {}, "allowed_cidrs": [],
              "timeout_client_data": 50000, "timeout_member_connect": 5000,
              "timeout_member_data": 50000, "timeout_tcp_inspect": 0}
    return models.Listener(id=uid(2, number), protocol=protocol, protocol_port=port,
                           default_pool=default_pool, **{**STATUS, **values, **fields})


def load_balancer(*listeners: models.Listener, **fields: Any) -> models.LoadBalancer:
    values = {"vip_address": "192.0.2.10", "topology": "SINGLE"}
    return models.LoadBalancer(id=uid(1), listeners=list(listeners),
                               **{**STATUS, **values, **fields})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
