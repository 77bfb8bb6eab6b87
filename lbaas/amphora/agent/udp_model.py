"""What the controller sends an amphora about its load balancer's UDP (and SCTP) service.

The controller builds it from the database (``lbaas.amphora.udp_config``) and sends it as
JSON; the agent reads it back (``UdpService.from_json``), makes nftables rules of it and
runs its health monitors. Standard library only: both sides use it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any


class InvalidService(ValueError):
    """The document is not a UDP service description; the message says where."""


@dataclass(frozen=True)
class Monitor:
    id: str
    type: str
    delay: int
    timeout: int
    rise: int
    """Successes in a row that bring a DOWN member back (``max_retries``)."""
    fall: int
    """Failures in a row that take an UP member out (``max_retries_down``)."""
    http_method: str | None = None
    url_path: str | None = None
    expected_codes: str | None = None
    http_version: str | None = None
    domain_name: str | None = None


@dataclass(frozen=True)
class Member:
    id: str
    address: str
    port: int
    weight: int
    enabled: bool
    backup: bool
    monitor_address: str | None
    monitor_port: int | None


@dataclass(frozen=True)
class Persistence:
    timeout: int
    """Seconds a client keeps its member after its last packet."""
    granularity: str
    """IPv4 netmask: clients within one such network share a member."""


@dataclass(frozen=True)
class Pool:
    id: str
    algorithm: str
    persistence: Persistence | None
    monitor: Monitor | None
    members: tuple[Member, ...]


@dataclass(frozen=True)
class Listener:
    id: str
    protocol: str
    port: int
    vips: tuple[str, ...]
    connection_limit: int | None
    """Flows tracked at once for this listener; None: no limit."""
    pool: Pool | None
    allowed_cidrs: tuple[str, ...] = ()
    """Clients allowed (empty: all); the others' packets are dropped."""


@dataclass(frozen=True)
class UdpService:
    load_balancer_id: str
    listeners: tuple[Listener, ...]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> UdpService:
        try:
            data = json.loads(text)
            return cls(
                load_balancer_id=str(data["load_balancer_id"]),
                listeners=tuple(_listener(item) for item in data["listeners"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidService(f"not a UDP service description: {exc!r}") from exc


def _listener(data: dict[str, Any]) -> Listener:
    pool = data["pool"]
    return Listener(
        id=str(data["id"]), protocol=str(data["protocol"]), port=int(data["port"]),
        vips=tuple(str(vip) for vip in data["vips"]),
        connection_limit=(int(data["connection_limit"])
                          if data["connection_limit"] is not None else None),
        pool=_pool(pool) if pool is not None else None,
        allowed_cidrs=tuple(str(cidr) for cidr in data.get("allowed_cidrs", ())))


def _pool(data: dict[str, Any]) -> Pool:
    persistence, monitor = data["persistence"], data["monitor"]
    return Pool(
        id=str(data["id"]), algorithm=str(data["algorithm"]),
        persistence=Persistence(**persistence) if persistence is not None else None,
        monitor=Monitor(**monitor) if monitor is not None else None,
        members=tuple(Member(**member) for member in data["members"]))
