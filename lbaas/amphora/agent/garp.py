"""Gratuitous ARP: tell the neighbours which MAC now holds an address (stdlib only).

A replacement amphora takes over its VIP with a new MAC. The kernel's own announcement
(``arp_notify`` when the link comes up) can be lost while the bridge port is still coming
up, and a client that talked to the old amphora would keep the old MAC for up to a
minute; a few announcements over the next second, as keepalived does, fix that.
"""
from __future__ import annotations

import ipaddress
import socket
import threading
import time

ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6
REPEATS_S = (0.0, 0.2, 0.5, 1.0)  # when to announce, from now


def frame(mac: bytes, address: str) -> bytes:
    """An ARP request for ``address`` from ``address`` (the gratuitous form), broadcast."""
    ip = ipaddress.IPv4Address(address).packed
    header = BROADCAST + mac + ETH_P_ARP.to_bytes(2, "big")
    # Ethernet, IPv4, 6-byte MACs, 4-byte addresses, request; target MAC left zero.
    arp = b"\x00\x01\x08\x00\x06\x04\x00\x01" + mac + ip + b"\x00" * 6 + ip
    return header + arp


def _send(ifname: str, addresses: list[str]) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
        sock.bind((ifname, ETH_P_ARP))
        mac = sock.getsockname()[4]
        for address in addresses:
            sock.send(frame(mac, address))


def announce(ifname: str, addresses: list[str]) -> None:
    """Announce the IPv4 ``addresses`` of ``ifname`` now and a few times over the next
    second, in the background; failures are ignored (the kernel's ARP still works)."""
    ipv4 = [address for address in addresses if ipaddress.ip_address(address).version == 4]
    if not ipv4:
        return

    def run() -> None:
        started = time.monotonic()
        for at in REPEATS_S:
            time.sleep(max(0.0, started + at - time.monotonic()))
            try:
                _send(ifname, ipv4)
            except OSError:
                return
    threading.Thread(target=run, name=f"garp-{ifname}", daemon=True).start()
