"""Certificate manager ``local_cert_manager``: an encrypted store in lbaas's own database.

The embedded default, filled with ``lbaas secret store``. A reference is the secret's id.
Payloads are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under ``[certificates]
storage_key`` or a key made once in the state directory (0600), so the database alone (a
dump, a replica) gives no private key away. The store lives in the database, so every
controller of a deployment reads the same secrets (they must share the key).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.orm import Session

from lbaas import keyfile
from lbaas.cert_manager import pem
from lbaas.cert_manager.base import (
    CertificateError,
    CertManager,
    Requester,
    SecretNotFound,
    TlsCertificate,
)
from lbaas.config import Settings
from lbaas.db.engine import Database
from lbaas.db.models import Listener, Pool, TlsSecret

KEY_FILE = "secret-store.key"
CERTIFICATE = "certificate"
OPAQUE = "opaque"


def storage_key(settings: Settings) -> bytes:
    """``[certificates] storage_key``, else the key file of the state directory."""
    configured = settings.certificates.storage_key
    if configured is not None:
        return _fernet_key(configured.get_secret_value())
    return keyfile.ensure(settings.DEFAULT.state_path / KEY_FILE,
                          lambda: Fernet.generate_key().decode()).encode()


def _fernet_key(text: str) -> bytes:
    """A Fernet key as given, or derived from any passphrase an operator wrote."""
    try:
        if len(base64.urlsafe_b64decode(text.encode())) == 32:
            return text.encode()
    except ValueError:
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest())


@dataclass(frozen=True)
class SecretInfo:
    """What ``lbaas secret list/show`` prints: never the payload."""

    id: str
    name: str | None
    project_id: str | None
    secret_type: str
    expiration: str | None
    created_at: str
    subject: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return dict(self.__dict__)


class LocalCertManager(CertManager):
    def __init__(self, db: Database, key: bytes) -> None:
        self.db = db
        self._fernet = Fernet(key)

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> LocalCertManager:
        return cls(db, storage_key(settings))

    # --- reading (the CertManager interface) -------------------------------------------

    def _row(self, ref: str, requester: Requester | None) -> TlsSecret:
        with self.db.read() as session:
            row = session.get(TlsSecret, ref.strip()) if len(ref) <= 36 else None
        if row is None or (requester is not None and row.project_id != requester.project_id):
            raise SecretNotFound(f"secret {ref} not found")
        return row

    def _payload(self, row: TlsSecret) -> bytes:
        try:
            return self._fernet.decrypt(row.payload)
        except InvalidToken as exc:
            raise CertificateError(
                f"secret {row.id} cannot be decrypted: [certificates] storage_key (or "
                f"{KEY_FILE} in the state path) is not the key it was stored with") from exc

    def get_cert(self, ref: str, requester: Requester | None = None) -> TlsCertificate:
        row = self._row(ref, requester)
        if row.secret_type != CERTIFICATE:
            raise CertificateError(f"secret {ref} holds no certificate and private key")
        parts = json.loads(self._payload(row))
        return TlsCertificate(**{name: value.encode() for name, value in parts.items()})

    def get_secret(self, ref: str, requester: Requester | None = None) -> bytes:
        row = self._row(ref, requester)
        if row.secret_type == CERTIFICATE:
            # A certificate used as a CA: its public part only, never the key.
            return self.get_cert(ref, requester).certificate
        return self._payload(row)

    # --- managing (lbaas secret ...) ---------------------------------------------------

    def store_certificate(self, tls: TlsCertificate, project_id: str | None,
                          name: str | None = None) -> str:
        tls = pem.checked(tls)
        payload = json.dumps({"certificate": tls.certificate.decode(),
                              "private_key": tls.private_key.decode(),
                              "intermediates": tls.intermediates.decode()}).encode()
        return self._store(CERTIFICATE, payload, project_id, name, pem.not_after(tls.certificate))

    def store_secret(self, payload: bytes, project_id: str | None, name: str | None = None) -> str:
        """An opaque secret: a CA bundle or a revocation list, checked when it is used."""
        if not payload.strip():
            raise CertificateError("the payload is empty")
        return self._store(OPAQUE, payload, project_id, name, None)

    def _store(self, kind: str, payload: bytes, project_id: str | None, name: str | None,
               expiration: dt.datetime | None) -> str:
        row = TlsSecret(project_id=project_id, name=name, secret_type=kind,
                        payload=self._fernet.encrypt(payload), expiration=expiration)
        with self.db.write() as session:
            session.add(row)
            session.flush()
            return row.id

    def list(self, project_id: str | None = None) -> list[SecretInfo]:
        with self.db.read() as session:
            query = select(TlsSecret).order_by(TlsSecret.created_at, TlsSecret.id)
            if project_id is not None:
                query = query.where(TlsSecret.project_id == project_id)
            return [_info(row) for row in session.scalars(query)]

    def show(self, ref: str) -> SecretInfo:
        row = self._row(ref, None)
        subject = None
        if row.secret_type == CERTIFICATE:
            subject = pem.subject(self.get_cert(ref).certificate)
        return _info(row, subject)

    def delete(self, ref: str) -> None:
        """Remove a secret no listener or pool uses (CertificateError naming the user)."""
        with self.db.write() as session:
            row = session.get(TlsSecret, ref)
            if row is None:
                raise SecretNotFound(f"secret {ref} not found")
            users = _users(session, ref)
            if users:
                raise CertificateError(f"secret {ref} is in use by {', '.join(users)}: change "
                                       "or delete them first")
            session.delete(row)


def _info(row: TlsSecret, subject: str | None = None) -> SecretInfo:
    return SecretInfo(id=row.id, name=row.name, project_id=row.project_id,
                      secret_type=row.secret_type,
                      expiration=row.expiration.isoformat() if row.expiration else None,
                      created_at=row.created_at.isoformat(), subject=subject)


def _users(session: Session, ref: str) -> list[str]:
    """The listeners and pools (not being deleted) that name ``ref``."""
    found = []
    for listener in session.scalars(select(Listener)):
        names = (listener.tls_certificate_id, listener.client_ca_tls_certificate_id,
                 listener.client_crl_container_id, *(listener.sni_container_refs or []))
        if ref in names:
            found.append(f"listener {listener.id}")
    for pool in session.scalars(select(Pool)):
        if ref in (pool.tls_certificate_id, pool.ca_tls_certificate_id, pool.crl_container_id):
            found.append(f"pool {pool.id}")
    return found
