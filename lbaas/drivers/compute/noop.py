"""A compute driver that builds nothing, for API-only use and tests without root."""
from __future__ import annotations

import uuid

from lbaas.drivers.compute.base import ComputeDriver, ComputeInstance


class NoopComputeDriver(ComputeDriver):
    def build(self, amphora_id: str, *, host: str | None = None) -> ComputeInstance:
        # Upstream's no-op driver answers with a documentation address as well.
        return ComputeInstance(compute_id=str(uuid.uuid4()), lb_network_ip="192.0.2.1", host=host)

    def delete(self, compute_id: str) -> None:
        return None
