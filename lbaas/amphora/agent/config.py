"""The agent's configuration file (``amphora-agent.conf``, upstream's option names)."""
from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path


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

    @classmethod
    def load(cls, path: Path) -> AgentConfig:
        parser = configparser.ConfigParser(interpolation=None)
        if not parser.read(path):
            raise FileNotFoundError(f"agent configuration {path} not found")
        agent = parser["amphora_agent"]
        amphora = parser["haproxy_amphora"]
        return cls(
            amphora_id=agent["amphora_id"],
            base_path=Path(amphora["base_path"]),
            bind_host=amphora.get("bind_host", "::"),
            bind_port=amphora.getint("bind_port", 9443),
            agent_server_cert=Path(agent["agent_server_cert"]),
            agent_server_ca=Path(agent["agent_server_ca"]),
            haproxy_cmd=amphora.get("haproxy_cmd", "/usr/sbin/haproxy"),
            agent_request_read_timeout=agent.getint("agent_request_read_timeout", 180),
        )

    def write(self, path: Path) -> None:
        parser = configparser.ConfigParser(interpolation=None)
        parser["amphora_agent"] = {
            "amphora_id": self.amphora_id,
            "agent_server_cert": str(self.agent_server_cert),
            "agent_server_ca": str(self.agent_server_ca),
            "agent_request_read_timeout": str(self.agent_request_read_timeout),
        }
        parser["haproxy_amphora"] = {
            "base_path": str(self.base_path),
            "bind_host": self.bind_host,
            "bind_port": str(self.bind_port),
            "haproxy_cmd": self.haproxy_cmd,
        }
        with path.open("w") as handle:
            parser.write(handle)
        path.chmod(0o600)
