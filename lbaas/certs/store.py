"""The controller's certificate files: generated on first start or supplied by the operator.

Generated material lives in ``<state_path>/certs/`` (directory 0700, every file 0600):

================  ==============================================  ===============================
file              holds                                           option that supplies it instead
================  ==============================================  ===============================
server_ca.pem     server CA certificate: signs amphora certs,     [certificates] ca_certificate
                  the controller verifies agents against it       (and [haproxy_amphora] server_ca)
server_ca.key     its private key                                 [certificates] ca_private_key
client_ca.pem     client CA certificate, shipped to amphorae:     [controller_worker] client_ca
                  agents accept only clients it signed
client_ca.key     its private key (not needed when supplied)
client.pem        the controller's client certificate and key     [haproxy_amphora] client_cert
================  ==============================================  ===============================

The CAs live five years, the controller's certificate too. Both CA keys are encrypted with
``[certificates] ca_private_key_passphrase`` when it is set (as openstack-ansible does);
the controller's own key is not (upstream's ``client_cert`` holds a plain key).

The server side (server CA) and the client side (client CA and client certificate) are each
either supplied - every option of that side set, files checked at start and never written -
or generated once and reused on every later start. Generation runs under a lock on the
directory, so services starting together on one host agree on one set; several controller
hosts must share the files (generate on one, copy with ``lbaas certs export``, supply them).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from lbaas import filelock
from lbaas.certs import pki
from lbaas.config import ConfigError, Settings

LOG = logging.getLogger(__name__)

SERVER_CA = "server_ca.pem"
SERVER_CA_KEY = "server_ca.key"
SERVER_CA_BUNDLE = "server_ca_bundle.pem"
CLIENT_CA = "client_ca.pem"
CLIENT_CA_KEY = "client_ca.key"
CLIENT_CERT = "client.pem"
SERVER_CA_NAME = "lbaas server CA"
CLIENT_CA_NAME = "lbaas client CA"
CONTROLLER_NAME = "lbaas controller"
# A CA closer than this to its end is reported (logs, `lbaas status`): replacing a CA
# means reissuing every amphora's or controller's certificate, which takes planning.
CA_EXPIRY_WARNING = dt.timedelta(days=90)


@dataclass(frozen=True)
class Entry:
    """One file of the certificate material."""

    name: str  # its name in <state_path>/certs/ and in an export
    option: str  # the option naming it
    path: Path
    generated: bool
    holds_certificate: bool


@dataclass(frozen=True)
class CertPaths:
    """Where each piece of the certificate material is, generated or supplied."""

    ca_certificate: Path  # the server CA: signs amphora certificates
    ca_private_key: Path
    server_ca: Path  # the CA bundle the controller verifies agents against
    client_ca: Path  # shipped to amphorae
    client_ca_key: Path | None  # None when the client side is supplied
    client_cert: Path  # the controller's certificate and key
    server_supplied: bool
    client_supplied: bool

    def entries(self) -> list[Entry]:
        server, client = not self.server_supplied, not self.client_supplied
        entries = [
            Entry(SERVER_CA, "[certificates] ca_certificate", self.ca_certificate, server, True),
            Entry(SERVER_CA_KEY, "[certificates] ca_private_key", self.ca_private_key, server,
                  False),
        ]
        if self.server_ca != self.ca_certificate:
            entries.append(Entry(SERVER_CA_BUNDLE, "[haproxy_amphora] server_ca", self.server_ca,
                                 False, True))
        entries.append(Entry(CLIENT_CA, "[controller_worker] client_ca", self.client_ca, client,
                             True))
        if self.client_ca_key is not None:
            entries.append(Entry(CLIENT_CA_KEY, "-", self.client_ca_key, client, False))
        entries.append(Entry(CLIENT_CERT, "[haproxy_amphora] client_cert", self.client_cert,
                             client, True))
        return entries


def certs_dir(settings: Settings) -> Path:
    return settings.DEFAULT.state_path / "certs"


def resolve(settings: Settings) -> CertPaths:
    """The paths the configuration names (no file is read); refuses half-supplied sides."""
    options = settings.certificates
    supplied_server = _supplied(("[certificates] ca_certificate", options.ca_certificate),
                                ("[certificates] ca_private_key", options.ca_private_key))
    if settings.haproxy_amphora.server_ca and not supplied_server:
        raise ConfigError(
            "[haproxy_amphora] server_ca is set but [certificates] ca_certificate is not: the "
            "controller must trust the CA that signs amphora certificates; set ca_certificate "
            "and ca_private_key too, or unset server_ca")
    supplied_client = _supplied(
        ("[controller_worker] client_ca", settings.controller_worker.client_ca),
        ("[haproxy_amphora] client_cert", settings.haproxy_amphora.client_cert))
    base = certs_dir(settings)
    ca_certificate = options.ca_certificate or base / SERVER_CA
    return CertPaths(
        ca_certificate=ca_certificate,
        ca_private_key=options.ca_private_key or base / SERVER_CA_KEY,
        server_ca=settings.haproxy_amphora.server_ca or ca_certificate,
        client_ca=settings.controller_worker.client_ca or base / CLIENT_CA,
        client_ca_key=None if supplied_client else base / CLIENT_CA_KEY,
        client_cert=settings.haproxy_amphora.client_cert or base / CLIENT_CERT,
        server_supplied=supplied_server,
        client_supplied=supplied_client,
    )


def ensure(settings: Settings) -> CertPaths:
    """Make the certificate material usable; the services call this at start-up.

    Generates what is missing of the generated sides and checks what exists (keys match
    their certificates, the passphrase opens the keys, the controller's certificate comes
    from the client CA, ``server_ca`` contains the signing CA). Idempotent. Raises
    ``ConfigError`` saying which file is wrong and how to fix it.
    """
    paths = resolve(settings)
    passphrase = ca_passphrase(settings)
    digest = settings.certificates.signing_digest
    with locked(certs_dir(settings)):
        if paths.server_supplied:
            _check_trusted(load_server_ca(settings), paths.server_ca)
        else:
            _generated_ca(paths.ca_certificate, paths.ca_private_key, SERVER_CA_NAME,
                          passphrase, digest)
        if paths.client_supplied:
            client_cas = pki.load_certificates(_read(paths.client_ca), str(paths.client_ca))
            for certificate in client_cas:
                pki.check_ca(certificate, str(paths.client_ca))
            _check_client_cert(paths.client_cert, client_cas)
        else:
            assert paths.client_ca_key is not None
            client_ca = _generated_ca(paths.client_ca, paths.client_ca_key, CLIENT_CA_NAME,
                                      passphrase, digest)
            # Any CA of the bundle will do: agents accept each (two during a rotation).
            _generated_client_cert(paths.client_cert, client_ca, pki.load_certificates(
                _read(paths.client_ca), str(paths.client_ca)))
    for name, end in ca_expiries(paths).items():
        if end - dt.datetime.now(dt.UTC).replace(tzinfo=None) < CA_EXPIRY_WARNING:
            LOG.warning("the %s expires at %s UTC: plan its replacement (see `lbaas certs "
                        "show`)", name, f"{end:%Y-%m-%d %H:%M}")
    return paths


def ca_expiries(paths: CertPaths) -> dict[str, dt.datetime]:
    """When each CA that exists expires (naive UTC), by its name in the logs."""
    found = {"server CA": expiry(paths.ca_certificate), "client CA": expiry(paths.client_ca)}
    return {name: end.replace(tzinfo=None) for name, end in found.items() if end is not None}


def load_server_ca(settings: Settings) -> pki.Authority:
    """The CA that signs amphora certificates (for ``pki.issue_amphora_certificate``)."""
    paths = resolve(settings)
    return load_authority(paths.ca_certificate, paths.ca_private_key, ca_passphrase(settings),
                           settings.certificates.signing_digest)


HOST_SERVER_CERT = "server.pem"
HOST_CERT_VALIDITY_DAYS = 365


def issue_host(settings: Settings, identity: str, destination: Path,
               days: int = HOST_CERT_VALIDITY_DAYS) -> list[Path]:
    """A compute agent's files: its certificate and key (``server.pem``, from the server
    CA, naming ``identity``) and the client CA it accepts callers of (``client_ca.pem``),
    written 0600 into ``destination`` (created 0700); refuses to overwrite."""
    paths = ensure(settings)
    written = [destination / HOST_SERVER_CERT, destination / CLIENT_CA]
    present = [str(path) for path in written if path.exists()]
    if present:
        raise ConfigError(f"nothing written: {', '.join(present)} already exist; choose "
                          "another directory or remove them")
    issued = pki.issue_amphora_certificate(load_server_ca(settings), identity, days * 86400)
    destination.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(written[0], issued.pem)
    write_private(written[1], paths.client_ca.read_bytes())
    return written


def export(settings: Settings, destination: Path) -> list[Path]:
    """Copy every file of the material into ``destination`` (0600 files, a new directory is
    0700) under the generated names; refuses to overwrite. Keys stay as encrypted as they are."""
    entries = resolve(settings).entries()
    missing = [str(entry.path) for entry in entries if not entry.path.exists()]
    if missing:
        raise ConfigError(f"nothing exported: {', '.join(missing)} missing; the services "
                          "create generated files on their first start")
    present = [str(destination / entry.name) for entry in entries
               if (destination / entry.name).exists()]
    if present:
        raise ConfigError(f"nothing exported: {', '.join(present)} already exist; "
                          "choose another directory")
    destination.mkdir(mode=0o700, parents=True, exist_ok=True)
    for entry in entries:
        write_private(destination / entry.name, entry.path.read_bytes())
    return [destination / entry.name for entry in entries]


def expiry(path: Path) -> dt.datetime | None:
    """When the first certificate in ``path`` expires (UTC); None if there is none."""
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())[0].not_valid_after_utc
    except (OSError, ValueError):
        return None


def _supplied(*options: tuple[str, Path | None]) -> bool:
    """Whether the operator supplies this side: every option set (True), or none (False)."""
    given = [name for name, value in options if value]
    if given and len(given) < len(options):
        missing = [name for name, value in options if not value]
        raise ConfigError(f"{' and '.join(given)} set without {' and '.join(missing)}: set "
                          "all of them to use your own files, or none to use generated ones")
    return bool(given)


def ca_passphrase(settings: Settings) -> str | None:
    secret = settings.certificates.ca_private_key_passphrase
    return secret.get_secret_value() if secret else None


def _generated_ca(cert_path: Path, key_path: Path, common_name: str, passphrase: str | None,
                  digest: str) -> pki.Authority:
    """Load a generated CA, or create it if its certificate does not exist yet."""
    if cert_path.exists():
        if not key_path.exists():
            raise ConfigError(
                f"{key_path} is missing while {cert_path} exists: restore it from the copy "
                f"`lbaas certs export` made, or remove {cert_path} to generate a new CA "
                "(existing amphorae do not work with a new CA)")
        return load_authority(cert_path, key_path, passphrase, digest)
    authority = pki.create_ca(common_name, digest)
    write_private(key_path, pki.private_key_pem(authority.private_key, passphrase))
    write_private(cert_path, pki.certificate_pem(authority.certificate))  # last: the CA is complete
    LOG.info("generated the %s in %s", common_name, cert_path)
    return authority


def _generated_client_cert(path: Path, client_ca: pki.Authority,
                           accepted: list[x509.Certificate]) -> None:
    if path.exists():
        _check_client_cert(path, accepted)
        return
    write_private(path, pki.issue_client_certificate(client_ca, CONTROLLER_NAME).pem)
    LOG.info("generated the controller's client certificate in %s", path)


def load_authority(cert_path: Path, key_path: Path, passphrase: str | None,
                    digest: str) -> pki.Authority:
    """The CA of ``cert_path`` whose key ``key_path`` holds: the first certificate, or,
    while a rotation trusts two CAs (lbaas.certs.rotation), the one matching the key."""
    certificates = pki.load_certificates(_read(cert_path), str(cert_path))
    key = pki.load_private_key(_read(key_path), passphrase, str(key_path))
    certificate = next((c for c in certificates if pki.matches(c, key)), certificates[0])
    pki.check_ca(certificate, str(cert_path))
    pki.check_pair(certificate, key, str(key_path))
    return pki.Authority(certificate, key, digest)


def _check_trusted(server_ca: pki.Authority, bundle: Path) -> None:
    """The controller must trust the CA that signs the amphorae's certificates."""
    if server_ca.certificate not in pki.load_certificates(_read(bundle), str(bundle)):
        raise ConfigError(f"{bundle} ([haproxy_amphora] server_ca) does not contain the "
                          "[certificates] ca_certificate that signs amphora certificates; "
                          "the controller would refuse every agent")


def _check_client_cert(path: Path, client_cas: list[x509.Certificate]) -> None:
    """``path`` holds a certificate, its unencrypted key, and the certificate comes from
    one of ``client_cas`` (directly or through intermediates in the same file)."""
    pem = _read(path)
    chain = pki.load_certificates(pem, str(path))
    pki.check_pair(chain[0], pki.load_private_key(pem, None, str(path)), str(path))
    if not pki.issued_by_any(chain[0], client_cas + chain[1:]):
        raise ConfigError(f"{path}: the controller's certificate is not signed by the client "
                          "CA, so agents would refuse the controller")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as a 0600 file; a reader sees no half-written file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Create ``directory`` (0700) and hold its lock: one process generates at a time."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    with filelock.held(directory / ".lock", directory_mode=0o700):
        yield
