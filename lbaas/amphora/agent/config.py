"""The agent's configuration file (``amphora-agent.conf``, upstream's option names)."""
from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from pathlib import Path

from lbaas.amphora.agent.logs import LogOffload


@dataclass(frozen=True)
class AgentConfig:
    amphora_id: str
    base_path: Path
    bind_host: str
    bind_port: int
    agent_server_cert: Path
    agent_server_ca: Path
    haproxy_cmd: str = "/usr/sbin/haproxy"
    agent_request_read_timeout: int = 180
    # [health_manager], amphora side: where and how often heartbeats go, and their key.
    controller_ip_port_list: tuple[str, ...] = ()
    heartbeat_interval: float = 10.0
    heartbeat_key: str = ""
    # Where the agent logs (empty: standard error), and the size that rotates it: the log
    # of an amphora stays under log_max_bytes * (log_backup_count + 1) whatever happens.
    log_file: Path | None = None
    log_max_bytes: int = 1024 * 1024
    log_backup_count: int = 2
    # haproxy's flow and administrative logs: kept here (bounded as the agent's own log)
    # and sent to syslog receivers (lbaas.amphora.agent.logs).
    log_offload: LogOffload = field(default_factory=LogOffload)

    @classmethod
    def load(cls, path: Path) -> AgentConfig:
        parser = configparser.ConfigParser(interpolation=None)
        if not parser.read(path):
            raise FileNotFoundError(f"agent configuration {path} not found")
        agent = parser["amphora_agent"]
        amphora = parser["haproxy_amphora"]
        health = parser["health_manager"] if parser.has_section("health_manager") else {}
        return cls(
            amphora_id=agent["amphora_id"],
            base_path=Path(amphora["base_path"]),
            bind_host=amphora.get("bind_host", "::"),
            bind_port=amphora.getint("bind_port", 9443),
            agent_server_cert=Path(agent["agent_server_cert"]),
            agent_server_ca=Path(agent["agent_server_ca"]),
            haproxy_cmd=amphora.get("haproxy_cmd", "/usr/sbin/haproxy"),
            agent_request_read_timeout=agent.getint("agent_request_read_timeout", 180),
            controller_ip_port_list=tuple(
                item.strip() for item in health.get("controller_ip_port_list", "").split(",")
                if item.strip()),
            heartbeat_interval=float(health.get("heartbeat_interval", 10)),
            heartbeat_key=health.get("heartbeat_key", ""),
            log_file=Path(agent["log_file"]) if agent.get("log_file") else None,
            log_max_bytes=agent.getint("log_max_bytes", 1024 * 1024),
            log_backup_count=agent.getint("log_backup_count", 2),
            log_offload=LogOffload(
                admin_log_targets=_targets(agent.get("admin_log_targets", "")),
                tenant_log_targets=_targets(agent.get("tenant_log_targets", "")),
                user_log_facility=agent.getint("user_log_facility", 0),
                administrative_log_facility=agent.getint("administrative_log_facility", 1),
                log_protocol=agent.get("log_protocol", "UDP"),
                disable_local_log_storage=agent.getboolean("disable_local_log_storage",
                                                           False)),
        )

    def write(self, path: Path) -> None:
        parser = configparser.ConfigParser(interpolation=None)
        parser["amphora_agent"] = {
            "amphora_id": self.amphora_id,
            "agent_server_cert": str(self.agent_server_cert),
            "agent_server_ca": str(self.agent_server_ca),
            "agent_request_read_timeout": str(self.agent_request_read_timeout),
            "log_file": str(self.log_file or ""),
            "log_max_bytes": str(self.log_max_bytes),
            "log_backup_count": str(self.log_backup_count),
            "admin_log_targets": ", ".join(self.log_offload.admin_log_targets),
            "tenant_log_targets": ", ".join(self.log_offload.tenant_log_targets),
            "user_log_facility": str(self.log_offload.user_log_facility),
            "administrative_log_facility": str(self.log_offload.administrative_log_facility),
            "log_protocol": self.log_offload.log_protocol,
            "disable_local_log_storage": str(self.log_offload.disable_local_log_storage),
        }
        parser["haproxy_amphora"] = {
            "base_path": str(self.base_path),
            "bind_host": self.bind_host,
            "bind_port": str(self.bind_port),
            "haproxy_cmd": self.haproxy_cmd,
        }
        parser["health_manager"] = {
            "controller_ip_port_list": ", ".join(self.controller_ip_port_list),
            "heartbeat_interval": str(self.heartbeat_interval),
            "heartbeat_key": self.heartbeat_key,
        }
        with path.open("w") as handle:
            parser.write(handle)
        path.chmod(0o600)


def _targets(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())
