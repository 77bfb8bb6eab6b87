"""The network registry: subnet rules, address allocation, the management network, the CLI."""
from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from lbaas import config
from lbaas.cli import app
from lbaas.db import migrate
from lbaas.db.engine import Database
from lbaas.db.models import Amphora, Port, Subnet
from lbaas.network import addresses, management, ports, registry
from lbaas.network.bridge import Bridges, bridge_name, valid_interface_name
from lbaas.network.errors import (
    AddressInUse,
    Duplicate,
    InUse,
    InvalidAddress,
    InvalidNetwork,
    InvalidSubnet,
    NoFreeAddress,
    NotFound,
)
from tests.helpers.network import RecordingBridges


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


def make_subnet(db: Database, cidr: str = "10.0.0.0/24", *, name: str = "tenant-subnet",
                **options: Any) -> str:
    """A subnet on the network ``tenant`` (created on first use); its id."""
    with db.write() as session:
        try:
            network = registry.find_network(session, "tenant")
        except NotFound:
            network = registry.create_network(session, "tenant")
        return registry.create_subnet(session, name, network, cidr, **options).id


def allocate(db: Database, subnet_id: str, device: str = "amphora-1", **options: Any) -> str:
    """Hand an address on the subnet to ``device``; the address."""
    with db.write() as session:
        return ports.allocate(session, subnet_id, device_id=device,
                              device_owner=ports.OWNER_AMPHORA, **options).ip_address


# --- subnet rules --------------------------------------------------------------------------

def test_subnet_gets_the_first_address_as_gateway_and_the_rest_as_pool():
    spec = addresses.subnet_spec("10.0.0.0/24")
    assert str(spec.gateway) == "10.0.0.1"
    assert [pool.as_dict() for pool in spec.pools] == [{"start": "10.0.0.2", "end": "10.0.0.254"}]


def test_default_pool_is_split_around_a_gateway_in_the_middle():
    spec = addresses.subnet_spec("10.0.0.0/24", "10.0.0.100")
    assert [str(pool) for pool in spec.pools] == ["10.0.0.1-10.0.0.99", "10.0.0.101-10.0.0.254"]


def test_subnet_without_gateway_hands_out_every_host_address():
    spec = addresses.subnet_spec("192.168.5.0/29", "none")
    assert spec.gateway is None
    assert [str(pool) for pool in spec.pools] == ["192.168.5.1-192.168.5.6"]


def test_ipv6_subnet_keeps_only_the_network_address_out():
    spec = addresses.subnet_spec("fd00:1::/64", "auto")
    assert spec.ip_version == 6
    assert str(spec.gateway) == "fd00:1::1"
    assert str(spec.pools[0]) == "fd00:1::2-fd00:1::ffff:ffff:ffff:ffff"


def test_cidr_with_host_bits_is_rejected_naming_the_right_one():
    with pytest.raises(InvalidSubnet, match=r"'10.0.0.5/24' isn't a recommended CIDR, '10.0.0.0/24'"):
        addresses.subnet_spec("10.0.0.5/24")


@pytest.mark.parametrize("cidr", ["10.0.0.0", "10.0.0.0/33", "not-a-cidr"])
def test_invalid_cidr_is_rejected(cidr):
    with pytest.raises(InvalidSubnet, match="not a valid CIDR"):
        addresses.subnet_spec(cidr)


def test_gateway_outside_the_cidr_is_rejected():
    with pytest.raises(InvalidSubnet, match="gateway 10.0.1.1 is not inside the subnet 10.0.0.0/24"):
        addresses.subnet_spec("10.0.0.0/24", "10.0.1.1")


@pytest.mark.parametrize("gateway", ["10.0.0.0", "10.0.0.255"])
def test_gateway_on_the_network_or_broadcast_address_is_rejected(gateway):
    with pytest.raises(InvalidSubnet, match="network or broadcast address"):
        addresses.subnet_spec("10.0.0.0/24", gateway)


def test_gateway_inside_a_pool_is_rejected():
    with pytest.raises(InvalidSubnet, match="gateway ip 10.0.0.15 conflicts with allocation pool "
                                            "10.0.0.10-10.0.0.20"):
        addresses.subnet_spec("10.0.0.0/24", "10.0.0.15", ["start=10.0.0.10,end=10.0.0.20"])


