"""The heartbeat sender: a thread that tells the health managers how this amphora is.

Every ``heartbeat_interval`` seconds it reads each running haproxy's ``show stat`` and
sends one signed message (upstream's format version 3, see ``status_message``) to every
address of ``controller_ip_port_list``:

    {"id": <amphora id>, "seq": n, "ver": 3,
     "listeners": {<listener id>: {"status": "OPEN", "stats": {"rx", "tx", "conns",
                                                               "totconns", "ereq"}}},
     "pools": {"<pool id>:<listener id>": {"status": "UP", "members": {<member id>: "UP"}}}}

UDP listeners (nftables, see ``udp``) are in it as upstream puts its LVS ones: ``OPEN``,
counters from nftables (``totconns``: flows) plus ``packets`` (absolute, ours), and their
pools with upstream's member statuses plus ``member_stats`` (absolute bytes and packets
per member, ours).

Counters are deltas since the previous message (``conns`` is the current count); the
last values are kept in a file so that an agent restart does not report them twice.
``seq`` starts from the clock, so it keeps growing across restarts of the agent (the
health manager drops a message whose sequence is not newer than the last one it saw).
"""
from __future__ import annotations

import csv
import json
import logging
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lbaas.amphora.agent.config import AgentConfig
from lbaas.amphora.agent.haproxy import Haproxy, HaproxyPaths
from lbaas.amphora.agent.loop import Loop
from lbaas.amphora.agent.status_message import wrap
from lbaas.amphora.agent.udp import UdpServices

LOG = logging.getLogger(__name__)
MSG_VER = 3
COUNTERS = {"rx": "bin", "tx": "bout", "totconns": "stot", "ereq": "ereq"}
COUNTERS_FILE = "stats_counters.json"

# lb id -> haproxy's "show stat" CSV, or None when that haproxy does not answer.
StatReader = Callable[[str], "str | None"]


def parse_show_stat(text: str) -> list[dict[str, str]]:
    """haproxy's ``show stat`` CSV (header line ``# pxname,svname,...``) as rows."""
    lines = text.strip().splitlines()
    if not lines or not lines[0].startswith("# "):
        return []
    lines[0] = lines[0][2:]
    return [row for row in csv.DictReader(lines) if "prometheus" not in row.get("pxname", "")]


def _member_status(row: dict[str, str]) -> str:
    # Some haproxy versions report a drained server (weight 0) as UP (as upstream notes).
    if row["status"] == "UP" and row.get("weight") == "0":
        return "DRAIN"
    return row["status"]


def pool_status(rows: Iterable[dict[str, str]]) -> dict[str, dict[str, Any]]:
    """Backends (``<pool id>:<listener id>``) with their status and their servers' statuses."""
    pools: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["svname"] == "FRONTEND":
            continue
        pool = pools.setdefault(row["pxname"], {"status": "DOWN", "members": {}})
        if row["svname"] == "BACKEND":
            pool["status"] = row["status"]
        else:
            pool["members"][row["svname"]] = _member_status(row)
    return pools


class StatsCounters:
    """The last absolute counters per listener, turned into deltas; kept in a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.last: dict[str, dict[str, int]] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.last = {}

    def deltas(self, listener_id: str, row: dict[str, str]) -> dict[str, int]:
        current = {key: int(row.get(column) or 0) for key, column in COUNTERS.items()}
        previous = self.last.get(listener_id, {})
        self.last[listener_id] = current
        # A counter that went down means haproxy restarted: all of it is new.
        return {key: value - previous.get(key, 0) if value >= previous.get(key, 0) else value
                for key, value in current.items()}

    def save(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.last))
        temporary.replace(self.path)


def running_load_balancers(base_path: Path) -> list[str]:
    """Ids of the load balancers with a configuration in this amphora."""
    if not base_path.exists():
        return []
    return sorted(directory.name for directory in base_path.iterdir()
                  if (directory / "haproxy.cfg").exists())


def build_message(amphora_id: str, seq: int, stats_by_lb: dict[str, str],
                  counters: StatsCounters) -> dict[str, Any]:
    """The version 3 message from each load balancer's ``show stat`` output."""
    message: dict[str, Any] = {"id": amphora_id, "seq": seq, "ver": MSG_VER,
                               "listeners": {}, "pools": {}}
    for text in stats_by_lb.values():
        rows = parse_show_stat(text)
        for row in rows:
            if row["svname"] == "FRONTEND":
                deltas = counters.deltas(row["pxname"], row)
                message["listeners"][row["pxname"]] = {
                    "status": row["status"],
                    "stats": {**deltas, "conns": int(row.get("scur") or 0)}}
        message["pools"].update(pool_status(rows))
    return message


def add_udp(message: dict[str, Any], listeners: dict[str, Any],
            pools: dict[str, dict[str, Any]], counters: StatsCounters) -> None:
    """The UDP listeners and pools (``UdpServices.report``) in the message, as upstream
    adds its LVS ones: counters as deltas, ``conns`` the flows tracked now."""
    for listener_id, listener in listeners.items():
        deltas = counters.deltas(listener_id, listener["row"])
        message["listeners"][listener_id] = {
            "status": listener["status"], "stats": {**deltas, "conns": listener["conns"]},
            "packets": listener["packets"]}
    message["pools"].update(pools)


def parse_destination(entry: str) -> tuple[str, int]:
    """``ip:port`` or ``[ipv6]:port`` -> (ip, port)."""
    host, _, port = entry.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"controller_ip_port_list entry {entry!r} is not ip:port")
    return host.strip("[]"), int(port)


class HeartbeatSender:
    """Sends a heartbeat every interval until stopped."""

    def __init__(self, config: AgentConfig, read_stats: StatReader | None = None,
                 udp_services: UdpServices | None = None) -> None:
        self.config = config
        self.udp = udp_services
        self.destinations = [parse_destination(entry) for entry in config.controller_ip_port_list]
        self.read_stats = read_stats or self._show_stat
        self.counters = StatsCounters(config.base_path / COUNTERS_FILE)
        self.seq = time.time_ns() // 1_000_000
        self._loop = Loop("heartbeat", self.send_once, config.heartbeat_interval, first_wait=False)

    def _show_stat(self, lb_id: str) -> str | None:
        haproxy = Haproxy(HaproxyPaths(self.config.base_path, lb_id), self.config.haproxy_cmd)
        if not haproxy.running():
            return None
        try:
            return haproxy.runtime("show stat")
        except OSError:
            return None

    def message(self) -> dict[str, Any]:
        stats = {lb_id: text for lb_id in running_load_balancers(self.config.base_path)
                 if (text := self.read_stats(lb_id)) is not None}
        self.seq += 1
        message = build_message(self.config.amphora_id, self.seq, stats, self.counters)
        if self.udp is not None:
            add_udp(message, *self.udp.report(), self.counters)
        self.counters.save()
        return message

    def send_once(self) -> None:
        datagram = wrap(self.message(), self.config.heartbeat_key)
        for host, port in self.destinations:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                try:
                    sock.sendto(datagram, (host, port))
                except OSError as exc:  # best effort, as upstream: the next one may get through
                    LOG.warning("heartbeat to %s:%s failed: %s", host, port, exc)

    def start(self) -> None:
        if not self.destinations:
            LOG.warning("no controller_ip_port_list: this amphora sends no heartbeats")
            return
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
