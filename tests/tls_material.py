"""Certificates for TLS tests, made on the fly: a CA, server and client certificates signed
by it, a revocation list, and PKCS12 bundles. Nothing generated is committed."""
from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lbaas.cert_manager.base import TlsCertificate

PEM = serialization.Encoding.PEM
ONE_DAY = dt.timedelta(days=1)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@dataclass
class Issued:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(PEM)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)

    @property
    def chain_pem(self) -> bytes:
        return b"".join(item.public_bytes(PEM) for item in self.chain)

    @property
    def tls(self) -> TlsCertificate:
        return TlsCertificate(self.cert_pem, self.key_pem, self.chain_pem)

    def pkcs12(self, passphrase: bytes | None = None) -> bytes:
        encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                      else serialization.NoEncryption())
        return pkcs12.serialize_key_and_certificates(
            b"tls", self.key, self.certificate, list(self.chain) or None, encryption)


class Authority:
    """A CA that issues server and client certificates and revokes them."""

    def __init__(self, common_name: str = "Test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - ONE_DAY).not_valid_after(now + 30 * ONE_DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(self.key, hashes.SHA256()))
        self.revoked: list[x509.Certificate] = []

    @cached_property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(PEM)

    def issue(self, common_name: str, dns_names: tuple[str, ...] = (), *, client: bool = False,
              ip_addresses: tuple[str, ...] = ()) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
        builder = (
            x509.CertificateBuilder().subject_name(_name(common_name))
            .issuer_name(self.certificate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - ONE_DAY).not_valid_after(now + 10 * ONE_DAY)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]),
                critical=False))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return Issued(builder.sign(self.key, hashes.SHA256()), key)

    def revoke(self, issued: Issued) -> None:
        self.revoked.append(issued.certificate)

    def crl_pem(self) -> bytes:
        now = dt.datetime.now(dt.UTC)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.certificate.subject)
                   .last_update(now - ONE_DAY).next_update(now + 10 * ONE_DAY))
        for certificate in self.revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(certificate.serial_number)
                .revocation_date(now - ONE_DAY).build())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(PEM)
