"""A network driver that plugs nothing and invents addresses, for API-only use and tests."""
from __future__ import annotations

import ipaddress
import uuid

from lbaas.drivers.network.base import NetworkDriver, Vip, VipRequest

# 198.18.0.0/15 is reserved for benchmarking (RFC 2544): never a real host's address.
_NOOP_RANGE = ipaddress.ip_network("198.18.0.0/15")


class NoopNetworkDriver(NetworkDriver):
    def allocate_vip(self, request: VipRequest) -> Vip:
        address = request.ip_address
        if address is None:
            offset = uuid.UUID(request.load_balancer_id).int % (_NOOP_RANGE.num_addresses - 2) + 1
            address = str(_NOOP_RANGE[offset])
        return Vip(ip_address=address, port_id=request.port_id or str(uuid.uuid4()),
                   subnet_id=request.subnet_id, network_id=request.network_id)

    def deallocate_vip(self, vip: Vip) -> None:
        return None

    def plug_vip(self, vip: Vip, amphora_id: str, compute_id: str) -> str | None:
        return None

    def unplug_vip(self, vip: Vip, amphora_id: str, compute_id: str) -> None:
        return None
