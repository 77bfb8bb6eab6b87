"""The agent's own server certificate: replaced in place when the controller rotates it.

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
from pathlib import Path


class InvalidCertificate(Exception):
    """The PEM is not a certificate followed by its private key."""


def install(path: Path, pem: bytes) -> None:
    """Check ``pem`` (certificate + key) and atomically make it the file at ``path``."""
    if b"CERTIFICATE" not in pem or b"PRIVATE KEY" not in pem:
        raise InvalidCertificate("expected a PEM certificate followed by its private key")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(pem)
        os.chmod(temporary, 0o600)
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(temporary)
        except ssl.SSLError as exc:
            raise InvalidCertificate(f"the certificate cannot be used: {exc}") from exc
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
