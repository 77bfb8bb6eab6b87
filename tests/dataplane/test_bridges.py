"""Each network's Linux bridge, and the management bridge with the controller's address (root)."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbaas import config
from lbaas.cli import app
from lbaas.db import migrate
from lbaas.db.engine import Database
from lbaas.db.models import Network
from lbaas.network import management, registry
from lbaas.network.bridge import Bridges, bridge_mac
from lbaas.network.errors import BridgeError
from tests.dataplane import netns
from tests.helpers import in_threads

pytestmark = pytest.mark.root


@pytest.fixture
def namespace() -> Iterator[str]:
    """A private network namespace: whatever the test builds in it goes away with it."""
    name = f"lbt-br-{netns.short_id()}"
    netns.ip("netns", "add", name)
    try:
        yield name
    finally:
        netns.ip("netns", "del", name, check=False)


@pytest.fixture
def bridges(namespace: str) -> Bridges:
    return Bridges(netns=namespace)


def veth_pair(namespace: str, name: str) -> None:
    """A veth pair inside the namespace: a stand-in interface no host traffic uses."""
    netns.ip("-n", namespace, "link", "add", name, "type", "veth", "peer", "name", f"{name}p")


def link(namespace: str | None, name: str) -> dict:
    args = ["-n", namespace] if namespace else []
    shown = netns.ip(*args, "-j", "-d", "addr", "show", "dev", name, check=False)
    return json.loads(shown.stdout)[0] if shown.returncode == 0 else {}


def test_network_bridge_comes_up_with_no_host_address_and_no_forwarding(bridges, namespace):
    bridges.ensure("lbr-0123456789a", mtu=1450)
    shown = link(namespace, "lbr-0123456789a")
    assert shown["linkinfo"]["info_kind"] == "bridge"
    assert "UP" in shown["flags"] and shown["mtu"] == 1450
    assert shown["addr_info"] == []  # not even an IPv6 link-local address
    forwarding = netns.in_namespace(namespace, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip()
    assert forwarding == "0"


def test_ensuring_a_bridge_twice_changes_nothing_and_removing_it_twice_is_fine(bridges, namespace):
    for _ in range(2):
        bridges.ensure("lbr-twice")
    assert bridges.exists("lbr-twice")
    bridges.remove("lbr-twice")
    bridges.remove("lbr-twice")
    assert not bridges.exists("lbr-twice") and link(namespace, "lbr-twice") == {}



def test_flows_ensuring_one_missing_bridge_at_once_all_get_it(bridges, namespace):
    """After a reboot the flows plugging amphorae into one network each find its bridge
    missing and make it: one makes it, the others use it (none fails)."""
    failures: list[Exception] = []
    start = threading.Barrier(6)

    def ensure(_: int) -> None:
        start.wait()
        try:
            bridges.ensure("lbr-together", mtu=1450)
        except BridgeError as exc:
            failures.append(exc)
    in_threads(6, ensure)
    assert failures == []
    shown = link(namespace, "lbr-together")
    assert shown["linkinfo"]["info_kind"] == "bridge" and "UP" in shown["flags"]
    assert shown["mtu"] == 1450 and shown["addr_info"] == []


def test_bridge_mac_stays_put_while_ports_come_and_go(bridges, namespace):
    """Linux would give the bridge its lowest port MAC, and a MAC change strands the replies
    of the amphorae whose ARP caches hold the old one (issue 5: 26-53 s agent stalls)."""
    bridges.ensure("lbr-stable")
    pinned = link(namespace, "lbr-stable")["address"]
    assert pinned == bridge_mac("lbr-stable")
    netns.ip("-n", namespace, "link", "add", "low0", "address", "02:00:00:00:00:01",
             "type", "veth", "peer", "name", "low0p")
    netns.ip("-n", namespace, "link", "set", "low0", "master", "lbr-stable")
    assert link(namespace, "lbr-stable")["address"] == pinned
    netns.ip("-n", namespace, "link", "del", "low0")
    assert link(namespace, "lbr-stable")["address"] == pinned
    bridges.ensure("lbr-stable")
    assert link(namespace, "lbr-stable")["address"] == pinned


def test_bridge_mac_is_unicast_locally_administered_and_differs_between_hosts():
    mac = bridge_mac("lbaas-mgmt", "host-a")
    assert mac == bridge_mac("lbaas-mgmt", "host-a") and mac.startswith("02:")
    assert len(mac.split(":")) == 6
    assert mac != bridge_mac("lbaas-mgmt", "host-b") != bridge_mac("lbr-other", "host-b")

def test_an_interface_of_that_name_that_is_no_bridge_is_refused(bridges, namespace):
    veth_pair(namespace, "lbr-taken")
    with pytest.raises(BridgeError, match="interface lbr-taken exists and is not a bridge"):
        bridges.ensure("lbr-taken")


def test_physical_interface_is_put_on_the_network_bridge(bridges, namespace):
    veth_pair(namespace, "uplink0")
    network = Network(bridge="lbr-phys", physical_interface="uplink0", mtu=1500)
    bridges.ensure_network(network)
    bridges.ensure_network(network)
    assert link(namespace, "uplink0")["master"] == "lbr-phys"
    bridges.remove_network(network)
    assert "master" not in link(namespace, "uplink0")


def test_interface_with_addresses_or_missing_is_not_put_on_a_bridge(bridges, namespace):
    veth_pair(namespace, "busy0")
    netns.ip("-n", namespace, "addr", "add", "192.0.2.10/24", "dev", "busy0")
    bridges.ensure("lbr-guard")
    with pytest.raises(BridgeError, match=r"busy0 has addresses \(192.0.2.10\).*dedicated"):
        bridges.attach("lbr-guard", "busy0")
    with pytest.raises(BridgeError, match="interface nosuch0 does not exist on this host"):
        bridges.attach("lbr-guard", "nosuch0")


def test_management_bridge_carries_the_controller_address(bridges, namespace, tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'mgmt.sqlite'}")
    migrate.upgrade(db.engine)
    try:
        settings = config.load(environ={"LBAAS__DEFAULT__state_path": str(tmp_path)})
        management.ensure_management_network(db, settings, bridges)
        management.ensure_management_network(db, settings, bridges)
        assert bridges.addresses("lbaas-mgmt") == ["172.29.232.1/22"]
        moved = config.load(environ={"LBAAS__DEFAULT__state_path": str(tmp_path),
                                     "LBAAS__networking__controller_ip": "172.29.232.100"})
        management.ensure_management_network(db, moved, bridges)
        assert bridges.addresses("lbaas-mgmt") == ["172.29.232.100/22"]
    finally:
        db.dispose()


@pytest.fixture
def cli_config(tmp_path: Path) -> Iterator[Path]:
    """A configuration for ``lbaas network ...``; the bridges of networks it left are removed."""
    path = tmp_path / "lbaas.conf"
    path.write_text(f"[DEFAULT]\nstate_path = {tmp_path}\n")
    try:
        yield path
    finally:
        db = Database(config.load(path).database_url)
        try:
            with db.read() as session:
                leftovers = [network.bridge for network in registry.list_networks(session)]
        finally:
            db.dispose()
        for bridge in leftovers:
            netns.ip("link", "del", bridge, check=False)


def run_cli(cli_config: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, [*args, "--config-file", str(cli_config)])
    assert result.exit_code == code, result.output
    return result.output


def test_cli_network_create_makes_the_bridge_and_delete_removes_it(cli_config):
    run_cli(cli_config, "db", "upgrade")
    network = json.loads(run_cli(cli_config, "network", "create", "tenant", "-f", "json"))
    assert network["bridge"] == "lbr-" + network["id"].replace("-", "")[:11]
    assert link(None, network["bridge"])["linkinfo"]["info_kind"] == "bridge"
    listed = json.loads(run_cli(cli_config, "network", "list", "-f", "json"))
    assert listed == [{"ID": network["id"], "Name": "tenant", "Subnets": [], "Bridge": network["bridge"]}]
    assert network["bridge"] in run_cli(cli_config, "network", "show", "tenant")
    run_cli(cli_config, "network", "delete", "tenant")
    assert link(None, network["bridge"]) == {}
    assert json.loads(run_cli(cli_config, "network", "list", "-f", "json")) == []


def test_cli_network_create_leaves_nothing_behind_when_the_interface_is_missing(
        cli_config, monkeypatch):
    bridge = f"lbt-rb-{netns.short_id()}"
    monkeypatch.setattr(registry, "bridge_name", lambda network_id: bridge)
    run_cli(cli_config, "db", "upgrade")
    try:
        output = run_cli(cli_config, "network", "create", "tenant",
                         "--physical-interface", "lbtnosuch0", code=1)
        assert "interface lbtnosuch0 does not exist on this host" in output
        assert link(None, bridge) == {}
        assert json.loads(run_cli(cli_config, "network", "list", "-f", "json")) == []
    finally:
        netns.ip("link", "del", bridge, check=False)


def test_a_bridge_from_before_fixed_macs_announces_its_new_mac(bridges, namespace):
    """An amphora's ARP entry for the controller follows the bridge to its fixed MAC."""
    netns.ip("-n", namespace, "link", "add", "lbr-old", "address", "02:00:00:00:00:05",
             "type", "bridge")
    netns.ip("-n", namespace, "addr", "add", "192.0.2.1/24", "dev", "lbr-old")
    netns.ip("-n", namespace, "link", "set", "lbr-old", "up")
    amphora = f"lbt-bra-{netns.short_id()}"
    netns.ip("netns", "add", amphora)
    try:
        netns.ip("-n", namespace, "link", "add", "old0", "type", "veth", "peer", "name", "eth0",
                 "netns", amphora)
        netns.ip("-n", namespace, "link", "set", "old0", "master", "lbr-old", "up")
        netns.ip("-n", amphora, "addr", "add", "192.0.2.10/24", "dev", "eth0")
        netns.ip("-n", amphora, "link", "set", "eth0", "up")
        netns.ip("-n", amphora, "neigh", "replace", "192.0.2.1", "lladdr", "02:00:00:00:00:05",
                 "dev", "eth0", "nud", "reachable")
        bridges.ensure("lbr-old")
        for _ in range(100):  # the announcement is sent at once; this only waits for it
            entry = netns.ip("-n", amphora, "neigh", "show", "192.0.2.1").stdout
            if bridge_mac("lbr-old") in entry:
                break
            time.sleep(0.05)
        assert bridge_mac("lbr-old") in entry
    finally:
        netns.ip("netns", "del", amphora, check=False)
