"""Compute driver: makes and removes the amphorae that run load balancers."""
from __future__ import annotations

import abc
from dataclasses import dataclass


@dataclass
class ComputeInstance:
    compute_id: str
    lb_network_ip: str | None
    host: str | None = None


class ComputeDriver(abc.ABC):
    @abc.abstractmethod
    def build(self, amphora_id: str, *, host: str | None = None) -> ComputeInstance:
        """Create and boot the amphora; return once its management address is known."""

    @abc.abstractmethod
    def delete(self, compute_id: str) -> None:
        """Remove the amphora; removing one that is already gone is not an error."""
