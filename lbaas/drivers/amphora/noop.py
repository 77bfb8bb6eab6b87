"""An amphora driver that talks to no agent, for API-only use and tests without root."""
from __future__ import annotations

from lbaas import constants
from lbaas.db.models import Amphora, LoadBalancer
from lbaas.drivers.amphora.base import AmphoraDriver
from lbaas.drivers.network.base import Port


class NoopAmphoraDriver(AmphoraDriver):
    def wait_ready(self, amphora: Amphora) -> None:
        return None

    def post_vip_plug(self, amphora: Amphora, vip: Port, vrrp: Port, mac_address: str,
                      topology: str = constants.TOPOLOGY_SINGLE, with_vip: bool = True) -> None:
        return None

    def post_network_plug(self, amphora: Amphora, port: Port, mac_address: str) -> None:
        return None

    def update(self, load_balancer: LoadBalancer, amphora: Amphora) -> None:
        return None

    def delete(self, load_balancer: LoadBalancer, amphora: Amphora) -> None:
        return None

    def vrrp_interface(self, amphora: Amphora) -> str:
        return "eth1"

    def update_vrrp(self, load_balancer: LoadBalancer, amphora: Amphora,
                    takeover: bool = False) -> None:
        return None

    def stop_vrrp(self, amphora: Amphora) -> None:
        return None

    def drain(self, amphora: Amphora, addresses: list[str], timeout: float) -> list[int]:
        return []

    def holds_address(self, amphora: Amphora, ip_address: str) -> bool:
        return False

    def forget(self, amphora_id: str) -> None:
        return None  # nothing is kept per amphora

    def upload_cert_amp(self, amphora: Amphora, pem: bytes) -> None:
        return None

    def upload_client_ca(self, amphora: Amphora, pem: bytes) -> None:
        return None