def test_pool_beyond_the_cidr_is_rejected():
    with pytest.raises(InvalidSubnet, match="10.0.0.200-10.0.1.5 spans beyond the subnet cidr"):
        addresses.subnet_spec("10.0.0.0/24", pools=["start=10.0.0.200,end=10.0.1.5"])


@pytest.mark.parametrize("pool", ["10.0.0.0-10.0.0.9", "10.0.0.250-10.0.0.255"])
def test_pool_holding_the_network_or_broadcast_address_is_rejected(pool):
    with pytest.raises(InvalidSubnet, match="network or broadcast address of 10.0.0.0/24"):
        addresses.subnet_spec("10.0.0.0/24", "none", [pool])


def test_overlapping_pools_are_rejected():
    with pytest.raises(InvalidSubnet, match="10.0.0.10-10.0.0.50 and 10.0.0.40-10.0.0.60 overlap"):
        addresses.subnet_spec("10.0.0.0/24", pools=["start=10.0.0.40,end=10.0.0.60",
                                                    "start=10.0.0.10,end=10.0.0.50"])


@pytest.mark.parametrize("pool, message", [
    ("start=10.0.0.9,end=10.0.0.5", "the start is after the end"),
    ("10.0.0.5", "must be written start=IP,end=IP or IP-IP"),
    ("start=10.0.0.5", "must be written start=IP,end=IP"),
    ("start=10.0.0.5,end=fd00::1", "mixes IPv4 and IPv6"),
    ("start=10.0.0.5,end=banana", "allocation pool end 'banana' is not an IPv4 or IPv6 address"),
])
def test_malformed_pool_is_rejected(pool, message):
    with pytest.raises((InvalidSubnet, InvalidAddress), match=message):
        addresses.parse_pool(pool)


def test_bridge_name_is_derived_from_the_id_and_fits_an_interface_name():
    name = bridge_name("9496695f-4899-4d5b-8460-470c11605596")
    assert name == "lbr-9496695f489"
    assert valid_interface_name(name)


def test_subnets_of_one_network_may_not_overlap(db):
    make_subnet(db, "10.0.0.0/24")
    with pytest.raises(InvalidSubnet, match="overlaps with subnet tenant-subnet"):
        make_subnet(db, "10.0.0.128/25", name="second")


def test_network_and_subnet_names_are_unique(db):
    make_subnet(db)
    with db.write() as session, pytest.raises(Duplicate, match="a network named tenant already exists"):
        registry.create_network(session, "tenant")
    with pytest.raises(Duplicate, match="a subnet named tenant-subnet already exists"):
        make_subnet(db, "10.1.0.0/24")


@pytest.mark.parametrize("interface, mtu, message", [
    ("eth0/1", 1500, "not a valid interface name"),
    ("an-interface-name-too-long", 1500, "not a valid interface name"),
    (None, 20, "mtu 20 is out of range"),
])
def test_invalid_network_settings_are_rejected(db, interface, mtu, message):
    with db.write() as session, pytest.raises(InvalidNetwork, match=message):
        registry.create_network(session, "net", physical_interface=interface, mtu=mtu)


# --- allocation ---------------------------------------------------------------------------

def test_addresses_are_handed_out_lowest_first_and_never_twice(db):
    subnet = make_subnet(db, pools=["start=10.0.0.10,end=10.0.0.12"])
    assert [allocate(db, subnet, f"amphora-{i}") for i in range(3)] == [
        "10.0.0.10", "10.0.0.11", "10.0.0.12"]
    with pytest.raises(NoFreeAddress, match="no free address left on subnet tenant-subnet"):
        allocate(db, subnet, "amphora-4")


def test_released_address_is_handed_out_again(db):
    subnet = make_subnet(db, pools=["start=10.0.0.10,end=10.0.0.11"])
    allocate(db, subnet, "amphora-1")
    allocate(db, subnet, "amphora-2")
    with db.write() as session:
        assert ports.release_device(session, "amphora-1") == 1
        assert ports.release_device(session, "amphora-1") == 0
    assert allocate(db, subnet, "amphora-3") == "10.0.0.10"


def test_release_by_port_id_is_idempotent(db):
    subnet = make_subnet(db)
    with db.write() as session:
        port = ports.allocate(session, subnet, device_id="lb-1", device_owner=ports.OWNER_VIP)
    with db.write() as session:
        assert ports.release(session, port.id) is True
        assert ports.release(session, port.id) is False


