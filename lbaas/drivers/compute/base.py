"""Compute driver: makes and removes amphorae and plugs ports into them."""
from __future__ import annotations

import abc
from dataclasses import dataclass

from lbaas.drivers.network.base import Port


@dataclass
class ComputeInstance:
    compute_id: str
    lb_network_ip: str | None
    host: str | None = None


class ComputeDriver(abc.ABC):
    @abc.abstractmethod
    def build(self, amphora_id: str, *, management_port: Port, files: dict[str, bytes],
              host: str | None = None) -> ComputeInstance:
        """Create the amphora on ``management_port`` with ``files`` (its "config drive")
        and start its agent; returns without waiting for the agent to answer."""

    @abc.abstractmethod
    def delete(self, compute_id: str) -> None:
        """Remove the amphora and everything it ran; removing a removed one is no error."""

    @abc.abstractmethod
    def attach_port(self, compute_id: str, port: Port) -> str:
        """Plug ``port`` into the amphora as a new interface; returns its MAC address."""

    @abc.abstractmethod
    def detach_port(self, compute_id: str, port: Port) -> None:
        """Unplug ``port``; unplugging an unplugged port is not an error."""
