"""X.509 building blocks: keys, the self-signed CAs and the certificates they sign.

Pure functions over ``cryptography`` objects and PEM bytes; nothing here touches a file.

Every key generated here is EC P-384 (ECDSA). It is stronger than RSA 4096 (192-bit
security level), takes about a millisecond to generate where RSA 4096 takes about a
second - which counts, because each new amphora gets a fresh key while its load balancer
is being created - and every TLS 1.2+ stack accepts it. CAs an operator supplies may use
RSA or EC keys.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lbaas.config import ConfigError

CA_VALIDITY = dt.timedelta(days=1825)
CLIENT_CERT_VALIDITY = dt.timedelta(days=1825)
ORGANIZATION = "lbaas"
SIGNING_DIGESTS: dict[str, type[hashes.SHA224 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha224": hashes.SHA224, "sha256": hashes.SHA256,
    "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class PkiError(ConfigError):
    """Certificate material cannot be used; the message names the file and what to fix."""


@dataclass(frozen=True)
class Authority:
    """A CA able to sign: its certificate, its private key and the digest it signs with."""

    certificate: x509.Certificate
    private_key: SigningKey
    digest: str = "sha256"

    def sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        """Sign ``builder`` (subject, key, validity and extensions set) as this CA."""
        builder = builder.issuer_name(self.certificate.subject).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(self.private_key.public_key()),
            critical=False)
        return builder.sign(self.private_key, SIGNING_DIGESTS[self.digest]())


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate with its (unencrypted) private key, both as PEM."""

    certificate: bytes
    private_key: bytes
    expires_at: dt.datetime  # timezone-aware, UTC

    @property
    def pem(self) -> bytes:
        """Certificate followed by key: the one-file form of upstream's ``server.pem`` and
        ``client.pem``, which ``ssl.SSLContext.load_cert_chain`` reads."""
        return self.certificate + self.private_key


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def create_ca(common_name: str, digest: str = "sha256",
              validity: dt.timedelta = CA_VALIDITY) -> Authority:
    """A new self-signed CA allowed to sign end-entity certificates only (path length 0)."""
    key = new_key()
    name = _name(common_name)
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False))
    return Authority(builder.sign(key, SIGNING_DIGESTS[digest]()), key, digest)


def issue_amphora_certificate(ca: Authority, amphora_id: str,
                              validity_seconds: int) -> IssuedCertificate:
    """The agent's server certificate: CN and SAN DNS are the amphora id; extensions as
    upstream's local generator (``octavia/certificates/generator/local.py``)."""
    usage = _key_usage(digital_signature=True, key_encipherment=True, data_encipherment=True,
                       key_agreement=True)
    return _issue(ca, amphora_id, dt.timedelta(seconds=validity_seconds), [
        (x509.SubjectAlternativeName([x509.DNSName(amphora_id)]), False),
        (usage, True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                ExtendedKeyUsageOID.CLIENT_AUTH]), True),
    ])


def issue_client_certificate(ca: Authority, common_name: str,
                             validity: dt.timedelta = CLIENT_CERT_VALIDITY) -> IssuedCertificate:
    """The controller's TLS client certificate (client authentication only)."""
    return _issue(ca, common_name, validity, [
        (_key_usage(digital_signature=True), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
    ])


def _issue(ca: Authority, common_name: str, validity: dt.timedelta,
           extensions: list[tuple[x509.ExtensionType, bool]]) -> IssuedCertificate:
    key = new_key()
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False))
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    certificate = ca.sign(builder)
    return IssuedCertificate(certificate_pem(certificate), private_key_pem(key),
                             certificate.not_valid_after_utc)


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: SigningKey, passphrase: str | None = None) -> bytes:
    """PKCS#8 PEM, encrypted with ``passphrase`` when one is given."""
    encryption = (serialization.BestAvailableEncryption(passphrase.encode())
                  if passphrase else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption)


def load_certificates(pem: bytes, source: str) -> list[x509.Certificate]:
    """Every certificate in a PEM file (a bundle or cert + key); at least one."""
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise PkiError(f"{source} holds no PEM certificate") from exc


def load_private_key(pem: bytes, passphrase: str | None, source: str) -> SigningKey:
    """The private key in ``pem``, decrypted with ``passphrase`` (None: not encrypted)."""
    password = passphrase.encode() if passphrase else None
    try:
        key = serialization.load_pem_private_key(pem, password)
    except TypeError as exc:  # encrypted without a passphrase or the other way round
        raise PkiError(f"{source}: {exc}") from exc
    except ValueError as exc:
        raise PkiError(f"{source} holds no private key that this passphrase opens") from exc
    if not isinstance(key, SigningKey):
        raise PkiError(f"{source}: only RSA and EC keys are supported")
    return key


def matches(certificate: x509.Certificate, key: SigningKey) -> bool:
    return bool(certificate.public_key() == key.public_key())


def check_pair(certificate: x509.Certificate, key: SigningKey, source: str) -> None:
    """Refuse a key that does not belong to the certificate."""
    if not matches(certificate, key):
        raise PkiError(f"{source}: the private key does not match the certificate")


def check_ca(certificate: x509.Certificate, source: str) -> None:
    """Refuse a certificate that may not sign others."""
    try:
        is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise PkiError(f"{source} is not a CA certificate (basicConstraints CA:TRUE is missing)")


def issued_by_any(certificate: x509.Certificate, issuers: list[x509.Certificate]) -> bool:
    """Whether one of ``issuers`` signed ``certificate``."""
    for issuer in issuers:
        try:
            certificate.verify_directly_issued_by(issuer)
        except (InvalidSignature, ValueError, TypeError):  # wrong signer or name, other key type
            continue
        return True
    return False


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(**granted: bool) -> x509.KeyUsage:
    flags = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{flag: granted.get(flag, False) for flag in flags})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
