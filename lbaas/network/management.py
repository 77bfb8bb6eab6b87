"""The management network ``lbaas-mgmt``: the controller and every amphora's agent meet on it.

The service calls :func:`ensure_management_network` when it starts: it validates the
``[networking] lb_network_*`` options, records the network and its subnet
``lbaas-mgmt-subnet`` in the registry (or brings them in line with changed options),
holds the controller's address as a port (one per ``[DEFAULT] host``), and puts that
address on the ``lbaas-mgmt`` bridge (instead of its old one, if controller_ip changed;
another controller's address on the same bridge stays). Running it again changes nothing.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lbaas.config import ConfigError, Networking, Settings
from lbaas.db.engine import Database
from lbaas.db.models import Network, Port, Subnet
from lbaas.network import addresses, hosts, ports, registry, segments
from lbaas.network.addresses import Pool
from lbaas.network.bridge import Bridges
from lbaas.network.errors import AddressInUse, BridgeError, NetworkError

T = TypeVar("T")

MANAGEMENT_NETWORK = "lbaas-mgmt"
MANAGEMENT_SUBNET = "lbaas-mgmt-subnet"
MANAGEMENT_BRIDGE = "lbaas-mgmt"  # the default of [networking] lb_network_bridge


LOCAL_NETWORK_DRIVERS = ("network_local_driver",)
# Registering races only with this host's other services starting at the same moment.
REGISTER_ATTEMPTS = 3


def uses_local_network(settings: Settings) -> bool:
    """Whether amphorae and networks live on this host's bridges (the real network
    driver): then there is a management network here, and root is needed."""
    return settings.controller_worker.network_driver in LOCAL_NETWORK_DRIVERS


def is_management_network(network: Network) -> bool:
    """Whether ``network`` is ``lbaas-mgmt``: never shown to tenants, never a VIP or member
    network (the amphora agents listen there)."""
    return network.name == MANAGEMENT_NETWORK


@dataclass(frozen=True)
class ManagementLayout:
    subnet: addresses.SubnetSpec
    controller_ip: addresses.Address

    @property
    def controller_interface(self) -> str:
        """The controller's address with the subnet's prefix, as it goes on the bridge."""
        return f"{self.controller_ip}/{self.subnet.cidr.prefixlen}"


def _option(name: str, parse: Callable[..., T], *args: Any) -> T:
    """``parse(*args)``, with a failure reported as a ConfigError naming the option."""
    try:
        return parse(*args)
    except NetworkError as exc:
        raise ConfigError(f"[networking] {name}: {exc}") from exc


def _controller_ip(networking: Networking, cidr: addresses.Network) -> addresses.Address:
    if networking.controller_ip is None:
        return addresses.usable_range(cidr).start
    address = _option("controller_ip", addresses.parse_address, networking.controller_ip, "address")
    if address not in cidr or address in addresses.reserved_addresses(cidr):
        raise ConfigError(f"[networking] controller_ip {address} is not a host address of "
                          f"lb_network_cidr {cidr}; choose one inside it or leave it unset")
    return address


def _pool_avoiding(pool: Pool, avoid: list[tuple[str, Pool]]) -> Pool:
    """The configured pool, refused with a suggestion if it overlaps anything in ``avoid``."""
    for source, other in avoid:
        if pool.overlaps(other):
            pieces = addresses.pools_excluding(pool, [item for _, item in avoid])
            suggestion = (f"for example lb_network_allocation_pool = "
                          f"{max(pieces, key=lambda piece: piece.size)}" if pieces
                          else "choose another range")
            raise ConfigError(f"[networking] lb_network_allocation_pool {pool} overlaps {other} "
                              f"({source}); shrink the pool to leave it out, {suggestion}")
    return pool


def layout(networking: Networking) -> ManagementLayout:
    """Validate the ``[networking] lb_network_*`` options into the management subnet's layout."""
    cidr = _option("lb_network_cidr", addresses.parse_cidr, networking.lb_network_cidr)
    usable = _option("lb_network_cidr", addresses.usable_range, cidr)
    controller = _controller_ip(networking, cidr)
    avoid = [("the controller's address, [networking] controller_ip", Pool(controller, controller))]
    if networking.lb_network_gateway:
        gateway = _option("lb_network_gateway", addresses.gateway_address, cidr,
                          networking.lb_network_gateway)
        if gateway is not None:
            avoid.append(("the gateway, [networking] lb_network_gateway", Pool(gateway, gateway)))
    avoid += [("listed in [networking] used_ips", _option("used_ips", addresses.parse_range, entry))
              for entry in networking.used_ips]
    if networking.lb_network_allocation_pool:
        pool = _option("lb_network_allocation_pool", addresses.parse_pool,
                       networking.lb_network_allocation_pool)
        pools = [_pool_avoiding(pool, avoid)]
    else:
        pools = addresses.pools_excluding(usable, [item for _, item in avoid])
        if not pools:
            raise ConfigError(f"[networking] lb_network_cidr {cidr} has no address left for "
                              "amphorae after controller_ip, the gateway and used_ips; "
                              "choose a larger CIDR")
    spec = _option("lb_network_allocation_pool", addresses.subnet_spec, str(cidr),
                   networking.lb_network_gateway or addresses.NONE, pools)
    return ManagementLayout(subnet=spec, controller_ip=controller)


