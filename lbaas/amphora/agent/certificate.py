"""The agent's own server certificate, and the client CA bundle it checks the controllers'
certificates against: each replaced in place when the controller rotates it.

Upstream's ``PUT /1.0/certificate`` writes the new PEM over ``agent_server_cert``. Here
the new certificate and key are first loaded into a TLS context of their own, so a PEM
that is malformed or whose key does not match never replaces a working one; the file is
then swapped atomically (mode 0600) and the server builds its context for new connections
from it. Connections already open keep theirs; haproxy is not involved at all.
"""
from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path


class InvalidCertificate(Exception):
    """The PEM is not a certificate followed by its private key."""


def install(path: Path, pem: bytes) -> None:
    """Check ``pem`` (certificate + key) and atomically make it the file at ``path``."""
    if b"CERTIFICATE" not in pem or b"PRIVATE KEY" not in pem:
        raise InvalidCertificate("expected a PEM certificate followed by its private key")
    _replace(path, pem, lambda name: ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(name))


def install_client_ca(path: Path, pem: bytes) -> None:
    """Check ``pem`` (CA certificates only: during a rotation the old and the new client CA)
    and atomically make it the file at ``path``."""
    if b"CERTIFICATE" not in pem or b"PRIVATE KEY" in pem:
        raise InvalidCertificate("expected PEM CA certificates and no private key")
    _replace(path, pem, lambda name: ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
             .load_verify_locations(name))


def _replace(path: Path, pem: bytes, check: Callable[[str], None]) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(pem)
        os.chmod(temporary, 0o600)
        try:
            check(temporary)
        except ssl.SSLError as exc:
            raise InvalidCertificate(f"the certificate cannot be used: {exc}") from exc
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
