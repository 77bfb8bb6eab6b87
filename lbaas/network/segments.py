"""Where a network meets a host: its bridge, and what joins that bridge to other hosts'.

A registry network has a type, as Neutron's provider networks:

- ``local``: the bridge on one host (the embedded default, with ``physical_interface``
  optionally on it);
- ``vxlan``: on every host, a VXLAN device with the network's VNI on its bridge. Flooded
  frames (ARP, the first frame to an unknown MAC) go to every other host's tunnel address
  (head-end replication: one all-zeros forwarding entry per peer, no multicast); the
  device learns where each MAC lives from what it receives. The network's MTU is 50
  bytes below the underlay's, which the VXLAN headers take;
- ``flat``: on every host, the interface that host maps the network's
  ``physical_network`` to (``physical_interface_mappings``, as Neutron's Linux bridge
  agent's), on the bridge.

``ensure`` makes a host match a ``Segment`` and can be run again at any time: it is run
by a compute agent before it plugs a port into the network, and by the controllers for
the management network, and again whenever the set of hosts changes (new peers).
"""
from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lbaas.network.bridge import Bridges
from lbaas.network.errors import BridgeError

LOCAL, VXLAN, FLAT = "local", "vxlan", "flat"
NETWORK_TYPES = (LOCAL, VXLAN, FLAT)
VXLAN_PORT = 4789
VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
FLOOD_MAC = "00:00:00:00:00:00"


@dataclass(frozen=True)
class Segment:
    """What one host needs of a network."""

    network_id: str
    bridge: str
    network_type: str = LOCAL
    mtu: int = 1500
    segmentation_id: int | None = None
    physical_network: str | None = None
    physical_interface: str | None = None  # local networks: a fixed interface of this host
    peers: tuple[str, ...] = ()  # vxlan: the other hosts' tunnel addresses

    def as_dict(self) -> dict[str, Any]:
        return {"network_id": self.network_id, "bridge": self.bridge,
                "network_type": self.network_type, "mtu": self.mtu,
                "segmentation_id": self.segmentation_id,
                "physical_network": self.physical_network,
                "physical_interface": self.physical_interface, "peers": list(self.peers)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Segment:
        return cls(**{**data, "peers": tuple(data.get("peers") or ())})


@dataclass
class Host:
    """This host's side of the segments: its tunnel address and interface mappings."""

    local_ip: str | None = None
    physical_interface_mappings: dict[str, str] = field(default_factory=dict)
    bridges: Bridges = field(default_factory=Bridges)

    def ensure(self, segment: Segment) -> None:
        """The network's bridge, joined to the other hosts as its type says."""
        self.bridges.ensure(segment.bridge, mtu=segment.mtu)
        if segment.network_type == VXLAN:
            self._ensure_vxlan(segment)
        elif segment.network_type == FLAT:
            interface = self.physical_interface_mappings.get(segment.physical_network or "")
            if interface is None:
                raise BridgeError(
                    f"network {segment.network_id} is on physical network "
                    f"{segment.physical_network}, which this host does not map to an "
                    "interface; add it to physical_interface_mappings (physnet:interface)")
            self.bridges.attach(segment.bridge, interface)
        elif segment.physical_interface:
            self.bridges.attach(segment.bridge, segment.physical_interface)

    def _ensure_vxlan(self, segment: Segment) -> None:
        if not self.local_ip:
            raise BridgeError(f"network {segment.network_id} is a VXLAN network and this host "
                              "has no tunnel address; set local_ip")
        if segment.segmentation_id is None:
            raise BridgeError(f"VXLAN network {segment.network_id} has no VNI")
        name = vxlan_name(segment.segmentation_id)
        link = self.bridges.link(name)
        info = (link or {}).get("linkinfo", {}).get("info_data", {})
        if link is not None and (info.get("id") != segment.segmentation_id
                                 or info.get("local") != self.local_ip):
            self.bridges.remove(name)  # made for another VNI or tunnel address
            link = None
        if link is None:
            try:
                self._ip("link", "add", name, "type", "vxlan", "id", str(segment.segmentation_id),
                         "local", self.local_ip, "dstport", str(VXLAN_PORT))
            except BridgeError:
                if self.bridges.link(name) is None:  # else another flow plugging made it
                    raise
        self._ip("link", "set", "dev", name, "mtu", str(segment.mtu))
        self._ip("link", "set", "dev", name, "master", segment.bridge)
        self._ip("link", "set", "dev", name, "up")
        self._flood_to(name, set(segment.peers) - {self.local_ip})

    def _flood_to(self, device: str, peers: set[str]) -> None:
        """Exactly one flooding entry per peer on ``device``."""
        present = self._flooded(device)
        for peer in sorted(peers - present):
            self._change_flood("append", device, peer)
        for peer in sorted(present - peers):
            self._change_flood("del", device, peer)

    def _flooded(self, device: str) -> set[str]:
        return set(re.findall(rf"^{FLOOD_MAC} dst (\S+)", self._bridge_fdb(device), re.M))

    def _change_flood(self, action: str, device: str, peer: str) -> None:
        """Add or remove one flooding entry; done already (by another flow plugging
        into this network at the same time) counts as done."""
        try:
            self._bridge("fdb", action, FLOOD_MAC, "dev", device, "dst", peer)
        except BridgeError:
            if (peer in self._flooded(device)) != (action == "append"):
                raise

    def vxlan_peers(self) -> dict[int, set[str]]:
        """The tunnel addresses each of this host's VXLAN devices floods to now, by VNI."""
        devices = json.loads(self._ip("-j", "-d", "link", "show", "type", "vxlan") or "[]")
        return {device["linkinfo"]["info_data"]["id"]: self._flooded(device["ifname"])
                for device in devices if device["ifname"].startswith("vx-")}

    def _bridge_fdb(self, device: str) -> str:
        return self._bridge("fdb", "show", "dev", device)

    def _ip(self, *args: str) -> str:
        return self.bridges._ip(*args)

    def _bridge(self, *args: str) -> str:
        command = ["bridge", *(["-n", self.bridges.netns] if self.bridges.netns else []), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BridgeError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")
        return done.stdout

    def remove(self, segment: Segment) -> None:
        """The network's bridge and VXLAN device go (its flat interface is set free)."""
        if segment.network_type == VXLAN and segment.segmentation_id is not None:
            self.bridges.remove(vxlan_name(segment.segmentation_id))
        self.bridges.remove(segment.bridge)


def vxlan_name(vni: int) -> str:
    return f"vx-{vni}"


def parse_mappings(entries: list[str]) -> dict[str, str]:
    """``physnet:interface`` entries as a mapping; a malformed one is a ValueError."""
    mappings = {}
    for entry in entries:
        physnet, _, interface = entry.partition(":")
        if not physnet.strip() or not interface.strip():
            raise ValueError(f"physical_interface_mappings entry {entry!r} is not "
                             "physical_network:interface")
        mappings[physnet.strip()] = interface.strip()
    return mappings
