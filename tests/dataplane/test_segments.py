"""Networks across hosts (lbaas.network.segments), hosts simulated by network namespaces on
an underlay bridge: VXLAN with head-end replication, flat provider networks."""
from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator

import pytest

from lbaas.network.bridge import Bridges
from lbaas.network.errors import BridgeError
from lbaas.network.segments import FLAT, VXLAN, Host, Segment, vxlan_name
from tests.dataplane import netns
from tests.helpers import in_threads

pytestmark = pytest.mark.root

UNDERLAY = "10.251.0"
OVERLAY = "192.168.251"


@contextlib.contextmanager
def hosts(count: int) -> Iterator[list[str]]:
    """Host namespaces, each with one leg on an underlay bridge at UNDERLAY.<n>."""
    with contextlib.ExitStack() as stack:
        underlay = stack.enter_context(netns.bridge(f"lbu{uuid.uuid4().hex[:8]}"))
        yield [stack.enter_context(netns.namespace(f"lbt-host{n}-{netns.short_id()}", underlay,
                                                   f"{UNDERLAY}.{n}/24"))
               for n in range(1, count + 1)]


@contextlib.contextmanager
def leaf(host: str, bridge: str, address: str) -> Iterator[str]:
    """A namespace with one interface on ``bridge`` of ``host`` (an amphora, a client)."""
    name = f"lbt-leaf-{netns.short_id()}"
    netns.ip("netns", "add", name)
    host_end = f"v{netns.short_id()}"
    try:
        netns.ip("-n", host, "link", "add", host_end, "type", "veth", "peer", "name", "eth0",
                 "netns", name)
        netns.ip("-n", host, "link", "set", host_end, "master", bridge, "up")
        netns.ip("-n", name, "addr", "add", address, "dev", "eth0")
        netns.ip("-n", name, "link", "set", "eth0", "up")
        yield name
    finally:
        netns.ip("netns", "del", name, check=False)


def pings(source: str, address: str) -> bool:
    return netns.in_namespace(source, "ping", "-c", "1", "-W", "1", address).returncode == 0


def test_a_vxlan_network_joins_the_hosts_that_flood_to_each_other():
    vni = 4000 + uuid.uuid4().int % 1000
    with hosts(3) as (first, second, third):
        segment = Segment(network_id="n", bridge="lbr-vxtest", network_type=VXLAN, mtu=1450,
                          segmentation_id=vni)
        members = {host: Host(local_ip=f"{UNDERLAY}.{index}", bridges=Bridges(host))
                   for index, host in enumerate((first, second, third), start=1)}
        everyone = tuple(f"{UNDERLAY}.{index}" for index in (1, 2, 3))
        for host in members.values():
            host.ensure(Segment(**{**segment.as_dict(), "peers": everyone}))
            host.ensure(Segment(**{**segment.as_dict(), "peers": everyone}))  # again: no change
        assert members[first].vxlan_peers() == {vni: {f"{UNDERLAY}.2", f"{UNDERLAY}.3"}}
        device = netns.ip("-n", first, "-d", "link", "show", vxlan_name(vni)).stdout
        assert f"vxlan id {vni}" in device and "mtu 1450" in device and "master lbr-vxtest" in device
        with leaf(first, "lbr-vxtest", f"{OVERLAY}.1/24") as one, \
                leaf(third, "lbr-vxtest", f"{OVERLAY}.3/24"):
            assert pings(one, f"{OVERLAY}.3")
            # The first host no longer floods to the third: a new ARP request never gets there.
            members[first].ensure(Segment(**{**segment.as_dict(),
                                             "peers": (f"{UNDERLAY}.2",)}))
            assert members[first].vxlan_peers() == {vni: {f"{UNDERLAY}.2"}}
            netns.ip("-n", one, "neigh", "flush", "all")
            assert not pings(one, f"{OVERLAY}.3")


def test_a_flat_network_puts_each_hosts_mapped_interface_on_its_bridge():
    with hosts(2) as (first, second), netns.bridge(f"lbp{uuid.uuid4().hex[:8]}") as physical:
        for host in (first, second):  # each host's "eth1" is cabled to one physical segment
            end = f"p{netns.short_id()}"
            netns.ip("link", "add", end, "type", "veth", "peer", "name", "eth1", "netns", host)
            netns.ip("link", "set", end, "master", physical, "up")
        segment = Segment(network_id="n", bridge="lbr-flattest", network_type=FLAT,
                          physical_network="physnet1")
        for host in (first, second):
            Host(physical_interface_mappings={"physnet1": "eth1"},
                 bridges=Bridges(host)).ensure(segment)
        with leaf(first, "lbr-flattest", f"{OVERLAY}.1/24") as one, \
                leaf(second, "lbr-flattest", f"{OVERLAY}.2/24"):
            assert pings(one, f"{OVERLAY}.2")
        with pytest.raises(Exception, match="physical_interface_mappings"):
            Host(bridges=Bridges(first)).ensure(segment)


def test_flows_plugging_into_a_new_vxlan_network_at_once_all_get_it():
    """The first amphorae plugged into a VXLAN network on a host, at the same time, each
    find its bridge and VXLAN device missing: one makes them, the others use them."""
    vni = 5000 + uuid.uuid4().int % 1000
    with hosts(1) as (only,):
        segment = Segment(network_id="n", bridge="lbr-vxmany", network_type=VXLAN, mtu=1450,
                          segmentation_id=vni, peers=(f"{UNDERLAY}.1", f"{UNDERLAY}.2",
                                                      f"{UNDERLAY}.3"))
        host = Host(local_ip=f"{UNDERLAY}.1", bridges=Bridges(only))
        failures: list[Exception] = []
        start = threading.Barrier(6)

        def ensure(_: int) -> None:
            start.wait()
            try:
                host.ensure(segment)
            except BridgeError as exc:
                failures.append(exc)
        in_threads(6, ensure)
        assert failures == []
        assert host.vxlan_peers() == {vni: {f"{UNDERLAY}.2", f"{UNDERLAY}.3"}}
