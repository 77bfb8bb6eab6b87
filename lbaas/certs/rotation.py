"""Replacing a generated CA without replacing any amphora: the files' side of it.

Each rotation goes through states the files themselves record, so that a rotation
interrupted at any point (a crash, an amphora that does not answer) is resumed by running
the command again, and every process reading the files at any moment gets a consistent
pair (the signing CA is the certificate of the bundle that matches the key):

- server CA: ``begin_server`` saves a new CA's key aside (``server_ca.next.key``), makes
  ``server_ca.pem`` the bundle [old, new] (controllers trust both; the old one still
  signs), then puts the new key in place (the new one signs). The controller reissues
  every amphora's certificate (lbaas.controller.ca_rotation), and ``finish_server``
  leaves only the new CA in ``server_ca.pem``: the old one is refused from then on.
- client CA: ``begin_client`` does the same with ``client_ca.pem`` (pushed to every
  amphora, which then accepts controllers of either CA), ``switch_client`` puts the new
  key in place and issues the controller's certificate from it, ``finish_client`` leaves
  only the new CA (pushed to every amphora first).

The replaced files are kept beside, as ``<name>.retired-<UTC time>`` (0600), until the
operator removes them. A supplied CA (bring your own) is the operator's to rotate.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509

from lbaas.certs import pki, store
from lbaas.config import ConfigError, Settings


class RotationError(ConfigError):
    """The rotation cannot go on; the message says why and what to do."""


def _paths(settings: Settings, which: str) -> tuple[Path, Path]:
    paths = store.resolve(settings)
    if which == "server":
        if paths.server_supplied:
            raise RotationError("the server CA is supplied ([certificates] ca_certificate): "
                                "rotate it yourself; this command rotates generated CAs")
        found = paths.ca_certificate, paths.ca_private_key
    elif paths.client_supplied or paths.client_ca_key is None:
        raise RotationError("the client CA is supplied ([controller_worker] client_ca): "
                            "rotate it yourself; this command rotates generated CAs")
    else:
        found = paths.client_ca, paths.client_ca_key
    if not all(path.is_file() for path in found):
        raise RotationError(f"no generated {which} CA in {found[0].parent} yet: the services "
                            "make it when they first start; there is nothing to rotate")
    return found


def _next_key(key_path: Path) -> Path:
    return key_path.with_name(key_path.name.replace(".key", ".next.key"))


def bundle(settings: Settings, which: str) -> list[x509.Certificate]:
    cert_path, _ = _paths(settings, which)
    return pki.load_certificates(cert_path.read_bytes(), str(cert_path))


def _authority(settings: Settings, which: str) -> pki.Authority:
    cert_path, key_path = _paths(settings, which)
    return store.load_authority(cert_path, key_path, store.ca_passphrase(settings),
                                 settings.certificates.signing_digest)


def _pem(certificates: list[x509.Certificate]) -> bytes:
    return b"".join(pki.certificate_pem(certificate) for certificate in certificates)


def begin(settings: Settings, which: str) -> bytes:
    """Trust a new CA beside the old one and sign with the new one (``which``: "server"
    or "client"); resumes an interrupted start. Returns the bundle now trusted."""
    cert_path, key_path = _paths(settings, which)
    passphrase = store.ca_passphrase(settings)
    following = _next_key(key_path)
    with store.locked(cert_path.parent):
        # The configured passphrase must open the key in place: the new key is written
        # with it, and a CA nobody can open afterwards would stop every service.
        _authority(settings, which)
        current = pki.load_certificates(cert_path.read_bytes(), str(cert_path))
        if len(current) == 1:
            name = store.SERVER_CA_NAME if which == "server" else store.CLIENT_CA_NAME
            new = pki.create_ca(name, settings.certificates.signing_digest)
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            for path in (cert_path, key_path):
                store.write_private(path.with_name(f"{path.name}.retired-{stamp}"),
                                    path.read_bytes())
            store.write_private(following, pki.private_key_pem(new.private_key, passphrase))
            current = [current[0], new.certificate]
            store.write_private(cert_path, _pem(current))
        if len(current) != 2:
            raise RotationError(f"{cert_path} holds {len(current)} certificates; a rotation "
                                "expects one (or two while it runs)")
        if which == "server" and following.exists():
            store.write_private(key_path, following.read_bytes())  # the new CA signs now
            following.unlink()
    return _pem(current)


def switch_client(settings: Settings) -> None:
    """The controller's certificate comes from the new client CA, which then signs. The
    certificate is written first: while the old key is still in place the bundle holds
    the new CA too, so the files stay consistent if this stops in between."""
    cert_path, key_path = _paths(settings, "client")
    following = _next_key(key_path)
    with store.locked(cert_path.parent):
        _authority(settings, "client")  # the passphrase opens the key in place
        if following.exists():
            new_key = pki.load_private_key(following.read_bytes(), store.ca_passphrase(settings),
                                           str(following))
            [new] = [c for c in bundle(settings, "client") if pki.matches(c, new_key)]
            authority = pki.Authority(new, new_key, settings.certificates.signing_digest)
        else:
            authority = _authority(settings, "client")
        client_cert = store.resolve(settings).client_cert
        chain = pki.load_certificates(client_cert.read_bytes(), str(client_cert))
        if not pki.issued_by_any(chain[0], [authority.certificate]):
            store.write_private(client_cert, pki.issue_client_certificate(
                authority, store.CONTROLLER_NAME).pem)
        if following.exists():
            store.write_private(key_path, following.read_bytes())
            following.unlink()


def finishing_bundle(settings: Settings, which: str) -> bytes:
    """The new CA alone (the one whose key signs), as the rotation will leave it."""
    return pki.certificate_pem(_authority(settings, which).certificate)


def finish(settings: Settings, which: str) -> None:
    """Trust only the new CA: the old one is refused from now on."""
    cert_path, _ = _paths(settings, which)
    with store.locked(cert_path.parent):
        store.write_private(cert_path, finishing_bundle(settings, which))
