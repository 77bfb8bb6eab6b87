"""The amphora's own network stack: find an interface by MAC and give it its addresses."""
from __future__ import annotations

import ipaddress
import json
import subprocess
from typing import Any

from lbaas.amphora.agent import garp


class InterfaceNotFound(Exception):
    pass


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def _batch(commands: list[list[str]]) -> None:
    """Several ``ip`` commands in one run (``ip -batch``, which stops at the first that
    fails): each run is a process to start, a few milliseconds of a plug on a busy host."""
    subprocess.run(["ip", "-batch", "-"], input="".join(" ".join(command) + "\n"
                                                      for command in commands),
                   check=True, capture_output=True, text=True)


def interfaces() -> list[dict[str, Any]]:
    """``ip -j addr`` as parsed JSON: name, MAC, state and addresses of each interface."""
    links: list[dict[str, Any]] = json.loads(_ip("-j", "addr", "show"))
    return links


def by_mac(mac_address: str, links: list[dict[str, Any]] | None = None) -> str:
    """The interface with this MAC, in ``links`` (``interfaces()``) or on the system."""
    for link in interfaces() if links is None else links:
        if link.get("address", "").lower() == mac_address.lower():
            return str(link["ifname"])
    raise InterfaceNotFound(f"No suitable network interface found for MAC {mac_address}")


def by_address(ip_address: str) -> str:
    wanted = ipaddress.ip_address(ip_address)
    for link in interfaces():
        for info in link.get("addr_info", []):
            if ipaddress.ip_address(info["local"]) == wanted:
                return str(link["ifname"])
    raise InterfaceNotFound(f"No interface has address {ip_address}")


def configure(ifname: str, addresses: list[str], *, gateway: str | None = None,
              mtu: int | None = None, links: list[dict[str, Any]] | None = None) -> None:
    """Give ``ifname`` exactly these addresses (``ip/prefix``), bring it up, set the route;
    ``links``: ``interfaces()`` if the caller has just read them."""
    wanted = {str(ipaddress.ip_interface(address)) for address in addresses}
    commands = []
    for link in interfaces() if links is None else links:
        if link["ifname"] != ifname:
            continue
        for info in link.get("addr_info", []):
            present = f"{info['local']}/{info['prefixlen']}"
            if info.get("scope") == "global" and present not in wanted:
                commands.append(["addr", "del", present, "dev", ifname])
    for address in sorted(wanted):
        # The controller hands each address out once, so IPv6 duplicate address detection
        # would only leave it tentative for a second or two: unusable as a source, so the
        # kernel would masquerade UDP flows to members from another interface's address.
        nodad = ["nodad"] if ipaddress.ip_interface(address).version == 6 else []
        commands.append(["addr", "replace", address, "dev", ifname, *nodad])
    if mtu:
        commands.append(["link", "set", "dev", ifname, "mtu", str(int(mtu))])
    commands.append(["link", "set", "dev", ifname, "up"])
    _batch(commands)
    garp.announce(ifname, [str(ipaddress.ip_interface(address).ip) for address in sorted(wanted)])
    if gateway:
        family = "-6" if ipaddress.ip_address(gateway).version == 6 else "-4"
        _ip(family, "route", "replace", "default", "via", gateway, "dev", ifname)
