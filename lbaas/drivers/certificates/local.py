"""Certificates driver ``local``: amphora certificates signed by the server CA on this host."""
from __future__ import annotations

from lbaas.amphora.agent.status_message import amphora_key
from lbaas.certs import pki, store
from lbaas.config import Settings
from lbaas.drivers.certificates.base import (
    CLIENT_CA_PEM,
    HEARTBEAT_KEY,
    SERVER_PEM,
    AmphoraIdentity,
    CertificateDriver,
)


class LocalCertificateDriver(CertificateDriver):
    def __init__(self, settings: Settings, heartbeat_secret: str) -> None:
        self.settings = settings
        self.paths = store.ensure(settings)
        # The controller's secret stays here: an amphora (and the compute driver that
        # builds it) gets only the key derived for it.
        self._heartbeat_secret = heartbeat_secret

    def amphora_identity(self, amphora_id: str) -> AmphoraIdentity:
        issued = pki.issue_amphora_certificate(store.load_server_ca(self.settings), amphora_id,
                                               self.settings.certificates.cert_validity_time)
        return AmphoraIdentity(
            files={SERVER_PEM: issued.pem, CLIENT_CA_PEM: self.paths.client_ca.read_bytes(),
                   HEARTBEAT_KEY: amphora_key(self._heartbeat_secret, amphora_id).encode()},
            expires_at=issued.expires_at)
