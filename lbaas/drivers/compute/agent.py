"""Compute driver ``compute_agent_driver``: amphorae on other hosts, through their agents.

Each compute host runs ``lbaas compute-agent`` (lbaas.compute_agent), which does there
what the ``netns`` driver does on one machine. The controller reaches it over mutual TLS:
it presents its client certificate and accepts the agent only if the server CA signed the
agent's certificate *and* the certificate names the host it meant to reach (as for
amphora agents, lbaas.certs.tls). With every call that plugs a port goes the network's
segment (its type, VNI or physical network, and the other hosts' tunnel addresses), so a
host joins a network when it first needs it.

A host that does not answer raises ``HostUnreachable``: a failover goes on without
removing an amphora from a dead host (the reconciler removes it when the host is back).
"""
from __future__ import annotations

import base64
import dataclasses
import logging
import threading
from pathlib import Path
from typing import Any

import httpx

from lbaas.certs import tls
from lbaas.compute_flavors import Resources
from lbaas.db.engine import Database
from lbaas.db.models import Host, Network
from lbaas.drivers.compute.base import ComputeDriver, ComputeInstance, HostUnreachable
from lbaas.drivers.compute.netns import ComputeError, namespace_of
from lbaas.drivers.network.base import Port
from lbaas.network import hosts as host_registry
from lbaas.network import registry, segments

LOG = logging.getLogger(__name__)
API = "1.0"


class ComputeAgentDriver(ComputeDriver):
    def __init__(self, db: Database, client_cert: Path, server_ca: Path,
                 amphora_agent: dict[str, Any], timeout: float = 30.0,
                 connect_timeout: float = 3.0) -> None:
        self.db = db
        self.client_cert = client_cert
        self.server_ca = server_ca
        self.amphora_agent = amphora_agent  # bind_port and heartbeat settings of amphorae
        self.timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._clients: dict[str, httpx.Client] = {}
        self._lock = threading.Lock()

    def _client(self, host: str) -> httpx.Client:
        with self._lock:
            if host not in self._clients:
                context = tls.controller_context(self.client_cert, self.server_ca,
                                                 tls.compute_agent_identity(host))
                # No kept-alive connections: one to a host that was cut off would take the
                # whole read timeout to fail, where a new one fails to connect at once.
                self._clients[host] = httpx.Client(
                    verify=context, timeout=self.timeout,
                    limits=httpx.Limits(max_keepalive_connections=0))
            return self._clients[host]

    def call(self, method: str, host: str | None, path: str, **kwargs: Any) -> Any:
        """One call to ``host``'s agent; its JSON answer."""
        if not host:
            raise ComputeError("the amphora has no host: the compute agent driver places "
                               "every amphora on a registered host")
        with self.db.read() as session:
            url = host_registry.find(session, host).agent_url
        try:
            response = self._client(host).request(method, f"{url}/{API}/{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise HostUnreachable(f"host {host} ({url}) did not answer: {exc}") from exc
        if response.status_code >= 400:
            raise ComputeError(f"host {host}: {method} /{API}/{path} answered "
                               f"{response.status_code}: {response.text}")
        return response.json()

    def status(self, host: str) -> dict[str, Any]:
        """What the host's agent says of itself (amphorae, tunnel address, room)."""
        return dict(self.call("GET", host, "status", timeout=self.timeout.connect))

    def _segment(self, network_id: str | None, host: str) -> dict[str, Any]:
        with self.db.read() as session:
            network = session.get(Network, network_id) if network_id else None
            if network is None:
                raise ComputeError(f"network {network_id} of the port is not in the registry")
            own = session.get(Host, host)
            peers = [address for address in host_registry.tunnel_addresses(session)
                     if own is None or address != own.tunnel_ip]
            return registry.segment_of(network, peers).as_dict()

    @staticmethod
    def _port(port: Port) -> dict[str, Any]:
        return {key: value for key, value in vars(port).items() if key != "created_at"}

    def compute_id(self, amphora_id: str) -> str:
        return namespace_of(amphora_id)

    def hosts(self) -> list[str]:
        with self.db.read() as session:
            return host_registry.placeable(session)

    def reconciled_hosts(self) -> list[str | None]:
        with self.db.read() as session:
            return list(host_registry.up(session))

    def build(self, amphora_id: str, *, management_port: Port, files: dict[str, bytes],
              host: str | None = None, image_id: str | None = None,
              resources: Resources | None = None) -> ComputeInstance:
        assert host is not None
        answer = self.call("POST", host, f"amphorae/{amphora_id}", json={
            "management_port": self._port(management_port),
            "segment": self._segment(management_port.network_id, host),
            "files": {name: base64.b64encode(content).decode()
                      for name, content in files.items()},
            "agent": self.amphora_agent, "image_id": image_id,
            "resources": dataclasses.asdict(resources) if resources else None})
        return ComputeInstance(compute_id=answer["compute_id"],
                               lb_network_ip=answer["lb_network_ip"], host=host)

    def delete(self, compute_id: str, host: str | None = None) -> None:
        self.call("DELETE", host, f"amphorae/{_amphora_id(compute_id)}")

    def instances(self, host: str | None = None) -> dict[str, bool] | None:
        if host is None:
            return None
        try:
            return {amphora_id: bool(running)
                    for amphora_id, running in self.status(host)["amphorae"].items()}
        except HostUnreachable:
            return None

    def attach_port(self, compute_id: str, port: Port, host: str | None = None) -> str:
        assert host is not None
        answer = self.call("PUT", host, f"amphorae/{_amphora_id(compute_id)}/ports/{port.id}",
                           json={"port": self._port(port),
                                 "segment": self._segment(port.network_id, host)})
        return str(answer["mac_address"])

    def detach_port(self, compute_id: str, port: Port, host: str | None = None) -> None:
        self.call("DELETE", host, f"amphorae/{_amphora_id(compute_id)}/ports/{port.id}")

    def ensure_segment(self, host: str, segment: segments.Segment) -> None:
        """Bring a host's side of a network up to date (new peers, say)."""
        self.call("PUT", host, f"networks/{segment.network_id}", json=segment.as_dict())


def _amphora_id(compute_id: str) -> str:
    return compute_id.removeprefix("amphora-")
