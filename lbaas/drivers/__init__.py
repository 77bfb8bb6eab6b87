"""Driver interfaces (compute, network, amphora, certificates) and how the configuration
picks them (upstream's option names in ``[controller_worker]`` and ``[certificates]``)."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lbaas.amphora.agent.logs import LogOffload
from lbaas.config import Settings
from lbaas.db.engine import Database
from lbaas.drivers.amphora.base import AmphoraDriver
from lbaas.drivers.certificates.base import CertificateDriver
from lbaas.drivers.compute.base import ComputeDriver
from lbaas.drivers.network.base import NetworkDriver


@dataclass
class Drivers:
    compute: ComputeDriver
    network: NetworkDriver
    amphora: AmphoraDriver
    certificates: CertificateDriver


class DriverNotFound(Exception):
    pass


def _noop_compute(settings: Settings, db: Database) -> ComputeDriver:
    from lbaas.drivers.compute.noop import NoopComputeDriver
    return NoopComputeDriver(lambda: list(settings.compute.hosts))


def _netns_compute(settings: Settings, db: Database) -> ComputeDriver:
    from lbaas.amphora import heartbeat_settings as heartbeats
    from lbaas.drivers.compute.netns import NetnsComputeDriver
    from lbaas.images.store import ImageStore
    return NetnsComputeDriver(settings.haproxy_amphora.base_path,
                              agent_port=settings.haproxy_amphora.bind_port,
                              host=settings.DEFAULT.host,
                              controller_ip_port_list=tuple(heartbeats.controller_ip_port_list(settings)),
                              heartbeat_interval=settings.health_manager.heartbeat_interval,
                              hosts=lambda: list(settings.compute.hosts),
                              log_offload=log_offload(settings),
                              images=ImageStore.from_settings(settings),
                              agent_launcher=settings.haproxy_amphora.agent_launcher)


def _agent_compute(settings: Settings, db: Database) -> ComputeDriver:
    from lbaas.amphora import heartbeat_settings as heartbeats
    from lbaas.certs import store
    from lbaas.drivers.compute.agent import ComputeAgentDriver
    paths = store.ensure(settings)
    return ComputeAgentDriver(db, paths.client_cert, paths.server_ca, amphora_agent={
        "bind_port": settings.haproxy_amphora.bind_port,
        "controller_ip_port_list": heartbeats.controller_ip_port_list(settings),
        "heartbeat_interval": settings.health_manager.heartbeat_interval,
        "log_offload": dataclasses.asdict(log_offload(settings))})


def log_offload(settings: Settings) -> LogOffload:
    """Where amphorae keep and send their logs (``[amphora_agent]``)."""
    options = settings.amphora_agent
    return LogOffload(admin_log_targets=tuple(options.admin_log_targets),
                      tenant_log_targets=tuple(options.tenant_log_targets),
                      user_log_facility=options.user_log_facility,
                      administrative_log_facility=options.administrative_log_facility,
                      log_protocol=options.log_protocol,
                      disable_local_log_storage=options.disable_local_log_storage)


def _noop_network(settings: Settings, db: Database) -> NetworkDriver:
    from lbaas.drivers.network.noop import NoopNetworkDriver
    return NoopNetworkDriver()


def _local_network(settings: Settings, db: Database) -> NetworkDriver:
    from lbaas.drivers.network.local import LocalNetworkDriver
    return LocalNetworkDriver(db)


def _noop_amphora(settings: Settings, db: Database) -> AmphoraDriver:
    from lbaas.drivers.amphora.noop import NoopAmphoraDriver
    return NoopAmphoraDriver()


def _rest_amphora(settings: Settings, db: Database) -> AmphoraDriver:
    from lbaas import cert_manager
    from lbaas.certs import store
    from lbaas.drivers.amphora.rest import RestAmphoraDriver
    paths = store.ensure(settings)
    return RestAmphoraDriver(settings.haproxy_amphora, paths.client_cert, paths.server_ca,
                             vrrp=settings.keepalived_vrrp, logs=settings.amphora_agent,
                             cert_manager=cert_manager.load(settings, db))


def _noop_certificates(settings: Settings, db: Database) -> CertificateDriver:
    from lbaas.drivers.certificates.noop import NoopCertificateDriver
    return NoopCertificateDriver()


def _local_certificates(settings: Settings, db: Database) -> CertificateDriver:
    from lbaas.amphora import heartbeat_settings as heartbeats
    from lbaas.drivers.certificates.local import LocalCertificateDriver
    return LocalCertificateDriver(settings, heartbeats.heartbeat_key(settings))


Factory = Callable[[Settings, Database], Any]
AVAILABLE: dict[tuple[str, str], dict[str, Factory]] = {
    ("controller_worker", "compute_driver"): {
        "compute_noop_driver": _noop_compute, "compute_netns_driver": _netns_compute,
        "compute_agent_driver": _agent_compute},
    ("controller_worker", "network_driver"): {
        "network_noop_driver": _noop_network, "network_local_driver": _local_network},
    ("controller_worker", "amphora_driver"): {
        "amphora_noop_driver": _noop_amphora, "amphora_haproxy_rest_driver": _rest_amphora},
    ("certificates", "cert_generator"): {
        "cert_noop_generator": _noop_certificates, "local_cert_generator": _local_certificates},
}


def _load(settings: Settings, db: Database, section: str, option: str) -> Any:
    """The driver ``[section] option`` names; an unknown name is an error naming the choices."""
    choices = AVAILABLE[section, option]
    name = getattr(getattr(settings, section), option)
    if name not in choices:
        raise DriverNotFound(f"[{section}] {option} = {name} is not available; choose one "
                             f"of: {', '.join(sorted(choices))}")
    return choices[name](settings, db)


def load_network(settings: Settings, db: Database) -> NetworkDriver:
    """The network driver alone: the API reserves VIPs with it."""
    driver: NetworkDriver = _load(settings, db, "controller_worker", "network_driver")
    return driver


def load(settings: Settings, db: Database) -> Drivers:
    """The drivers the configuration names."""
    chosen = {option: _load(settings, db, section, option) for section, option in AVAILABLE}
    return Drivers(compute=chosen["compute_driver"], network=chosen["network_driver"],
                   amphora=chosen["amphora_driver"], certificates=chosen["cert_generator"])
