"""Starting a compute agent: its settings checked, then served (``lbaas compute-agent``)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from lbaas import host_limits
from lbaas.certs import tls
from lbaas.certs.store import CLIENT_CA, HOST_SERVER_CERT
from lbaas.compute_agent import api
from lbaas.compute_agent.host import ComputeHost
from lbaas.config import ConfigError, Settings
from lbaas.images.store import ImageStore
from lbaas.network import segments
from lbaas.network.bridge import Bridges


@dataclass(frozen=True)
class Prepared:
    host: ComputeHost
    bind_host: str
    bind_port: int
    server_cert: Path
    client_ca: Path


def prepare(settings: Settings) -> Prepared:
    """Check what the agent needs, saying what to change; raises ConfigError."""
    options = settings.compute_agent
    name = settings.DEFAULT.host
    if os.geteuid() != 0:
        raise ConfigError("the compute agent makes namespaces, interfaces and bridges: run it "
                          "as root")
    try:
        identity = tls.compute_agent_identity(name)
        mappings = segments.parse_mappings(options.physical_interface_mappings)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    bind_host = options.bind_host or options.local_ip
    if not bind_host:
        raise ConfigError("[compute_agent] local_ip (this host's underlay address) or bind_host "
                          "must be set: the controllers reach the agent there")
    folder = settings.DEFAULT.state_path / "compute-agent"
    server_cert = options.server_cert or folder / HOST_SERVER_CERT
    client_ca = options.client_ca or folder / CLIENT_CA
    for path, option in ((server_cert, "server_cert"), (client_ca, "client_ca")):
        if not path.is_file():
            raise ConfigError(f"{path} ([compute_agent] {option}) does not exist: run `lbaas "
                              f"certs issue-host {name} DIR` on a controller and copy DIR's "
                              f"files here")
    named = _names(server_cert)
    if identity not in named:
        raise ConfigError(f"{server_cert} is the certificate of {', '.join(named) or 'nobody'}, "
                          f"not of this host ({identity}, [DEFAULT] host = {name}); issue one "
                          f"with `lbaas certs issue-host {name} DIR`")
    host = ComputeHost(name=name, base_path=settings.haproxy_amphora.base_path,
                       network=segments.Host(local_ip=options.local_ip,
                                             physical_interface_mappings=mappings,
                                             bridges=Bridges(host=name)),
                       max_amphorae=options.max_amphorae,
                       images=ImageStore.from_settings(settings),
                       agent_launcher=settings.haproxy_amphora.agent_launcher)
    return Prepared(host, bind_host, options.bind_port, server_cert, client_ca)


def _names(path: Path) -> list[str]:
    """The DNS names the PEM file's (first) certificate carries."""
    try:
        certificate = x509.load_pem_x509_certificates(path.read_bytes())[0]
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (ValueError, x509.ExtensionNotFound) as exc:
        raise ConfigError(f"{path} holds no usable certificate: {exc}") from exc
    return names.value.get_values_for_type(x509.DNSName)


def serve(prepared: Prepared) -> None:
    """Raise the limits a host of many amphorae reaches, then serve until stopped
    (blocks)."""
    host_limits.raise_open_files()
    host_limits.raise_sysctls()
    api.serve(prepared.host, prepared.bind_host, prepared.bind_port, str(prepared.server_cert),
              str(prepared.client_ca))
