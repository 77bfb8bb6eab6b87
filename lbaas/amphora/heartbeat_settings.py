"""What the health manager and the amphorae agree on: where heartbeats go, and their key."""
from __future__ import annotations

import secrets

from lbaas import keyfile
from lbaas.amphora.agent.heartbeat import parse_destination
from lbaas.config import ConfigError, Settings
from lbaas.network.management import layout, uses_local_network

KEY_FILE = "heartbeat.key"


def bind_ip(settings: Settings) -> str:
    """[health_manager] bind_ip, or where amphorae send: the controller's management address."""
    if settings.health_manager.bind_ip:
        return settings.health_manager.bind_ip
    if uses_local_network(settings):
        return str(layout(settings.networking).controller_ip)
    return "127.0.0.1"


def controller_ip_port_list(settings: Settings) -> list[str]:
    """Where amphorae send heartbeats: the option, else this health manager's address."""
    if settings.health_manager.controller_ip_port_list:
        return list(settings.health_manager.controller_ip_port_list)
    address = bind_ip(settings)
    address = f"[{address}]" if ":" in address else address
    return [f"{address}:{settings.health_manager.bind_port}"]


def heartbeat_key(settings: Settings) -> str:
    """[health_manager] heartbeat_key, else a random key made once in the state path (0600)."""
    if settings.health_manager.heartbeat_key is not None:
        return settings.health_manager.heartbeat_key.get_secret_value()
    return keyfile.ensure(settings.DEFAULT.state_path / KEY_FILE,
                          lambda: secrets.token_urlsafe(32))


def check(settings: Settings) -> None:
    """ConfigError naming the option when the heartbeat settings cannot work."""
    options = settings.health_manager
    if options.heartbeat_timeout <= options.heartbeat_interval:
        raise ConfigError(
            f"[health_manager] heartbeat_timeout ({options.heartbeat_timeout}) must be longer "
            f"than heartbeat_interval ({options.heartbeat_interval}), or amphorae are failed "
            "over between two heartbeats; upstream uses 60 and 10")
    if options.failover_threshold is not None and options.failover_threshold < 0:
        raise ConfigError("[health_manager] failover_threshold must be 0 or more (or empty: "
                          "no storm guard)")
    for entry in options.controller_ip_port_list:
        try:
            parse_destination(entry)
        except ValueError as exc:
            raise ConfigError(f"[health_manager] {exc}; write ip:port or [ipv6]:port") from exc
