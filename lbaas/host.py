"""What the controller host needs before it can run amphorae, and how to take it down.

With the ``local`` network driver: the management network ``lbaas-mgmt`` (bridge with the
controller's address) and, with ``[networking] ip_tables_fw``, the firewall that protects
the host from its amphorae.
"""
from __future__ import annotations

import subprocess

from lbaas import firewall
from lbaas.config import Settings
from lbaas.db.engine import Database
from lbaas.network.management import MANAGEMENT_BRIDGE, ensure_management_network

LOCAL_NETWORK_DRIVERS = ("network_local_driver",)


def uses_local_network(settings: Settings) -> bool:
    return settings.controller_worker.network_driver in LOCAL_NETWORK_DRIVERS


def firewall_spec(settings: Settings) -> firewall.FirewallSpec:
    """The firewall of this lbaas; a non-default management bridge gets chains of its own."""
    bridge = settings.networking.lb_network_bridge
    prefix = "LBAAS" if bridge == MANAGEMENT_BRIDGE else f"LBAAS-{bridge}"
    return firewall.FirewallSpec(management_bridge=bridge,
                                 heartbeat_port=settings.health_manager.bind_port,
                                 log_drops=settings.networking.ip_tables_fw_log,
                                 chain_prefix=prefix)


def prepare(settings: Settings, db: Database) -> None:
    """Create the management network and install the firewall (both idempotent)."""
    if not uses_local_network(settings):
        return
    ensure_management_network(db, settings)
    # New amphorae appear on the management bridge every few seconds: ask again for an
    # unanswered address after 100 ms, not the kernel's default 1 s (this bridge only).
    subprocess.run(["sysctl", "-qw", f"net.ipv4.neigh.{settings.networking.lb_network_bridge}"
                    ".retrans_time_ms=100"], check=True)
    if settings.networking.ip_tables_fw:
        firewall.apply(firewall_spec(settings))


def down(settings: Settings) -> None:
    """Remove the firewall rules ``prepare`` installed; amphorae keep running."""
    firewall.remove(firewall_spec(settings))
