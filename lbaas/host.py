"""What the controller host needs before it can run amphorae, and how to take it down.

With the ``local`` network driver: the kernel limits of many amphorae (lbaas.host_limits),
the management network ``lbaas-mgmt`` (bridge with the controller's address) and, with
``[networking] ip_tables_fw``, the firewall that protects the host from its amphorae.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from lbaas import constants, filelock, firewall, host_limits
from lbaas.config import ConfigError, Settings
from lbaas.controller.flow import FlowContext
from lbaas.controller.housekeeping import spare_pool
from lbaas.db.engine import Database
from lbaas.db.models import Amphora
from lbaas.db.overview import REQUIRED_SERVICES, service_states
from lbaas.drivers import Drivers
from lbaas.network import management
from lbaas.network.bridge import Bridges
from lbaas.network.management import MANAGEMENT_BRIDGE, ensure_management_network

# The services of one host start together (systemd starts their units at once) and each
# prepares the host: they take turns, or two would both find the bridge, its address or
# the firewall's jumps missing and both add them (the second failing, or a jump twice).
HOST_LOCK = Path("/run/lock/lbaas-host.lock")


def firewall_spec(settings: Settings) -> firewall.FirewallSpec:
    """The firewall of this lbaas; a non-default management bridge gets chains of its own."""
    bridge = settings.networking.lb_network_bridge
    prefix = "LBAAS" if bridge == MANAGEMENT_BRIDGE else f"LBAAS-{bridge}"
    logs = settings.amphora_agent
    log_ports = sorted({(logs.log_protocol.lower(), int(target.rpartition(":")[2]))
                        for target in (*logs.admin_log_targets, *logs.tenant_log_targets)})
    return firewall.FirewallSpec(management_bridge=bridge,
                                 heartbeat_port=settings.health_manager.bind_port,
                                 log_drops=settings.networking.ip_tables_fw_log,
                                 chain_prefix=prefix, log_ports=tuple(log_ports))


def prepare(settings: Settings, db: Database) -> None:
    """Raise the limits a thousand amphorae reach, create the management network and
    install the firewall (all idempotent; one process of this host at a time)."""
    host_limits.raise_open_files()
    if not management.uses_local_network(settings):
        return
    with filelock.held(HOST_LOCK):
        host_limits.raise_sysctls()
        ensure_management_network(db, settings)
        # New amphorae appear on the management bridge every few seconds: ask again for
        # an unanswered address after 100 ms, not the kernel's default 1 s (this bridge).
        subprocess.run(["sysctl", "-qw", f"net.ipv4.neigh.{settings.networking.lb_network_bridge}"
                        ".retrans_time_ms=100"], check=True)
        if settings.networking.ip_tables_fw:
            firewall.apply(firewall_spec(settings))


def down(settings: Settings) -> None:
    """Remove the firewall rules ``prepare`` installed; amphorae keep running."""
    with filelock.held(HOST_LOCK):
        firewall.remove(firewall_spec(settings))


@dataclass(frozen=True)
class Teardown:
    """What ``lbaas down --all`` would remove, and what stops it."""

    running: list[str]  # controller processes still running (they would rebuild it all)
    serving: list[str]  # amphorae of load balancers, cut off without the bridge
    spares: list[str]
    bridge: str


def teardown_plan(db: Database, settings: Settings) -> Teardown:
    with db.read() as session:
        running = [f"{s.kind} on {s.host} (pid {s.pid})" for s in service_states(session)
                   if s.alive and s.kind in (*REQUIRED_SERVICES, "api")]
        serving = list(session.scalars(select(Amphora.id).where(
            Amphora.load_balancer_id.is_not(None), Amphora.status != constants.DELETED)))
    return Teardown(running, serving, spare_pool.spares(db),
                    settings.networking.lb_network_bridge)


def tear_down(settings: Settings, db: Database, drivers: Drivers) -> list[str]:
    """Remove the spares and this host's side of the management network (``lbaas down
    --all``); the caller has checked ``teardown_plan``. Returns the spares removed."""
    removed = spare_pool.empty(FlowContext(db=db, drivers=drivers, settings=settings))
    drivers.compute.release()
    if management.uses_local_network(settings):
        with db.read() as session:
            try:
                segment = management.segment(session, settings)
            except ConfigError:  # never created: only a bridge by that name may be left
                segment = None
        if segment is not None:
            management.local_side(settings).remove(segment)
        Bridges().remove(settings.networking.lb_network_bridge)
    return removed
