"""The Linux bridge behind each network, managed with iproute2 (``ip``).

A network's bridge is created when the network is created (``lbaas network create``)
and removed when it is deleted. :meth:`Bridges.ensure_network` is idempotent, so the
network driver calls it again before plugging an amphora in: a bridge lost with a
reboot comes back on first use.

Bridges carry no host address (``addrgenmode none``: not even an IPv6 link-local one),
except the management bridge, which gets the controller's address. Nothing here turns
on IP forwarding or NAT.

Every bridge gets a fixed MAC address (:func:`bridge_mac`). Left to itself, Linux gives a
bridge the lowest MAC of its ports, so the management bridge's MAC changed whenever an
amphora's veth with the lowest MAC came or went. The live amphorae kept the old MAC in
their ARP caches (REACHABLE for up to 45 s): a reply sent right after the change was lost
and retransmitted until the cache entry expired, so one agent call stalled 26-53 s.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import socket
import subprocess
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any, Protocol

from lbaas.network.errors import BridgeError

BRIDGE_PREFIX = "lbr-"
MAX_INTERFACE_NAME = 15  # IFNAMSIZ - 1


class NetworkLike(Protocol):
    bridge: str
    physical_interface: str | None
    mtu: int


def bridge_name(network_id: str) -> str:
    """``lbr-`` and the first 11 hex digits of the network id: 15 characters, as Linux allows."""
    return BRIDGE_PREFIX + uuid.UUID(network_id).hex[:MAX_INTERFACE_NAME - len(BRIDGE_PREFIX)]


def bridge_mac(name: str, host_identity: str | None = None, host: str | None = None) -> str:
    """The bridge's fixed MAC: locally administered, unicast, derived from this machine
    (``/etc/machine-id``, else its name), the lbaas host name when one is given (a compute
    agent's ``[DEFAULT] host``: machines cloned from one image share a machine id, and
    hosts simulated on one machine share everything else) and the bridge's name, so it is
    the same after a reboot and differs between hosts whose bridges VXLAN joins."""
    if host_identity is None:
        machine_id = Path("/etc/machine-id")
        host_identity = (machine_id.read_text().strip() if machine_id.exists()
                         else socket.gethostname())
    scope = f"{host_identity}/{host}" if host else host_identity
    digest = hashlib.sha256(f"{scope}/{name}".encode()).digest()
    return ":".join(f"{byte:02x}" for byte in (0x02, *digest[:5]))


def valid_interface_name(name: str) -> bool:
    return (0 < len(name) <= MAX_INTERFACE_NAME and name not in (".", "..")
            and not any(char in name for char in "/:% \t\n"))


class Bridges:
    """Bridges in the host's network namespace, or in the namespace ``netns`` (tests)."""

    def __init__(self, netns: str | None = None, host: str | None = None) -> None:
        self.netns = netns
        self.host = host  # a compute host's name, for its bridges' MACs (bridge_mac)

    def _ip(self, *args: str) -> str:
        command = ["ip", *(["-n", self.netns] if self.netns else []), *args]
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        except FileNotFoundError as exc:
            raise BridgeError("the `ip` command is missing; install iproute2 (apt-get install iproute2)") from exc
        if done.returncode != 0:
            hint = "; run lbaas as root" if "Operation not permitted" in done.stderr else ""
            raise BridgeError(f"`{' '.join(command)}` failed: {done.stderr.strip()}{hint}")
        return done.stdout

    def link(self, name: str) -> dict[str, Any] | None:
        """The interface's details (``ip -j -d addr show``), or None if there is none."""
        try:
            shown = json.loads(self._ip("-j", "-d", "addr", "show", "dev", name) or "[]")
        except BridgeError as exc:
            if "does not exist" in str(exc):
                return None
            raise
        return shown[0] if shown else None

    def exists(self, name: str) -> bool:
        return self.link(name) is not None

    def ensure(self, name: str, *, mtu: int | None = None) -> None:
        """Create the bridge if it is missing, pin its MAC and bring it up; refuse a
        non-bridge of that name."""
        link = self.link(name) or self._add(name, mtu)
        if link is not None:  # found (made before, or by someone else just now)
            if link.get("linkinfo", {}).get("info_kind") != "bridge":
                raise BridgeError(f"interface {name} exists and is not a bridge; rename or remove it")
            if mtu and link.get("mtu") != mtu:
                self._ip("link", "set", "dev", name, "mtu", str(mtu))
        mac = bridge_mac(name, host=self.host)
        if (link or {}).get("address") != mac:
            # A bridge made before MACs were fixed may carry the controller's address: it
            # announces the new MAC (gratuitous ARP), or the amphorae would keep the old one.
            self._sysctl(f"net/ipv4/conf/{name}/arp_notify=1")
            self._ip("link", "set", "dev", name, "address", mac)
        self._ip("link", "set", "dev", name, "up")

    def _add(self, name: str, mtu: int | None) -> dict[str, Any] | None:
        """Make the bridge; None once made, or the link that another flow or service made
        meanwhile (both found it missing, after a reboot say)."""
        try:
            self._ip("link", "add", name, *(["mtu", str(mtu)] if mtu else []), "type", "bridge")
        except BridgeError:
            if (link := self.link(name)) is None:
                raise
            return link
        self._ip("link", "set", "dev", name, "addrgenmode", "none")
        return None

    def _sysctl(self, setting: str) -> None:
        command = [*(["ip", "netns", "exec", self.netns] if self.netns else []),
                   "sysctl", "-qw", setting]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BridgeError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")

    def remove(self, name: str) -> None:
        """Delete the bridge (interfaces on it are released); nothing if it is gone already."""
        if self.exists(name):
            self._ip("link", "del", "dev", name)

    def attach(self, bridge: str, interface: str) -> None:
        """Put a host interface on the bridge (``--physical-interface``)."""
        link = self.link(interface)
        if link is None:
            raise BridgeError(f"interface {interface} does not exist on this host; "
                              "check --physical-interface (`ip link` lists the interfaces)")
        if link.get("master") == bridge:
            return
        if link.get("master"):
            raise BridgeError(f"interface {interface} is already on {link['master']}; "
                              "take it off there first")
        addresses = [item["local"] for item in link.get("addr_info", [])
                     if item.get("scope") == "global"]
        if addresses:
            raise BridgeError(
                f"interface {interface} has addresses ({', '.join(addresses)}); putting it on a "
                "bridge would cut them off. Use an interface dedicated to load balancer traffic")
        self._ip("link", "set", "dev", interface, "master", bridge)
        self._ip("link", "set", "dev", interface, "up")

    def addresses(self, name: str) -> list[str]:
        """The bridge's global addresses as ``address/prefix``."""
        link = self.link(name) or {}
        return [f"{item['local']}/{item['prefixlen']}" for item in link.get("addr_info", [])
                if item.get("scope") == "global"]

    def set_address(self, name: str, address: str, replacing: Collection[str] = ()) -> None:
        """Give the bridge ``address`` (``ip/prefix``) instead of the addresses (ips) in
        ``replacing``; its other addresses (another controller's, when several share a
        host's bridge) stay."""
        wanted = ipaddress.ip_interface(address)
        for current in self.addresses(name):
            existing = ipaddress.ip_interface(current)
            if str(existing.ip) in replacing and existing != wanted:
                self._ip("addr", "del", current, "dev", name)
        if wanted.with_prefixlen not in self.addresses(name):
            self._ip("addr", "add", wanted.with_prefixlen, "dev", name)

    def ensure_network(self, network: NetworkLike) -> None:
        """The network's bridge exists, is up, and holds its physical interface if it has one."""
        self.ensure(network.bridge, mtu=network.mtu)
        if network.physical_interface:
            self.attach(network.bridge, network.physical_interface)

    def remove_network(self, network: NetworkLike) -> None:
        self.remove(network.bridge)
