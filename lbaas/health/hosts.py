"""Compute hosts' liveness, for the ``compute_agent_driver``.

Every ``[compute] host_check_interval`` the health manager asks each registered compute
host's agent for its status:

- an answer makes the host UP (new amphorae may go there) and records what it said
  (its tunnel address, how many amphorae it runs, its room);
- silence for ``[compute] host_down_timeout`` makes it DOWN: no new amphora is placed
  there (a flow that finds a host unreachable marks it DOWN at once). Its amphorae are
  failed over when their own heartbeats stop, as any amphora;
- a host that comes back (DOWN or new, now UP) is reconciled at once: what it still runs
  that no live row owns (amphorae failed over while it was away) is removed before it
  can answer for a VIP, and a row of its that does not run is failed over;
- each host's VXLAN devices flood to every other host's tunnel address: one that lacks a
  newer host (or still has a removed one) is sent its networks' segments again. This
  controller's own side of the management network follows too.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select

from lbaas.amphora.agent.loop import Loop
from lbaas.config import Settings
from lbaas.controller import reconciler
from lbaas.controller.flow import FlowContext
from lbaas.db.engine import Database
from lbaas.db.models import Host, Network
from lbaas.drivers import Drivers
from lbaas.drivers.compute.agent import ComputeAgentDriver
from lbaas.drivers.compute.base import HostUnreachable
from lbaas.drivers.compute.netns import ComputeError
from lbaas.network import hosts, management, registry, segments

LOG = logging.getLogger(__name__)


class HostMonitor:
    def __init__(self, settings: Settings, db: Database, drivers: Drivers,
                 notify_worker: Callable[[], None] | None = None) -> None:
        assert isinstance(drivers.compute, ComputeAgentDriver)
        self.compute: ComputeAgentDriver = drivers.compute
        self.context = FlowContext(db=db, drivers=drivers, settings=settings)
        self.notify_worker = notify_worker
        self._tunnels: list[str] | None = None
        self._loop = Loop("hm-hosts", self.run_once, settings.compute.host_check_interval,
                          first_wait=False)

    @staticmethod
    def applies(settings: Settings) -> bool:
        return settings.controller_worker.compute_driver == "compute_agent_driver"

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def run_once(self) -> list[str]:
        """One pass; returns the hosts that came back."""
        db, settings = self.context.db, self.context.settings
        with db.read() as session:
            names = list(session.scalars(select(Host.name).where(Host.kind == hosts.COMPUTE)))
        back = []
        for name in names:
            try:
                status = self.compute.status(name)
            except (HostUnreachable, ComputeError) as exc:
                with db.write() as session:
                    down = hosts.record_silence(session, name, settings.compute.host_down_timeout)
                if down:
                    LOG.warning("host %s is DOWN (%s): no new amphora goes there; its amphorae "
                                "are failed over when their heartbeats stop", name, exc)
                continue
            with db.write() as session:
                previous = hosts.record_status(session, name, status)
            if previous != hosts.UP:
                LOG.info("host %s is UP (was %s)", name, previous)
                back.append(name)
            self._sync_peers(name, status)
        if back:
            report = reconciler.run(self.context, hosts=list(back))
            if report.failed_over and self.notify_worker:
                self.notify_worker()
        self._sync_own_side()
        return back

    def _sync_peers(self, name: str, status: dict[str, object]) -> None:
        """Send the host its networks' segments again where its flooding list is stale."""
        reported = status.get("vxlan_peers") or {}
        assert isinstance(reported, dict)
        with self.context.db.read() as session:
            own = status.get("local_ip")
            wanted = {address for address in hosts.tunnel_addresses(session) if address != own}
            stale = [registry.segment_of(network, sorted(wanted)) for network in session.scalars(
                select(Network).where(Network.network_type == segments.VXLAN))
                if str(network.segmentation_id) in reported
                and set(reported[str(network.segmentation_id)]) != wanted]
        for segment in stale:
            LOG.info("host %s: network %s now floods to %s", name, segment.network_id,
                     ", ".join(segment.peers) or "nobody")
            self.compute.ensure_segment(name, segment)

    def _sync_own_side(self) -> None:
        """This controller's side of a VXLAN management network, when hosts changed."""
        settings = self.context.settings
        if settings.networking.lb_network_type != segments.VXLAN:
            return
        with self.context.db.read() as session:
            tunnels = hosts.tunnel_addresses(session)
            if tunnels == self._tunnels:
                return
            joined = management.segment(session, settings)
        management.local_side(settings).ensure(joined)
        self._tunnels = tunnels