def _network(session: Session, networking: Networking) -> Network:
    network = session.scalar(select(Network).where(Network.name == MANAGEMENT_NETWORK))
    if network is None:
        network = registry.create_network(
            session, MANAGEMENT_NETWORK, bridge=networking.lb_network_bridge, shared=False,
            network_type=networking.lb_network_type,
            segmentation_id=networking.lb_network_segmentation_id,
            physical_network=networking.lb_network_physical_network,
            vni_range=networking.vni_ranges)
    elif network.network_type != networking.lb_network_type:
        raise ConfigError(f"[networking] lb_network_type is {networking.lb_network_type} but "
                          f"the management network is {network.network_type}: it cannot change "
                          "while amphorae may use it; set it back")
    return network


def segment(session: Session, settings: Settings) -> segments.Segment:
    """This controller's side of the management network, with every other host as a peer."""
    network = session.scalar(select(Network).where(Network.name == MANAGEMENT_NETWORK))
    if network is None:
        raise ConfigError("the management network does not exist yet; start `lbaas worker` "
                          "or `lbaas up` once")
    own = settings.networking.local_ip
    return registry.segment_of(network, [address for address in
                                         hosts.tunnel_addresses(session) if address != own])


def local_side(settings: Settings, bridges: Bridges | None = None) -> segments.Host:
    """This controller as a host of the segments: its tunnel address and interface mappings."""
    try:
        mappings = segments.parse_mappings(settings.networking.physical_interface_mappings)
    except ValueError as exc:
        raise ConfigError(f"[networking] {exc}") from exc
    return segments.Host(local_ip=settings.networking.local_ip,
                         physical_interface_mappings=mappings, bridges=bridges or Bridges())


def _subnet(session: Session, network: Network, spec: addresses.SubnetSpec) -> Subnet:
    subnet = next((item for item in network.subnets if item.name == MANAGEMENT_SUBNET), None)
    if subnet is None:
        return registry.create_subnet(
            session, MANAGEMENT_SUBNET, network, str(spec.cidr),
            gateway=str(spec.gateway) if spec.gateway else addresses.NONE, pools=spec.pools)
    if registry.spec_of(subnet) != spec:
        registry.change_layout(session, subnet, spec)
    return subnet


def _controller_ports(session: Session, host: str) -> list[Port]:
    return [port for port in ports.ports_of(session, host)
            if port.device_owner == ports.OWNER_CONTROLLER]


def _release_moved_controller_address(session: Session, plan: ManagementLayout,
                                      host: str) -> list[str]:
    """Let go of the controller's old address when controller_ip changed; returns it."""
    released = []
    for port in _controller_ports(session, host):
        if port.ip_address != str(plan.controller_ip):
            ports.release(session, port.id)
            released.append(port.ip_address)
    return released


def _hold_controller_address(session: Session, subnet: Subnet, plan: ManagementLayout,
                             host: str) -> None:
    """The controller's address is a port, so it is never handed to an amphora."""
    if not any(port.subnet_id == subnet.id for port in _controller_ports(session, host)):
        ports.allocate(session, subnet.id, device_id=host, device_owner=ports.OWNER_CONTROLLER,
                       ip_address=str(plan.controller_ip))


def _register(db: Database, settings: Settings,
              plan: ManagementLayout) -> tuple[Subnet, list[str], segments.Segment]:
    """The registry's side: network, subnet, this host's address and its tunnel peers."""
    with db.write() as session:
        network = _network(session, settings.networking)
        moved = _release_moved_controller_address(session, plan, settings.DEFAULT.host)
        subnet = _subnet(session, network, plan.subnet)
        _hold_controller_address(session, subnet, plan, settings.DEFAULT.host)
        hosts.register_controller(session, settings.DEFAULT.host, settings.networking.local_ip)
        return subnet, moved, segment(session, settings)


def _unfit(exc: Exception) -> ConfigError:
    return ConfigError(f"the management network cannot take the [networking] lb_network_* "
                       f"and controller_ip settings: {exc}")


def ensure_management_network(db: Database, settings: Settings,
                              bridges: Bridges | None = None) -> Subnet:
    """Create (or reconcile) ``lbaas-mgmt`` and its bridge with the controller's address.

    Raises ConfigError, naming the option to change, when the options are inconsistent
    or the subnet in use cannot take them.
    """
    plan = layout(settings.networking)
    for attempt in range(REGISTER_ATTEMPTS):
        try:
            subnet, moved, joined = _register(db, settings, plan)
            break
        except (AddressInUse, IntegrityError) as exc:
            # The services of one host start together (systemd starts its units at once):
            # another one may have just created the network or held this host's address.
            # A new transaction sees its rows; a real conflict is refused again.
            if attempt == REGISTER_ATTEMPTS - 1:
                raise _unfit(exc) from exc
        except NetworkError as exc:
            raise _unfit(exc) from exc
    bridges = bridges or Bridges()
    try:
        local_side(settings, bridges).ensure(joined)
    except BridgeError as exc:
        raise ConfigError(f"the management network cannot reach the other hosts: {exc}") from exc
    bridges.set_address(settings.networking.lb_network_bridge, plan.controller_interface,
                        replacing=moved)
    return subnet
