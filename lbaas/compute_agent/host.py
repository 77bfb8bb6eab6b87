"""What a compute agent does on its host: amphorae and network segments."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbaas.amphora.agent.logs import LogOffload
from lbaas.compute_flavors import Resources
from lbaas.drivers.compute.base import ComputeInstance
from lbaas.drivers.compute.netns import NetnsComputeDriver
from lbaas.drivers.network.base import Port
from lbaas.images.store import ImageStore
from lbaas.network import segments


@dataclass(frozen=True)
class AgentSettings:
    """How the controllers want an amphora's agent configured: its port, where and how
    often it sends heartbeats (its heartbeat key comes with its files)."""

    bind_port: int
    controller_ip_port_list: tuple[str, ...]
    heartbeat_interval: float
    log_offload: LogOffload = LogOffload()


@dataclass
class ComputeHost:
    name: str
    base_path: Path
    network: segments.Host
    max_amphorae: int | None = None
    images: ImageStore | None = None  # where the images amphorae run from are (this host's)
    agent_launcher: str = "exec"  # this host's [haproxy_amphora] agent_launcher
    _segments: threading.Lock = field(default_factory=threading.Lock)

    def _compute(self, agent: AgentSettings | None = None) -> NetnsComputeDriver:
        if agent is None:
            return NetnsComputeDriver(self.base_path, host=self.name, images=self.images,
                                      agent_launcher=self.agent_launcher)
        return NetnsComputeDriver(
            self.base_path, agent_port=agent.bind_port, host=self.name,
            controller_ip_port_list=agent.controller_ip_port_list,
            heartbeat_interval=agent.heartbeat_interval, log_offload=agent.log_offload,
            images=self.images, agent_launcher=self.agent_launcher)

    def ensure_segment(self, segment: segments.Segment) -> None:
        with self._segments:  # two plugs into one new network must not both create it
            self.network.ensure(segment)

    def build(self, amphora_id: str, management_port: Port, segment: segments.Segment,
              files: dict[str, bytes], agent: AgentSettings, image_id: str | None = None,
              resources: Resources | None = None) -> ComputeInstance:
        self.ensure_segment(segment)
        return self._compute(agent).build(amphora_id, management_port=management_port,
                                          files=files, host=self.name, image_id=image_id,
                                          resources=resources)

    def delete(self, amphora_id: str) -> None:
        compute = self._compute()
        compute.delete(compute.compute_id(amphora_id))

    def attach(self, amphora_id: str, port: Port, segment: segments.Segment) -> str:
        self.ensure_segment(segment)
        compute = self._compute()
        return compute.attach_port(compute.compute_id(amphora_id), port)

    def detach(self, amphora_id: str, port: Port) -> None:
        compute = self._compute()
        compute.detach_port(compute.compute_id(amphora_id), port)

    def status(self) -> dict[str, Any]:
        """Who this host is, what runs on it, what it floods to, how much room it has."""
        amphorae = self._compute().instances()
        return {"host": self.name, "local_ip": self.network.local_ip,
                "amphorae": amphorae, "max_amphorae": self.max_amphorae,
                "memory_available_kb": _memory_available_kb(),
                "vxlan_peers": {str(vni): sorted(peers)
                                for vni, peers in self.network.vxlan_peers().items()},
                "pid": os.getpid()}


def _memory_available_kb() -> int | None:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return None
