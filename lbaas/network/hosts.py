"""The deployment's hosts in the database: compute hosts (``lbaas host add``: where their
compute agent listens) and controllers (which register themselves when they start).

Every host with a tunnel address is a VXLAN peer of the others. A compute host is UP
while a health manager hears its agent (``record_status``), DOWN once it has not for
``[compute] host_down_timeout``; only UP hosts with room get new amphorae.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lbaas import constants
from lbaas.db.models import Amphora, Host, utcnow
from lbaas.db.rows import changed
from lbaas.network.errors import Duplicate, InUse, InvalidNetwork, NotFound

COMPUTE, CONTROLLER = "compute", "controller"
UP, DOWN, UNKNOWN = "UP", "DOWN", "UNKNOWN"
AGENT_PORT = 9444


def agent_url(address: str, port: int = AGENT_PORT) -> str:
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    return f"https://{host}:{port}"


def add(session: Session, name: str, address: str, port: int = AGENT_PORT,
        tunnel_ip: str | None = None) -> Host:
    """Register a compute host whose agent listens on ``address``:``port``."""
    try:
        ipaddress.ip_address(address)
        if tunnel_ip:
            ipaddress.ip_address(tunnel_ip)
    except ValueError as exc:
        raise InvalidNetwork(f"{exc}: give the host's address as an IP address") from exc
    if session.get(Host, name) is not None:
        raise Duplicate(f"a host named {name} is already registered; `lbaas host show {name}`")
    host = Host(name=name, kind=COMPUTE, agent_url=agent_url(address, port),
                tunnel_ip=tunnel_ip, status=UNKNOWN, amphorae=0)
    session.add(host)
    session.flush()
    return host


def find(session: Session, name: str) -> Host:
    host = session.get(Host, name)
    if host is None:
        raise NotFound(f"host {name} not found; `lbaas host list` shows the hosts")
    return host


def list_hosts(session: Session) -> list[Host]:
    return list(session.scalars(select(Host).order_by(Host.kind, Host.name)))


def amphorae_on(session: Session, name: str) -> list[str]:
    """The amphorae (not deleted) whose row places them on host ``name``."""
    return list(session.scalars(select(Amphora.id).where(
        Amphora.cached_zone == name, Amphora.status != constants.DELETED)))


def remove(session: Session, name: str) -> None:
    """Forget a host; refused while amphorae run there (fail them over first)."""
    host = find(session, name)
    running = amphorae_on(session, name)
    if running:
        raise InUse(f"host {name} still runs {len(running)} amphora(e) ({', '.join(running[:3])}"
                    f"{'...' if len(running) > 3 else ''}); fail them over first")
    session.delete(host)
    session.flush()


def register_controller(session: Session, name: str, tunnel_ip: str | None) -> None:
    """A controller records itself (its tunnel address makes it a VXLAN peer)."""
    host = session.get(Host, name)
    if host is None:
        session.add(Host(name=name, kind=CONTROLLER, tunnel_ip=tunnel_ip, status=UP,
                         amphorae=0, last_seen=utcnow()))
    elif host.kind == CONTROLLER:
        host.tunnel_ip, host.status, host.last_seen = tunnel_ip, UP, utcnow()
    session.flush()


def tunnel_addresses(session: Session) -> list[str]:
    """Every host's tunnel address: where a VXLAN network's flooded frames go."""
    return sorted(address for address in session.scalars(
        select(Host.tunnel_ip).where(Host.tunnel_ip.is_not(None))) if address)


def up(session: Session) -> list[str]:
    """The compute hosts whose agent answers."""
    return list(session.scalars(select(Host.name).where(Host.kind == COMPUTE, Host.status == UP)
                                .order_by(Host.name)))


def placeable(session: Session) -> list[str]:
    """UP compute hosts with room for another amphora."""
    return [host.name for host in session.scalars(
        select(Host).where(Host.kind == COMPUTE, Host.status == UP).order_by(Host.name))
        if host.capacity is None or host.amphorae < host.capacity]


def record_status(session: Session, name: str, status: dict[str, Any]) -> str:
    """What an agent said of itself; returns the host's previous status."""
    host = find(session, name)
    previous = host.status
    host.status, host.last_seen = UP, utcnow()
    host.amphorae = len(status.get("amphorae") or {})
    host.capacity = status.get("max_amphorae")
    host.tunnel_ip = status.get("local_ip") or host.tunnel_ip
    session.flush()
    return previous


def mark_down(session: Session, name: str) -> None:
    """A flow found the host's agent unreachable: DOWN until it answers a health manager."""
    session.execute(update(Host).where(Host.name == name, Host.kind == COMPUTE)
                    .values(status=DOWN).execution_options(synchronize_session=False))


def record_silence(session: Session, name: str, down_after: float) -> bool:
    """The agent did not answer: DOWN once silent for ``down_after`` seconds; True if it
    just went DOWN."""
    cutoff = utcnow() - dt.timedelta(seconds=down_after)
    return bool(changed(session,
        update(Host).where(Host.name == name, Host.status != DOWN,
                           (Host.last_seen.is_(None)) | (Host.last_seen < cutoff))
        .values(status=DOWN).execution_options(synchronize_session=False)))
