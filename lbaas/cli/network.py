"""``lbaas network ...`` and ``lbaas subnet ...``: manage the registry with openstack-client habits.

The commands work on the configured database directly (``--config-file``), like
``lbaas db upgrade``; creating or deleting a network also creates or removes its bridge,
so they run as root. Every list/show command takes ``-f json`` (default: a table).
"""
from __future__ import annotations

import contextlib
import enum
import functools
from typing import Annotated, Any, Optional

import typer

from lbaas.api.network import network_to_api, subnet_to_api
from lbaas.cli import common
from lbaas.cli.common import ConfigFile, Format, OutputFormat, print_list, print_show
from lbaas.db.models import Host, Network, Subnet
from lbaas.network import hosts, registry, segments
from lbaas.network.bridge import Bridges
from lbaas.network.errors import NetworkError

network_app = typer.Typer(help="Networks of the local registry, each backed by a Linux bridge.",
                          no_args_is_help=True)
subnet_app = typer.Typer(help="Subnets (CIDR, gateway, allocation pools) of registry networks.",
                         no_args_is_help=True)


Project = Annotated[Optional[str], typer.Option("--project", help="Owning project id.")]

NETWORK_COLUMNS = (("ID", "id"), ("Name", "name"), ("Subnets", "subnets"), ("Bridge", "bridge"))
SUBNET_COLUMNS = (("ID", "id"), ("Name", "name"), ("Network", "network_id"), ("Subnet", "cidr"))


# The command's own errors exit 1 with their message (common.reporting).
_reporting = functools.partial(common.reporting, NetworkError)


def network_view(network: Network) -> dict[str, Any]:
    """A network as the API shows it, plus where it lives on the hosts."""
    return {**network_to_api(network), "bridge": network.bridge,
            "physical_interface": network.physical_interface}


class NetworkType(str, enum.Enum):
    local = segments.LOCAL
    vxlan = segments.VXLAN
    flat = segments.FLAT


@network_app.command("create")
def network_create(
    name: str,
    network_type: Annotated[NetworkType, typer.Option(
        "--provider-network-type", help="local (a bridge on this host), vxlan (every host "
        "that needs it, joined by VXLAN) or flat (each host's interface for the physical "
        "network).")] = NetworkType.local,
    physical_network: Annotated[Optional[str], typer.Option(
        "--provider-physical-network", help="flat: the physical network, which each host "
        "maps to an interface (physical_interface_mappings).")] = None,
    segment: Annotated[Optional[int], typer.Option(
        "--provider-segment", help="vxlan: its VNI (default: the lowest free one of "
        "\\[networking] vni_ranges).")] = None,
    physical_interface: Annotated[Optional[str], typer.Option(
        "--physical-interface", help="local: a host interface to put on the bridge "
        "(dedicated to this network).")] = None,
    mtu: Annotated[Optional[int], typer.Option(
        "--mtu", help="MTU (default 1500; vxlan: 1450).")] = None,
    project: Project = None, config_file: ConfigFile = None, fmt: Format = OutputFormat.table,
) -> None:
    """Create a network (and, for a local one, its bridge on this host)."""
    settings = common.settings(config_file)
    db, bridges = common.database(config_file), Bridges()
    with _reporting(), db.write() as session:
        network = registry.create_network(
            session, name, physical_interface=physical_interface, mtu=mtu, project_id=project,
            network_type=network_type.value, segmentation_id=segment,
            physical_network=physical_network, vni_range=settings.networking.vni_ranges)
        try:
            if network.network_type == segments.LOCAL:
                bridges.ensure_network(network)
            session.commit()
        except BaseException:
            with contextlib.suppress(NetworkError):
                bridges.remove_network(network)
            raise
        view = network_view(network)
    print_show(view, fmt)


@network_app.command("list")
def network_list(config_file: ConfigFile = None, fmt: Format = OutputFormat.table) -> None:
    """List networks."""
    with common.database(config_file).read() as session:
        items = [network_view(network) for network in registry.list_networks(session)]
    print_list(items, NETWORK_COLUMNS, fmt)


@network_app.command("show")
def network_show(network: str, config_file: ConfigFile = None,
                 fmt: Format = OutputFormat.table) -> None:
    """Show a network (name or id)."""
    with _reporting(), common.database(config_file).read() as session:
        view = network_view(registry.find_network(session, network))
    print_show(view, fmt)


@network_app.command("delete")
def network_delete(networks: Annotated[list[str], typer.Argument(help="Names or ids.")],
                   config_file: ConfigFile = None) -> None:
    """Delete networks, their subnets and bridges (refused while addresses are handed out)."""
    db, bridges = common.database(config_file), Bridges()
    for name in networks:
        with _reporting(), db.write() as session:
            network = registry.find_network(session, name)
            registry.delete_network(session, network)
            bridges.remove_network(network)


