"""The UDP/SCTP service of the load balancers on this amphora: nftables rules, health
monitors, status and counters for the heartbeat.

A load balancer's service description (``udp.json`` in its directory, from the controller:
``lbaas.amphora.udp_config``) is applied as one nftables transaction (``udp_rules``); its
pools' health monitors run here (``udp_monitor``) and every change of a member's state
applies the rules again, sending new flows only to the members that are up. Flows already
tracked to a member that goes down or is disabled are forgotten (``conntrack -D``), so
their next packet is balanced anew; a member drained (weight 0) keeps its flows.

The rules hold nothing but the VIPs, so an ACTIVE_STANDBY pair has them on both amphorae
and the one holding the VIP (keepalived) serves. Conntrack state and persistence entries
are not shared between the two: after a failover, flows are balanced anew.

While any UDP service is installed the amphora forwards packets (``ip_forward``); its
``filter_fwd`` chain (policy drop) lets only these flows through.
"""
from __future__ import annotations

import hashlib
import logging
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lbaas.amphora.agent import udp_rules
from lbaas.amphora.agent.nft import Nft, NftError
from lbaas.amphora.agent.udp_model import (
    InvalidService,
    Listener,
    Member,
    Pool,
    UdpService,
)
from lbaas.amphora.agent.udp_monitor import PoolMonitor

LOG = logging.getLogger(__name__)
CONFIG_NAME = "udp.json"
FORWARDING = (Path("/proc/sys/net/ipv4/ip_forward"),
              Path("/proc/sys/net/ipv6/conf/all/forwarding"))
FLOWS_SHOWN = re.compile(r"(\d+) flow entries have been shown")


class InvalidConfig(Exception):
    """The description is malformed or nftables refused the rules made of it."""


@dataclass(frozen=True)
class UdpPaths:
    base: Path
    lb_id: str

    @property
    def directory(self) -> Path:
        return self.base / self.lb_id

    @property
    def config(self) -> Path:
        return self.directory / CONFIG_NAME


def member_status(member: Member, pool: Pool, up: dict[str, bool]) -> str:
    """Upstream's member statuses in the heartbeat (``keepalivedlvs_query``)."""
    if not member.enabled:
        return "MAINT"
    if pool.monitor is not None and not up.get(member.id, True):
        return "DOWN"
    if member.weight == 0:
        return "DRAIN"
    return "UP" if pool.monitor is not None else "no check"


def pool_status(pool: Pool, up: dict[str, bool]) -> str:
    """DOWN without members, or when monitored and none of the enabled ones is up."""
    enabled = [member for member in pool.members if member.enabled]
    if not pool.members or (pool.monitor is not None and enabled
                            and not any(up.get(member.id, True) for member in enabled)):
        return "DOWN"
    return "UP"


