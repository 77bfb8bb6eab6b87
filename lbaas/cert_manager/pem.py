"""Reading what users store: PKCS12 bundles, PEM or DER certificates, keys, CAs and CRLs.

Everything comes out as PEM in the form haproxy reads (one certificate first, its
intermediates after, the key unencrypted), and every check that a bundle can be served
runs here: the certificate parses, the key opens and belongs to it, a CA bundle holds
certificates, a revocation list parses and is signed by the CA it goes with.
"""
from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from lbaas.cert_manager.base import CertificateError, TlsCertificate

PEM = serialization.Encoding.PEM
BEGIN_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


def _certificates(data: bytes, what: str) -> list[x509.Certificate]:
    """Every certificate of ``data``, PEM (one or more) or DER (one)."""
    try:
        if BEGIN_CERTIFICATE in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise CertificateError(f"{what} is not a valid x509 certificate") from exc


def _pem(certificates: list[x509.Certificate]) -> bytes:
    return b"".join(certificate.public_bytes(PEM) for certificate in certificates)


def _key_pem(key: object, what: str) -> bytes:
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise CertificateError(f"{what}: only RSA and EC private keys are supported")
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _matching(certificate: x509.Certificate, key_pem: bytes, intermediates: list[x509.Certificate],
              what: str) -> TlsCertificate:
    key = serialization.load_pem_private_key(key_pem, None)
    if certificate.public_key() != key.public_key():
        raise CertificateError(f"{what}: key and x509 certificate do not match")
    return TlsCertificate(certificate.public_bytes(PEM), key_pem, _pem(intermediates))


def from_pkcs12(data: bytes, passphrase: bytes | None = None, what: str = "PKCS12 bundle"
                ) -> TlsCertificate:
    """A PKCS12 bundle (upstream's recommended Barbican secret) as PEM."""
    try:
        bundle = pkcs12.load_pkcs12(data, passphrase or None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"{what} could not be read as PKCS12 (wrong passphrase?)") from exc
    if bundle.cert is None or bundle.key is None:
        raise CertificateError(f"{what} must hold a certificate and its private key")
    intermediates = [item.certificate for item in bundle.additional_certs]
    return _matching(bundle.cert.certificate, _key_pem(bundle.key, what), intermediates, what)


def from_pem(certificate: bytes, private_key: bytes, intermediates: bytes = b"",
             passphrase: bytes | None = None, what: str = "certificate") -> TlsCertificate:
    """A certificate (PEM or DER; certificates after the first count as intermediates), its
    key (PEM or DER, opened with ``passphrase`` if encrypted) and intermediates."""
    chain = _certificates(certificate, what)
    extra = _certificates(intermediates, f"{what} intermediates") if intermediates.strip() else []
    try:
        if b"-----BEGIN" in private_key:
            key = serialization.load_pem_private_key(private_key, passphrase or None)
        else:
            key = serialization.load_der_private_key(private_key, passphrase or None)
    except TypeError as exc:
        raise CertificateError(f"{what}: the private key is encrypted and needs a passphrase, "
                               "or is not encrypted and takes none") from exc
    except ValueError as exc:
        raise CertificateError(f"{what}: could not read the private key (wrong passphrase?)") from exc
    return _matching(chain[0], _key_pem(key, what), chain[1:] + extra, what)


def checked(tls: TlsCertificate, what: str = "certificate") -> TlsCertificate:
    """``tls`` re-read from its parts: refuses anything haproxy could not load."""
    return from_pem(tls.certificate, tls.private_key, tls.intermediates, what=what)


def ca_bundle(data: bytes, what: str = "CA certificate") -> bytes:
    """One or more CA certificates (PEM, or one DER), as PEM."""
    return _pem(_certificates(data, what))


def revocation_list(data: bytes, what: str = "certificate revocation list") -> bytes:
    """A CRL (PEM or DER), as PEM."""
    try:
        crl = (x509.load_pem_x509_crl(data) if b"-----BEGIN" in data
               else x509.load_der_x509_crl(data))
    except ValueError as exc:
        raise CertificateError(f"{what} is not a valid x509 certificate revocation list") from exc
    return crl.public_bytes(PEM)


def crl_signed_by(crl_pem: bytes, ca_pem: bytes) -> bool:
    """Whether one of the CA bundle's certificates signed the revocation list."""
    crl = x509.load_pem_x509_crl(crl_pem)
    for ca in x509.load_pem_x509_certificates(ca_pem):
        if ca.subject != crl.issuer:
            continue
        try:
            if crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
                return True
        except (InvalidSignature, TypeError):
            continue
    return False


def not_after(pem: bytes) -> dt.datetime:
    """When the first certificate of ``pem`` expires (UTC, naive)."""
    return x509.load_pem_x509_certificates(pem)[0].not_valid_after_utc.replace(tzinfo=None)


def subject(pem: bytes) -> str:
    return x509.load_pem_x509_certificates(pem)[0].subject.rfc4514_string()