@subnet_app.command("create")
def subnet_create(
    name: str,
    network: Annotated[str, typer.Option("--network", help="Network (name or id).")],
    subnet_range: Annotated[str, typer.Option("--subnet-range", help="CIDR, e.g. 10.0.0.0/24.")],
    gateway: Annotated[str, typer.Option(
        "--gateway", help="Gateway address, 'auto' (the first address) or 'none'.")] = "auto",
    allocation_pools: Annotated[Optional[list[str]], typer.Option(
        "--allocation-pool", help="start=IP,end=IP (repeat for several; default: the whole range).")] = None,
    project: Project = None, config_file: ConfigFile = None, fmt: Format = OutputFormat.table,
) -> None:
    """Create a subnet on a network."""
    with _reporting(), common.database(config_file).write() as session:
        subnet = registry.create_subnet(session, name, registry.find_network(session, network),
                                        subnet_range, gateway=gateway,
                                        pools=allocation_pools or (), project_id=project)
        view = subnet_to_api(subnet)
    print_show(view, fmt)


@subnet_app.command("list")
def subnet_list(
    network: Annotated[Optional[str], typer.Option("--network", help="Only this network's.")] = None,
    config_file: ConfigFile = None, fmt: Format = OutputFormat.table,
) -> None:
    """List subnets."""
    with _reporting(), common.database(config_file).read() as session:
        parent = registry.find_network(session, network) if network else None
        items = [subnet_to_api(subnet) for subnet in registry.list_subnets(session, parent)]
    print_list(items, SUBNET_COLUMNS, fmt)


@subnet_app.command("show")
def subnet_show(subnet: str, config_file: ConfigFile = None,
                fmt: Format = OutputFormat.table) -> None:
    """Show a subnet (name or id)."""
    with _reporting(), common.database(config_file).read() as session:
        view = subnet_to_api(registry.find_subnet(session, subnet))
    print_show(view, fmt)


@subnet_app.command("delete")
def subnet_delete(subnets: Annotated[list[str], typer.Argument(help="Names or ids.")],
                  config_file: ConfigFile = None) -> None:
    """Delete subnets (refused while addresses on them are handed out)."""
    db = common.database(config_file)
    for name in subnets:
        with _reporting(), db.write() as session:
            subnet: Subnet = registry.find_subnet(session, name)
            registry.delete_subnet(session, subnet)


host_app = typer.Typer(help="The hosts of a deployment: compute hosts (each running `lbaas "
                            "compute-agent`) and controllers.", no_args_is_help=True)
HOST_COLUMNS = (("Name", "name"), ("Kind", "kind"), ("Status", "status"), ("Agent", "agent_url"),
                ("Tunnel IP", "tunnel_ip"), ("Amphorae", "amphorae"), ("Last seen", "last_seen"))


def host_view(host: Host, amphorae: list[str] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {"name": host.name, "kind": host.kind, "status": host.status,
            "agent_url": host.agent_url, "tunnel_ip": host.tunnel_ip,
            "amphorae": host.amphorae, "max_amphorae": host.capacity,
            "last_seen": host.last_seen.isoformat() if host.last_seen else None}
    if amphorae is not None:
        view["amphora_ids"] = amphorae
    return view


@host_app.command("add")
def host_add(
    name: Annotated[str, typer.Argument(help="The host's name: its compute agent's [DEFAULT] "
                                             "host and certificate (`lbaas certs issue-host`).")],
    address: Annotated[str, typer.Option("--address", help="Where its agent listens.")],
    port: Annotated[int, typer.Option("--port", help="Its agent's port.")] = hosts.AGENT_PORT,
    tunnel_ip: Annotated[Optional[str], typer.Option(
        "--tunnel-ip", help="Its underlay address (default: what its agent reports, its "
        "\\[compute_agent] local_ip).")] = None,
    config_file: ConfigFile = None, fmt: Format = OutputFormat.table,
) -> None:
    """Register a compute host: the controllers place amphorae on it once its agent answers."""
    with _reporting(), common.database(config_file).write() as session:
        view = host_view(hosts.add(session, name, address, port, tunnel_ip))
    print_show(view, fmt)


@host_app.command("list")
def host_list(config_file: ConfigFile = None, fmt: Format = OutputFormat.table) -> None:
    """List the hosts, with their status as the health managers last saw it."""
    with common.database(config_file).read() as session:
        items = [host_view(host) for host in hosts.list_hosts(session)]
    print_list(items, HOST_COLUMNS, fmt)


@host_app.command("show")
def host_show(name: str, config_file: ConfigFile = None,
              fmt: Format = OutputFormat.table) -> None:
    """Show a host and the amphorae it runs."""
    with _reporting(), common.database(config_file).read() as session:
        view = host_view(hosts.find(session, name), hosts.amphorae_on(session, name))
    print_show(view, fmt)


@host_app.command("delete")
def host_delete(names: Annotated[list[str], typer.Argument(help="Host names.")],
                config_file: ConfigFile = None) -> None:
    """Forget hosts (refused while amphorae run there: fail them over first)."""
    db = common.database(config_file)
    for name in names:
        with _reporting(), db.write() as session:
            hosts.remove(session, name)
