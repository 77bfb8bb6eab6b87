"""A certificates driver that issues nothing, for API-only use and tests without root."""
from __future__ import annotations

from lbaas.drivers.certificates.base import AmphoraIdentity, CertificateDriver


class NoopCertificateDriver(CertificateDriver):
    def amphora_identity(self, amphora_id: str) -> AmphoraIdentity:
        return AmphoraIdentity()
