"""A network driver that plugs nothing and invents addresses, for API-only use and tests."""
from __future__ import annotations

import ipaddress
import uuid

from sqlalchemy.orm import Session

from lbaas.drivers.network.base import NetworkDriver, Port, VipRequest

# 198.18.0.0/15 is reserved for benchmarking (RFC 2544): never a real host's address.
_NOOP_RANGE = ipaddress.ip_network("198.18.0.0/15")


def _address_for(owner: str) -> str:
    offset = uuid.uuid5(uuid.NAMESPACE_OID, owner).int % (_NOOP_RANGE.num_addresses - 2) + 1
    return str(_NOOP_RANGE[offset])


def _id_for(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, name))


class NoopNetworkDriver(NetworkDriver):
    def allocate_vip(self, request: VipRequest) -> Port:
        """The same invented VIP every time; a subnet or network not named is invented
        from the one that is (as upstream's no-op driver, which makes up both)."""
        return Port(id=request.port_id or _id_for(request.load_balancer_id),
                    network_id=request.network_id or _id_for(f"network:{request.subnet_id}"),
                    subnet_id=request.subnet_id or _id_for(f"subnet:{request.network_id}"),
                    ip_address=request.ip_address or _address_for(request.load_balancer_id))

    def reserve_vip(self, session: Session, request: VipRequest) -> Port:
        return self.allocate_vip(request)

    def allocate_port(self, owner: str, subnet_id: str | None) -> Port:
        return Port(id=_id_for(f"{owner}:{subnet_id}"),
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