class UdpLoadBalancer:
    """One load balancer's UDP service on this amphora."""

    def __init__(self, paths: UdpPaths, nft: Nft, conntrack: str = "conntrack") -> None:
        self.paths = paths
        self.nft = nft
        self.conntrack = conntrack
        self.service: UdpService | None = None
        self.monitors: dict[str, PoolMonitor] = {}
        self._alive: set[tuple[str, str]] = set()  # (listener id, member id) flows may go to
        self._lock = threading.RLock()

    @property
    def table(self) -> str:
        return udp_rules.table_name(self.paths.lb_id)

    def install(self, text: str) -> str:
        """Serve the description ``text``; returns its MD5 (the ETag). The file is replaced
        only once nftables took the rules."""
        try:
            service = UdpService.from_json(text)
        except InvalidService as exc:
            raise InvalidConfig(str(exc)) from exc
        if service.load_balancer_id != self.paths.lb_id:
            raise InvalidConfig(f"the description is for load balancer {service.load_balancer_id}")
        with self._lock:
            self._serve(service)
            self.paths.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            temporary = self.paths.config.with_suffix(".tmp")
            temporary.write_text(text)
            temporary.replace(self.paths.config)
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    def restore(self) -> None:
        """Serve the installed description again (the agent restarted)."""
        self.install(self.paths.config.read_text())

    def _serve(self, service: UdpService) -> None:
        previous = {pool_id: monitor.health for pool_id, monitor in self.monitors.items()}
        monitors = {
            listener.pool.id: PoolMonitor(listener.pool.monitor, listener.pool.members,
                                          self.apply, previous=previous.get(listener.pool.id))
            for listener in service.listeners
            if listener.pool is not None and listener.pool.monitor is not None}
        old_service, old_monitors = self.service, self.monitors
        self.service, self.monitors = service, monitors
        try:
            self.apply()
        except InvalidConfig:
            self.service, self.monitors = old_service, old_monitors
            raise
        for monitor in old_monitors.values():
            monitor.stop()
        for monitor in monitors.values():
            monitor.start()

    def _up(self, pool: Pool) -> dict[str, bool]:
        monitor = self.monitors.get(pool.id)
        return monitor.up() if monitor is not None else {}

    def apply(self) -> None:
        """Make the rules match the description and the members' health now."""
        with self._lock:
            service = self.service
            if service is None:
                return
            served: dict[str, tuple[Member, ...]] = {}
            alive: set[tuple[str, str]] = set()
            for listener in service.listeners:
                if listener.pool is None:
                    continue
                up = self._up(listener.pool)
                served[listener.id] = udp_rules.served_members(listener.pool, up)
                alive |= {(listener.id, member.id) for member in listener.pool.members
                          if member.enabled and up.get(member.id, True)}
            try:
                self.nft.run(udp_rules.commands(service, served, self._existing()))
            except NftError as exc:
                raise InvalidConfig(f"nftables refused the UDP rules: {exc}") from exc
            gone = self._alive - alive
            self._alive = alive
        for listener_id, member_id in gone:
            self._forget_flows(listener_id, member_id)

    def _existing(self) -> dict[str, str]:
        """The named objects (counters, maps, sets) the table holds now."""
        try:
            items = self.nft.list(f"table {udp_rules.FAMILY} {self.table}")
        except NftError:
            return {}  # no table yet
        return {item[kind]["name"]: kind for item in items
                for kind in ("counter", "map", "set") if kind in item}

    def _member(self, listener_id: str, member_id: str) -> Member | None:
        for listener, member in udp_rules.members_of(self.service or UdpService("", ())):
            if listener.id == listener_id and member.id == member_id:
                return member
        return None

    def _forget_flows(self, listener_id: str, member_id: str) -> None:
        """Delete the conntrack entries of the listener's flows to a member that left."""
        member = self._member(listener_id, member_id)
        if member is None:
            return
        family = "ipv6" if ":" in member.address else "ipv4"
        command = [self.conntrack, "-D", "-f", family, "--mark", str(udp_rules.mark(listener_id)),
                   "--reply-src", member.address]
        try:
            subprocess.run(command, capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            LOG.warning("could not forget the flows to member %s: %s", member_id, exc)

    def stop_monitors(self) -> None:
        with self._lock:
            for monitor in self.monitors.values():
                monitor.stop()

    def remove(self) -> None:
        with self._lock:
            self.stop_monitors()
            self.monitors, self.service, self._alive = {}, None, set()
            try:
                self.nft.run(udp_rules.delete_commands(self.paths.lb_id))
            except NftError as exc:
                LOG.warning("could not delete table %s: %s", self.table, exc)
            self.paths.config.unlink(missing_ok=True)

    # -- heartbeat -----------------------------------------------------------------------

    def counters(self) -> dict[str, dict[str, int]]:
        """Named counter -> {"packets", "bytes"}."""
        try:
            items = self.nft.list(f"counters table {udp_rules.FAMILY} {self.table}")
        except NftError:
            return {}
        return {item["counter"]["name"]: {"packets": item["counter"]["packets"],
                                          "bytes": item["counter"]["bytes"]}
                for item in items if "counter" in item}

    def active_flows(self, listener: Listener) -> int:
        """Flows conntrack tracks for the listener now (0 if conntrack cannot tell)."""
        command = [self.conntrack, "-L", "--mark", str(udp_rules.mark(listener.id))]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=10,
                                    check=False)
        except (OSError, subprocess.TimeoutExpired):
            return 0
        found = FLOWS_SHOWN.search(result.stderr)
        return int(found.group(1)) if found else 0

    def report(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """(listeners, pools) for the heartbeat. A listener's ``row`` holds absolute
        counters under haproxy's ``show stat`` names (``bin``, ``bout``, ``stot``: flows,
        ``ereq``: flows refused over the connection limit) for the sender's deltas, and
        ``packets`` its absolute packet counts; pools carry their members' statuses and
        absolute byte and packet counters."""
        with self._lock:
            service = self.service
            if service is None:
                return {}, {}
            counters = self.counters()
            listeners: dict[str, Any] = {}
            pools: dict[str, dict[str, Any]] = {}
            for listener in service.listeners:
                names = udp_rules.listener_counters(listener.id)

                def value(name: str, key: str) -> int:
                    return counters.get(name, {}).get(key, 0)

                listeners[listener.id] = {
                    "status": "OPEN", "conns": self.active_flows(listener),
                    "packets": {"rx": value(names["in"], "packets"),
                                "tx": value(names["out"], "packets")},
                    "row": {"bin": value(names["in"], "bytes"),
                            "bout": value(names["out"], "bytes"),
                            "stot": value(names["new"], "packets"),
                            "ereq": value(names["drop"], "packets")}}
                pool = listener.pool
                if pool is None:
                    continue
                up = self._up(pool)
                member_stats = {}
                for member in pool.members:
                    member_names = udp_rules.member_counters(member.id)
                    member_stats[member.id] = {
                        "rx": value(member_names["in"], "bytes"),
                        "tx": value(member_names["out"], "bytes"),
                        "rx_packets": value(member_names["in"], "packets"),
                        "tx_packets": value(member_names["out"], "packets")}
                pools[f"{pool.id}:{listener.id}"] = {
                    "status": pool_status(pool, up),
                    "members": {member.id: member_status(member, pool, up)
                                for member in pool.members},
                    "member_stats": member_stats}
            return listeners, pools


class UdpServices:
    """The UDP services of every load balancer on this amphora (the agent's one registry,
    shared by its REST API and its heartbeat sender)."""

    def __init__(self, base_path: Path, nft: Nft | None = None,
                 forwarding: tuple[Path, ...] = FORWARDING) -> None:
        self.base_path = base_path
        self.nft = nft or Nft()
        self.forwarding = forwarding
        self._services: dict[str, UdpLoadBalancer] = {}
        self._lock = threading.Lock()

    def get(self, lb_id: str) -> UdpLoadBalancer:
        with self._lock:
            if lb_id not in self._services:
                self._services[lb_id] = UdpLoadBalancer(UdpPaths(self.base_path, lb_id), self.nft)
            return self._services[lb_id]

    def installed(self) -> list[str]:
        """Load balancers with a UDP description on disk."""
        if not self.base_path.exists():
            return []
        return sorted(directory.name for directory in self.base_path.iterdir()
                      if (directory / CONFIG_NAME).exists())

    def install(self, lb_id: str, text: str) -> str:
        etag = self.get(lb_id).install(text)
        self._forward(True)
        return etag

    def _forward(self, enabled: bool) -> None:
        """Forwarding on while a UDP service is installed (the agent's namespace only)."""
        for path in self.forwarding:
            try:
                path.write_text("1\n" if enabled else "0\n")
            except OSError as exc:  # IPv6 may be off in the namespace
                LOG.debug("cannot set %s: %s", path, exc)

    def remove(self, lb_id: str) -> None:
        with self._lock:
            known = lb_id in self._services
        if not known and not UdpPaths(self.base_path, lb_id).config.exists():
            return  # never served UDP here: no table to delete
        self.get(lb_id).remove()
        with self._lock:
            self._services.pop(lb_id, None)
            idle = not self._services
        if idle:
            self._forward(False)

    def restore(self) -> None:
        """At agent start: serve what was installed before (rules, monitors)."""
        for lb_id in self.installed():
            try:
                self.get(lb_id).restore()
                self._forward(True)
            except (InvalidConfig, OSError) as exc:
                LOG.error("could not serve the UDP listeners of load balancer %s: %s", lb_id, exc)

    def stop(self) -> None:
        """Stop every health monitor; the rules stay (the agent stops, not the service)."""
        with self._lock:
            services = list(self._services.values())
        for service in services:
            service.stop_monitors()

    def report(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        listeners: dict[str, Any] = {}
        pools: dict[str, dict[str, Any]] = {}
        with self._lock:
            services = list(self._services.values())
        for service in services:
            found_listeners, found_pools = service.report()
            listeners.update(found_listeners)
            pools.update(found_pools)
        return listeners, pools