def test_requested_address_may_lie_outside_the_pool_but_not_be_taken(db):
    subnet = make_subnet(db, pools=["start=10.0.0.10,end=10.0.0.20"])
    assert allocate(db, subnet, "lb-1", ip_address="10.0.0.200") == "10.0.0.200"
    with pytest.raises(AddressInUse, match="address 10.0.0.200 on subnet tenant-subnet is already in use"):
        allocate(db, subnet, "lb-2", ip_address="10.0.0.200")


@pytest.mark.parametrize("address, message", [
    ("10.0.1.7", "not inside the subnet"),
    ("10.0.0.255", "network or broadcast address"),
    ("10.0.0.1", "is the gateway"),
    ("nonsense", "not an IPv4 or IPv6 address"),
])
def test_requested_address_must_be_a_host_address_of_the_subnet(db, address, message):
    subnet = make_subnet(db)
    with pytest.raises(InvalidAddress, match=message):
        allocate(db, subnet, ip_address=address)


def test_each_port_gets_its_own_locally_administered_mac(db):
    subnet = make_subnet(db)
    with db.write() as session:
        first = ports.allocate(session, subnet, device_id="a", device_owner=ports.OWNER_AMPHORA)
        second = ports.allocate(session, subnet, device_id="b", device_owner=ports.OWNER_AMPHORA)
    assert first.mac_address.startswith("fa:16:3e:") and len(first.mac_address) == 17
    assert first.mac_address != second.mac_address


