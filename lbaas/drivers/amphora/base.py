"""Amphora driver: the controller's side of the amphora agent."""
from __future__ import annotations

import abc

from lbaas import constants
from lbaas.db.models import Amphora, LoadBalancer
from lbaas.drivers.network.base import Port


class AmphoraDriver(abc.ABC):
    @abc.abstractmethod
    def wait_ready(self, amphora: Amphora) -> None:
        """Block until the amphora's agent answers (or raise)."""

    @abc.abstractmethod
    def post_vip_plug(self, amphora: Amphora, vip: Port, vrrp: Port, mac_address: str,
                      topology: str = constants.TOPOLOGY_SINGLE, with_vip: bool = True) -> None:
        """Configure the VIP interface (found by MAC) with the amphora's (VRRP) address and,
        unless ACTIVE_STANDBY (where keepalived holds it) or not ``with_vip`` (a failover's
        new amphora, configured before it takes the VIP), the VIP address."""

    @abc.abstractmethod
    def post_network_plug(self, amphora: Amphora, port: Port, mac_address: str) -> None:
        """Configure a member-network interface (found by MAC) with its address."""

    @abc.abstractmethod
    def update(self, load_balancer: LoadBalancer, amphora: Amphora) -> None:
        """Render the load balancer's whole configuration and make the amphora serve it."""

    @abc.abstractmethod
    def delete(self, load_balancer: LoadBalancer, amphora: Amphora) -> None:
        """Stop serving the load balancer on the amphora."""

    @abc.abstractmethod
    def upload_client_ca(self, amphora: Amphora, pem: bytes) -> None:
        """Replace the client CA bundle the agent checks controllers against (CA rotation)."""

    @abc.abstractmethod
    def upload_cert_amp(self, amphora: Amphora, pem: bytes) -> None:
        """Replace the agent's server certificate and key (certificate rotation)."""

    @abc.abstractmethod
    def vrrp_interface(self, amphora: Amphora) -> str:
        """The name of the amphora's interface holding its VRRP address."""

    @abc.abstractmethod
    def update_vrrp(self, load_balancer: LoadBalancer, amphora: Amphora,
                    takeover: bool = False) -> None:
        """Render the amphora's keepalived configuration, install it, (re)start keepalived;
        with ``takeover`` the amphora takes the VIP from its peer at once."""

    @abc.abstractmethod
    def stop_vrrp(self, amphora: Amphora) -> None:
        """Stop keepalived: a MASTER hands the VIP over to its peer at once."""

    @abc.abstractmethod
    def drain(self, amphora: Amphora, addresses: list[str], timeout: float) -> list[int]:
        """Before ``addresses`` move to a peer: drop new connections to them, let haproxy
        finish the open ones (lbaas.amphora.agent.drain); the pids still running at the
        timeout."""

    @abc.abstractmethod
    def holds_address(self, amphora: Amphora, ip_address: str) -> bool:
        """Whether the amphora has ``ip_address`` now (False if it does not answer)."""

    @abc.abstractmethod
    def forget(self, amphora_id: str) -> None:
        """The amphora is gone: drop whatever the driver kept for it (connections)."""
