"""Network driver ``local``: ports from this host's registry, on its Linux bridges.

Addresses come from :mod:`lbaas.network` (a database registry that never hands out an
address twice); every network is a bridge on this host, created when a port on it is
first needed. The management network is ``lbaas-mgmt``.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lbaas.db.engine import Database
from lbaas.db.models import Port as PortRow
from lbaas.drivers.network.base import NetworkDriver, Port, VipRequest
from lbaas.network import ports, registry, segments
from lbaas.network.bridge import Bridges
from lbaas.network.errors import NoFreeAddress, NotFound
from lbaas.network.management import MANAGEMENT_SUBNET


class LocalNetworkDriver(NetworkDriver):
    def __init__(self, db: Database, bridges: Bridges | None = None) -> None:
        self.db = db
        self.bridges = bridges or Bridges()

    def _port(self, session: Session, row: PortRow) -> Port:
        subnet = registry.get_subnet(session, row.subnet_id)
        network = subnet.network
        return Port(id=row.id, network_id=network.id, subnet_id=subnet.id,
                    ip_address=row.ip_address, subnet_cidr=subnet.cidr,
                    gateway=subnet.gateway_ip, bridge=network.bridge, mtu=network.mtu,
                    mac_address=row.mac_address, created_at=row.created_at)

    def _plugged(self, session: Session, row: PortRow) -> Port:
        """A port about to be plugged: a local network's bridge exists on this host (created
        again after a reboot, with its physical interface); a VXLAN or flat network is
        joined by the host that plugs into it (its compute agent), not by the controller.
        Only allocation checks this: reading ports runs no command."""
        network = registry.get_subnet(session, row.subnet_id).network
        if network.network_type == segments.LOCAL:
            self.bridges.ensure_network(network)
        return self._port(session, row)

    def _allocate_vip(self, session: Session, request: VipRequest) -> PortRow:
        def on(subnet_id: str) -> PortRow:
            return ports.allocate(session, subnet_id, device_id=request.load_balancer_id,
                                  device_owner=ports.OWNER_VIP, ip_address=request.ip_address)
        if request.subnet_id:
            return on(request.subnet_id)
        if not request.network_id:
            raise NotFound("a VIP needs a subnet or a network")
        network = registry.find_network(session, request.network_id)
        for subnet in network.subnets:  # the first subnet that still has room
            try:
                return on(subnet.id)
            except NoFreeAddress:
                continue
        raise NoFreeAddress(f"no subnet of network {network.name} has a free address")

    def _vip_row(self, session: Session, request: VipRequest) -> PortRow:
        """The port asked for, else the VIP the load balancer holds, else a new one."""
        if request.port_id:
            existing = session.get(PortRow, request.port_id)
            if existing is None:
                raise NotFound(f"VIP port {request.port_id} not found")
            return existing
        held = next((row for row in ports.ports_of(session, request.load_balancer_id)
                     if row.device_owner == ports.OWNER_VIP), None)
        return held or self._allocate_vip(session, request)

    def allocate_vip(self, request: VipRequest) -> Port:
        with self.db.write() as session:
            return self._plugged(session, self._vip_row(session, request))

    def reserve_vip(self, session: Session, request: VipRequest) -> Port:
        return self._port(session, self._vip_row(session, request))

    def allocate_port(self, owner: str, subnet_id: str | None) -> Port:
        with self.db.write() as session:
            subnet = (registry.get_subnet(session, subnet_id) if subnet_id
                      else registry.find_subnet(session, MANAGEMENT_SUBNET))
            held = next((row for row in ports.ports_of(session, owner)
                         if row.subnet_id == subnet.id), None)
            row = held or ports.allocate(session, subnet.id, device_id=owner,
                                         device_owner=ports.OWNER_AMPHORA)
            return self._plugged(session, row)

    def get_port(self, port_id: str) -> Port | None:
        with self.db.read() as session:
            row = session.get(PortRow, port_id)
            return self._port(session, row) if row is not None else None

    def ports_of(self, owner: str) -> list[Port]:
        with self.db.read() as session:
            return [self._port(session, row) for row in ports.ports_of(session, owner)]

    def devices(self) -> dict[str, list[Port]]:
        found: dict[str, list[Port]] = {}
        with self.db.read() as session:
            for row in session.scalars(select(PortRow).where(PortRow.device_owner.in_(
                    (ports.OWNER_AMPHORA, ports.OWNER_VIP))).order_by(PortRow.created_at)):
                found.setdefault(row.device_id, []).append(self._port(session, row))
        return found

    def release_port(self, port_id: str) -> None:
        with self.db.write() as session:
            ports.release(session, port_id)

