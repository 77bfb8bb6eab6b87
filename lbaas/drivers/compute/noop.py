"""A compute driver that builds nothing, for API-only use and tests without root."""
from __future__ import annotations

from collections.abc import Callable

from lbaas.compute_flavors import Resources
from lbaas.drivers.compute.base import ComputeDriver, ComputeInstance
from lbaas.drivers.network.base import Port


class NoopComputeDriver(ComputeDriver):
    def __init__(self, hosts: Callable[[], list[str]]) -> None:
        self._hosts = hosts

    def compute_id(self, amphora_id: str) -> str:
        return amphora_id

    def hosts(self) -> list[str]:
        return self._hosts()

    def build(self, amphora_id: str, *, management_port: Port, files: dict[str, bytes],
              host: str | None = None, image_id: str | None = None,
              resources: Resources | None = None) -> ComputeInstance:
        return ComputeInstance(compute_id=amphora_id,
                               lb_network_ip=management_port.ip_address, host=host)

    def delete(self, compute_id: str, host: str | None = None) -> None:
        return None

    def instances(self, host: str | None = None) -> dict[str, bool] | None:
        return None  # it builds nothing, so it cannot tell what should be there

    def attach_port(self, compute_id: str, port: Port, host: str | None = None) -> str:
        return "fa:16:3e:00:00:00"

    def detach_port(self, compute_id: str, port: Port, host: str | None = None) -> None:
        return None
