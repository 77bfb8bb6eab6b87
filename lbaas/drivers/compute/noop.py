"""A compute driver that builds nothing, for API-only use and tests without root."""
from __future__ import annotations

from lbaas.drivers.compute.base import ComputeDriver, ComputeInstance
from lbaas.drivers.network.base import Port


class NoopComputeDriver(ComputeDriver):
    def compute_id(self, amphora_id: str) -> str:
        return amphora_id

    def build(self, amphora_id: str, *, management_port: Port, files: dict[str, bytes],
              host: str | None = None) -> ComputeInstance:
        return ComputeInstance(compute_id=amphora_id,
                               lb_network_ip=management_port.ip_address, host=host)

    def delete(self, compute_id: str) -> None:
        return None

    def instances(self) -> dict[str, bool] | None:
        return None  # it builds nothing, so it cannot tell what should be there

    def attach_port(self, compute_id: str, port: Port) -> str:
        return "fa:16:3e:00:00:00"

    def detach_port(self, compute_id: str, port: Port) -> None:
        return None
