"""ssh keypairs for amphorae, as Nova's: a name and an OpenSSH public key (ed25519, RSA of
2048 bits or more, or ECDSA), shown with its SHA256 fingerprint as ``ssh-keygen -l``
shows it. A keypair created without a public key is generated here (ed25519); its
private key is given once, to the caller, and never stored."""
from __future__ import annotations

import base64
import hashlib
import re

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from lbaas.db.engine import Database
from lbaas.db.models import Keypair

NAME = re.compile(r"^[A-Za-z0-9 ._@-]{1,255}$")


class KeypairError(Exception):
    """A keypair that cannot be created, found or used; the message says why."""


def generate() -> tuple[str, str]:
    """A new ed25519 keypair: (OpenSSH private key, OpenSSH public key line)."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, public


def fingerprint(public_key: str) -> str:
    """``SHA256:<base64>`` of a checked OpenSSH public key line."""
    text = public_key.strip()
    if text.startswith("-----BEGIN"):
        raise KeypairError("this is a private key (or PEM): give the public key, the .pub file")
    if len(text.splitlines()) != 1:
        raise KeypairError("give one public key (one line); this holds "
                           f"{len(text.splitlines())} lines")
    if text.split(maxsplit=1)[0].endswith("-cert-v01@openssh.com"):
        raise KeypairError("this is an ssh certificate: give the public key it certifies")
    try:
        loaded = serialization.load_ssh_public_key(text.encode())
    except (ValueError, TypeError, IndexError, UnsupportedAlgorithm) as exc:
        raise KeypairError(f"not an OpenSSH public key ({exc}); give the .pub file's line "
                           "(without authorized_keys options)") from exc
    if isinstance(loaded, rsa.RSAPublicKey) and loaded.key_size < 2048:
        raise KeypairError(f"an RSA key of {loaded.key_size} bits is too weak; use 2048 or more")
    if not isinstance(loaded, (ed25519.Ed25519PublicKey, rsa.RSAPublicKey,
                               ec.EllipticCurvePublicKey)):
        raise KeypairError("use an ed25519, RSA or ECDSA key")
    blob = base64.b64decode(public_key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def check_name(name: str) -> str:
    if not NAME.fullmatch(name) or name != name.strip():
        raise KeypairError(f"invalid keypair name {name!r}: up to 255 letters, digits, spaces "
                           "and . _ @ -, not starting or ending with a space")
    return name


def create(db: Database, name: str, public_key: str) -> Keypair:
    check_name(name)
    checked = fingerprint(public_key)  # the text as given: one line, one key
    line = " ".join(public_key.strip().split(maxsplit=2))  # type, key, whole comment
    keypair = Keypair(name=name, public_key=line, fingerprint=checked)
    try:
        with db.write() as session:
            session.add(keypair)
    except IntegrityError as exc:
        raise KeypairError(f"keypair {name} already exists") from exc
    return keypair


def get(db: Database, name: str) -> Keypair:
    check_name(name)
    with db.read() as session:
        keypair = session.get(Keypair, name)
    if keypair is None:
        raise KeypairError(f"no keypair {name} (lbaas keypair list shows them; lbaas keypair "
                           f"create {name} makes one)")
    return keypair


def listed(db: Database) -> list[Keypair]:
    with db.read() as session:
        return list(session.scalars(select(Keypair).order_by(Keypair.name)))


def delete(db: Database, name: str) -> None:
    get(db, name)
    with db.write() as session:
        session.query(Keypair).filter(Keypair.name == name).delete()
