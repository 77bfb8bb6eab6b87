"""A network driver that plugs nothing and invents addresses, for API-only use and tests."""
from __future__ import annotations

import ipaddress
import uuid

from lbaas.drivers.network.base import NetworkDriver, Port, VipRequest

# 198.18.0.0/15 is reserved for benchmarking (RFC 2544): never a real host's address.
_NOOP_RANGE = ipaddress.ip_network("198.18.0.0/15")


def _address_for(owner: str) -> str:
    offset = uuid.uuid5(uuid.NAMESPACE_OID, owner).int % (_NOOP_RANGE.num_addresses - 2) + 1
    return str(_NOOP_RANGE[offset])


class NoopNetworkDriver(NetworkDriver):
    def allocate_vip(self, request: VipRequest) -> Port:
        return Port(id=request.port_id or str(uuid.uuid5(uuid.NAMESPACE_OID, request.load_balancer_id)),
                    network_id=request.network_id,
                    subnet_id=request.subnet_id,
                    ip_address=request.ip_address or _address_for(request.load_balancer_id))

    def allocate_port(self, owner: str, subnet_id: str | None) -> Port:
        return Port(id=str(uuid.uuid5(uuid.NAMESPACE_OID, f"{owner}:{subnet_id}")),
                    network_id=None, subnet_id=subnet_id,
                    ip_address=_address_for(f"{owner}:{subnet_id}"))

    def get_port(self, port_id: str) -> Port | None:
        return None

    def ports_of(self, owner: str) -> list[Port]:
        return []

    def devices(self) -> dict[str, list[Port]]:
        return {}

    def release_port(self, port_id: str) -> None:
        return None
