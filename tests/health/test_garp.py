"""The agent's gratuitous ARP frame (a replacement amphora announcing its VIP)."""
from __future__ import annotations

from lbaas.amphora.agent.garp import frame


def test_a_gratuitous_arp_announces_the_address_from_itself():
    mac = bytes.fromhex("fa163e000001")
    packet = frame(mac, "10.0.0.5")
    assert packet[:6] == b"\xff" * 6 and packet[6:12] == mac and packet[12:14] == b"\x08\x06"
    arp = packet[14:]
    assert arp[6:8] == b"\x00\x01"  # a request
    assert arp[8:14] == mac and arp[14:18] == arp[24:28] == bytes([10, 0, 0, 5])