def test_allocations_survive_a_restart(db, tmp_path):
    subnet = make_subnet(db)
    first = allocate(db, subnet)
    db.dispose()
    restarted = Database(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    try:
        assert allocate(restarted, subnet, "amphora-2") != first
    finally:
        restarted.dispose()


def test_database_refuses_a_second_holder_of_an_address(db):
    subnet = make_subnet(db)
    held = allocate(db, subnet)
    with pytest.raises(IntegrityError), db.write() as session:
        session.add(Port(subnet_id=subnet, ip_address=held, mac_address="fa:16:3e:00:00:01",
                         device_id="intruder", device_owner=ports.OWNER_AMPHORA))


def test_concurrent_allocators_never_share_an_address(db):
    subnet = make_subnet(db)
    results: list[str] = []
    failures: list[BaseException] = []

    def allocator(worker: int) -> None:
        try:
            for i in range(15):
                results.append(allocate(db, subnet, f"amphora-{worker}-{i}"))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=allocator, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(results) == 60 and len(set(results)) == 60


@pytest.fixture(scope="module")
def postgresql_url() -> Iterator[str]:
    if not shutil.which("runuser"):
        pytest.skip("runuser is needed to start a private PostgreSQL")
    from tests.db import servers
    with tempfile.TemporaryDirectory(prefix="lbaas-pg-registry-") as workdir:
        with servers.postgresql(Path(workdir)) as url:
            yield url


def _wait_until_blocked(db: Database, thread: threading.Thread) -> None:
    """Until another transaction waits on a lock (or the racing thread ended)."""
    with db.engine.connect() as connection:
        while thread.is_alive() and not connection.execute(
                text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar():
            thread.join(0.01)


def test_allocator_that_loses_a_race_takes_the_next_address(postgresql_url, caplog):
    """Two transactions pick the same lowest address; the database lets only one keep it."""
    caplog.set_level(logging.DEBUG, logger="lbaas.network.ports")
    db = Database(postgresql_url)
    try:
        migrate.upgrade(db.engine)
        subnet = make_subnet(db, pools=["start=10.0.0.10,end=10.0.0.20"])
        second: list[str] = []
        with db.write() as session:
            first = ports.allocate(session, subnet, device_id="a", device_owner=ports.OWNER_AMPHORA)
            racer = threading.Thread(target=lambda: second.append(allocate(db, subnet, "b")))
            racer.start()
            _wait_until_blocked(db, racer)
        racer.join()
        assert (first.ip_address, second) == ("10.0.0.10", ["10.0.0.11"])
        assert "address 10.0.0.10 on subnet" in caplog.text and "taken concurrently" in caplog.text
    finally:
        db.dispose()


# --- deleting -------------------------------------------------------------------------------

def test_subnet_in_use_cannot_be_deleted(db):
    subnet = make_subnet(db)
    allocate(db, subnet, "amphora-7")
    with db.write() as session, pytest.raises(InUse, match=r"subnet tenant-subnet is in use: 1 "
                                                           r"address\(es\) handed out \(lbaas:amphora amphora-7\)"):
        registry.delete_subnet(session, registry.get_subnet(session, subnet))


def test_network_in_use_cannot_be_deleted(db):
    subnet = make_subnet(db)
    allocate(db, subnet)
    with db.write() as session, pytest.raises(InUse, match="network tenant is in use"):
        registry.delete_network(session, registry.find_network(session, "tenant"))


def test_deleting_an_unused_network_deletes_its_subnets(db):
    subnet = make_subnet(db)
    with db.write() as session:
        registry.delete_network(session, registry.find_network(session, "tenant"))
    with db.read() as session:
        assert registry.list_subnets(session) == []
        assert session.get(Subnet, subnet) is None


# --- the management network -------------------------------------------------------------------

def networking(**options: str) -> config.Networking:
    return config.load(environ={f"LBAAS__networking__{key}": value
                                for key, value in options.items()}).networking


def test_management_layout_defaults_to_the_seed_deployment():
    layout = management.layout(networking())
    assert str(layout.subnet.cidr) == "172.29.232.0/22"
    assert layout.controller_interface == "172.29.232.1/22"
    assert layout.subnet.gateway is None
    assert [str(pool) for pool in layout.subnet.pools] == ["172.29.232.2-172.29.235.254"]


def test_management_pool_leaves_out_used_ips_and_the_gateway_by_default():
    layout = management.layout(networking(
        controller_ip="172.29.232.100", lb_network_gateway="172.29.232.1",
        used_ips="172.29.232.2-172.29.232.49, 172.29.235.250"))
    assert [str(pool) for pool in layout.subnet.pools] == [
        "172.29.232.50-172.29.232.99", "172.29.232.101-172.29.235.249",
        "172.29.235.251-172.29.235.254"]


@pytest.mark.parametrize("options, message", [
    ({"lb_network_allocation_pool": "172.29.232.1-172.29.235.200"},
     r"lb_network_allocation_pool 172.29.232.1-172.29.235.200 overlaps 172.29.232.1 \(the "
     r"controller's address, \[networking\] controller_ip\); shrink the pool to leave it out, "
     r"for example lb_network_allocation_pool = 172.29.232.2-172.29.235.200"),
    ({"lb_network_allocation_pool": "172.29.232.10-172.29.235.200", "used_ips": "172.29.232.50"},
     r"overlaps 172.29.232.50 \(listed in \[networking\] used_ips\).*"
     r"for example lb_network_allocation_pool = 172.29.232.51-172.29.235.200"),
    ({"lb_network_allocation_pool": "172.29.232.10-172.29.235.200", "lb_network_gateway": "172.29.232.20"},
     r"overlaps 172.29.232.20 \(the gateway, \[networking\] lb_network_gateway\)"),
    ({"lb_network_allocation_pool": "172.29.232.10-172.29.240.200"},
     r"\[networking\] lb_network_allocation_pool: allocation pool .* spans beyond the subnet cidr"),
    ({"controller_ip": "10.0.0.1"},
     r"\[networking\] controller_ip 10.0.0.1 is not a host address of lb_network_cidr"),
    ({"used_ips": "172.29.232.x"}, r"\[networking\] used_ips: address '172.29.232.x'"),
    ({"lb_network_cidr": "10.0.0.0/30", "used_ips": "10.0.0.2"}, r"no address left for amphorae"),
])
def test_inconsistent_management_options_are_rejected_saying_how_to_fix_them(options, message):
    with pytest.raises(config.ConfigError, match=message):
        management.layout(networking(**options))


def settings_with(tmp_path: Path, **options: str) -> config.Settings:
    environ = {"LBAAS__DEFAULT__state_path": str(tmp_path), "LBAAS__DEFAULT__host": "controller-1"}
    environ.update({f"LBAAS__networking__{key}": value for key, value in options.items()})
    return config.load(environ=environ)


def test_management_network_is_created_once_with_the_controller_address_held(db, tmp_path):
    bridges = RecordingBridges()
    for _ in range(2):
        subnet = management.ensure_management_network(db, settings_with(tmp_path), bridges)
    assert bridges.bridges == {"lbaas-mgmt": ["172.29.232.1/22"]}
    with db.read() as session:
        network = registry.find_network(session, "lbaas-mgmt")
        assert (network.bridge, network.shared, [s.id for s in network.subnets]) == (
            "lbaas-mgmt", False, [subnet.id])
        held = ports.ports_of(session, "controller-1")
        assert [(port.ip_address, port.device_owner) for port in held] == [
            ("172.29.232.1", ports.OWNER_CONTROLLER)]
    assert allocate(db, subnet.id) == "172.29.232.2"


def test_two_controllers_on_one_bridge_each_hold_and_keep_their_address(db, tmp_path):
    bridges = RecordingBridges()
    management.ensure_management_network(db, settings_with(tmp_path), bridges)
    second = settings_with(tmp_path, controller_ip="172.29.232.2")
    second.DEFAULT.host = "controller-2"
    management.ensure_management_network(db, second, bridges)
    assert bridges.bridges == {"lbaas-mgmt": ["172.29.232.1/22", "172.29.232.2/22"]}
    with db.read() as session:
        assert [p.ip_address for p in ports.ports_of(session, "controller-2")] == ["172.29.232.2"]


def test_management_network_follows_changed_options_while_its_addresses_fit(db, tmp_path):
    bridges = RecordingBridges()
    management.ensure_management_network(db, settings_with(tmp_path), bridges)
    subnet = management.ensure_management_network(db, settings_with(
        tmp_path, controller_ip="172.29.232.100", lb_network_allocation_pool="172.29.233.0-172.29.233.255"),
        bridges)
    assert subnet.allocation_pools == [{"start": "172.29.233.0", "end": "172.29.233.255"}]
    assert bridges.bridges == {"lbaas-mgmt": ["172.29.232.100/22"]}
    with db.read() as session:
        assert [port.ip_address for port in ports.ports_of(session, "controller-1")] == ["172.29.232.100"]


def test_management_network_in_use_refuses_a_cidr_its_amphorae_do_not_fit(db, tmp_path):
    subnet = management.ensure_management_network(db, settings_with(tmp_path), RecordingBridges())
    allocate(db, subnet.id, "amphora-1")
    with pytest.raises(config.ConfigError, match=r"cannot become 10.1.0.0/24: address 172.29.232.2 "
                                                 r"is not inside the subnet .* amphora-1; release it first"):
        management.ensure_management_network(
            db, settings_with(tmp_path, lb_network_cidr="10.1.0.0/24"), RecordingBridges())


# --- the CLI ----------------------------------------------------------------------------------

@pytest.fixture
def cli_config(tmp_path: Path) -> Path:
    path = tmp_path / "lbaas.conf"
    path.write_text(f"[DEFAULT]\nstate_path = {tmp_path}\n")
    return path


def run_cli(cli_config: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, [*args, "--config-file", str(cli_config)])
    assert result.exit_code == code, result.output
    return result.output


@contextlib.contextmanager
def cli_database(cli_config: Path) -> Iterator[Database]:
    database = Database(config.load(cli_config).database_url)
    try:
        yield database
    finally:
        database.dispose()


def test_cli_creates_lists_shows_and_deletes_subnets(cli_config):
    run_cli(cli_config, "db", "upgrade")
    with cli_database(cli_config) as database, database.write() as session:
        registry.create_network(session, "tenant")
    created = json.loads(run_cli(
        cli_config, "subnet", "create", "web", "--network", "tenant", "--subnet-range", "10.5.0.0/24",
        "--gateway", "none", "--allocation-pool", "start=10.5.0.10,end=10.5.0.19",
        "--allocation-pool", "start=10.5.0.30,end=10.5.0.39", "-f", "json"))
    assert (created["cidr"], created["gateway_ip"], created["allocation_pools"]) == (
        "10.5.0.0/24", None, [{"start": "10.5.0.10", "end": "10.5.0.19"},
                              {"start": "10.5.0.30", "end": "10.5.0.39"}])
    listed = json.loads(run_cli(cli_config, "subnet", "list", "--network", "tenant", "-f", "json"))
    assert listed == [{"ID": created["id"], "Name": "web", "Network": created["network_id"],
                       "Subnet": "10.5.0.0/24"}]
    assert json.loads(run_cli(cli_config, "subnet", "show", created["id"], "-f", "json"))["name"] == "web"
    network = json.loads(run_cli(cli_config, "network", "show", "tenant", "-f", "json"))
    assert network["subnets"] == [created["id"]] and network["bridge"].startswith("lbr-")
    assert "10.5.0.0/24" in run_cli(cli_config, "subnet", "list")
    run_cli(cli_config, "subnet", "delete", "web")
    assert json.loads(run_cli(cli_config, "subnet", "list", "-f", "json")) == []


def test_cli_reports_invalid_subnets_and_unknown_names(cli_config):
    run_cli(cli_config, "db", "upgrade")
    with cli_database(cli_config) as database, database.write() as session:
        registry.create_network(session, "tenant")
    output = run_cli(cli_config, "subnet", "create", "bad", "--network", "tenant",
                     "--subnet-range", "10.5.0.0/24", "--gateway", "10.6.0.1", code=1)
    assert "gateway 10.6.0.1 is not inside the subnet 10.5.0.0/24" in output
    assert "network nowhere not found" in run_cli(
        cli_config, "subnet", "create", "x", "--network", "nowhere", "--subnet-range", "10.5.0.0/24", code=1)
    assert "subnet ghost not found" in run_cli(cli_config, "subnet", "show", "ghost", code=1)


def test_cli_refuses_to_delete_a_subnet_in_use(cli_config):
    run_cli(cli_config, "db", "upgrade")
    with cli_database(cli_config) as database:
        subnet = make_subnet(database)
        allocate(database, subnet, "amphora-9")
    assert "is in use" in run_cli(cli_config, "subnet", "delete", "tenant-subnet", code=1)


def test_cli_asks_for_a_schema_upgrade_first(cli_config):
    assert "lbaas db upgrade" in run_cli(cli_config, "subnet", "list", code=2)


def test_cli_registers_lists_shows_and_forgets_compute_hosts(cli_config):
    run_cli(cli_config, "db", "upgrade")
    added = json.loads(run_cli(cli_config, "host", "add", "host-b", "--address", "10.0.0.12",
                               "-f", "json"))
    assert (added["kind"], added["agent_url"], added["status"]) == (
        "compute", "https://10.0.0.12:9444", "UNKNOWN")
    assert "already registered" in run_cli(cli_config, "host", "add", "host-b", "--address",
                                           "10.0.0.13", code=1)
    assert "IP address" in run_cli(cli_config, "host", "add", "host-c", "--address", "nope",
                                   code=1)
    listed = json.loads(run_cli(cli_config, "host", "list", "-f", "json"))
    assert [(row["Name"], row["Kind"]) for row in listed] == [("host-b", "compute")]
    with cli_database(cli_config) as database, database.write() as session:
        session.add(Amphora(status="ALLOCATED", cached_zone="host-b"))
    shown = json.loads(run_cli(cli_config, "host", "show", "host-b", "-f", "json"))
    assert len(shown["amphora_ids"]) == 1
    assert "fail them over first" in run_cli(cli_config, "host", "delete", "host-b", code=1)
    with cli_database(cli_config) as database, database.write() as session:
        session.execute(update(Amphora).values(status="DELETED"))
    run_cli(cli_config, "host", "delete", "host-b")
    assert "host host-b not found" in run_cli(cli_config, "host", "show", "host-b", code=1)


def test_cli_creates_vxlan_and_flat_networks_with_their_provider_attributes(cli_config):
    run_cli(cli_config, "db", "upgrade")
    first = json.loads(run_cli(cli_config, "network", "create", "spanning",
                               "--provider-network-type", "vxlan", "-f", "json"))
    second = json.loads(run_cli(cli_config, "network", "create", "spanning-2",
                                "--provider-network-type", "vxlan", "-f", "json"))
    assert (first["provider:network_type"], first["provider:segmentation_id"], first["mtu"]) \
        == ("vxlan", 1000, 1450)
    assert second["provider:segmentation_id"] == 1001
    assert "VNI 1000 is taken" in run_cli(cli_config, "network", "create", "x",
                                          "--provider-network-type", "vxlan",
                                          "--provider-segment", "1000", code=1)
    flat = json.loads(run_cli(cli_config, "network", "create", "provider",
                              "--provider-network-type", "flat",
                              "--provider-physical-network", "physnet1", "-f", "json"))
    assert (flat["provider:network_type"], flat["provider:physical_network"]) == (
        "flat", "physnet1")
    assert "needs --provider-physical-network" in run_cli(
        cli_config, "network", "create", "y", "--provider-network-type", "flat", code=1)
    assert not Bridges().exists(first["bridge"])  # made by the hosts that need it, not here
