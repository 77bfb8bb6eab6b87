"""The certificate manager interface: where tenants' TLS certificates come from.

Listeners and pools name certificates by reference (``default_tls_container_ref`` and the
like); a certificate manager turns a reference into what haproxy needs, as upstream's
``octavia/certificates/manager``. Two kinds of reference exist:

* a *certificate*: a certificate, its private key and intermediates (a listener's default
  and SNI certificates, a pool's client certificate towards members);
* a *secret*: an opaque payload, a CA bundle or a revocation list (client CA and CRL of a
  listener, CA and CRL of a pool).

The API reads every reference when a listener or pool is created or changed (so a
reference it accepts can be served), the amphora driver reads them again to ship them.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass


class CertificateError(Exception):
    """A reference cannot be used; ``str()`` says why (never a secret's content)."""


class SecretNotFound(CertificateError):
    """No such reference (or one the caller may not see, which looks the same)."""


@dataclass(frozen=True)
class TlsCertificate:
    """A certificate with its key, all PEM; the key is never encrypted here."""

    certificate: bytes
    private_key: bytes
    intermediates: bytes = b""

    def bundle(self) -> bytes:
        """One PEM file as haproxy's ``crt`` takes it: certificate, intermediates, key."""
        parts = (self.certificate, self.intermediates, self.private_key)
        return b"".join(part if part.endswith(b"\n") else part + b"\n" for part in parts if part)


@dataclass(frozen=True)
class Requester:
    """Who wants to use a reference: its listener's or pool's project, and the caller's
    Keystone token when there is one (Barbican then checks the caller may read it)."""

    project_id: str | None
    token: str | None = None


class CertManager(abc.ABC):
    """Reads certificates and secrets by reference.

    With a ``requester``, a reference of another project is "not found"; without one any
    reference is read (an admin's request, or the controller shipping what the API
    already accepted).
    """

    @abc.abstractmethod
    def get_cert(self, ref: str, requester: Requester | None = None) -> TlsCertificate:
        """The certificate ``ref`` names, checked (the key matches the certificate)."""

    @abc.abstractmethod
    def get_secret(self, ref: str, requester: Requester | None = None) -> bytes:
        """The payload of secret ``ref`` (a PEM CA bundle or revocation list)."""
