"""An encrypted copy of the certificate material, for the disaster recovery the deployment
guide asks for ("keep the two CAs safe"): ``lbaas certs backup`` and ``restore``.

Losing the server CA means no controller can talk to a running amphora again; losing the
client CA means no new controller certificate the amphorae accept. The archive holds
every file ``lbaas certs show`` lists, under its generated name, encrypted and
authenticated with a key derived from a passphrase (scrypt, then AES-256-GCM), so it can
sit on ordinary backup storage. Keys stay as encrypted as they are on disk.

Format: ``MAGIC``, a 16-byte salt, a 12-byte nonce, then the sealed JSON
``{"version": 1, "created_at": ..., "files": {name: base64}}``.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from lbaas.certs import store
from lbaas.config import ConfigError, Settings

MAGIC = b"LBAAS-CERTS-BACKUP-1\n"
SALT_BYTES, NONCE_BYTES = 16, 12
MIN_PASSPHRASE = 12
# scrypt's cost: about 0.1 s and 32 MiB here, each try of a guessed passphrase too.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


def _key(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(
        passphrase.encode())


def seal(files: dict[str, bytes], passphrase: str) -> bytes:
    if len(passphrase) < MIN_PASSPHRASE:
        raise ConfigError(f"the passphrase has {len(passphrase)} characters; use at least "
                          f"{MIN_PASSPHRASE}")
    payload = json.dumps({
        "version": 1, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "files": {name: base64.b64encode(data).decode() for name, data in files.items()},
    }).encode()
    salt, nonce = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES)
    return MAGIC + salt + nonce + AESGCM(_key(passphrase, salt)).encrypt(nonce, payload, MAGIC)


def unseal(archive: bytes, passphrase: str, source: str) -> dict[str, bytes]:
    if not archive.startswith(MAGIC):
        raise ConfigError(f"{source} is not an archive `lbaas certs backup` made")
    body = archive[len(MAGIC):]
    salt, nonce, sealed = body[:SALT_BYTES], body[SALT_BYTES:SALT_BYTES + NONCE_BYTES], \
        body[SALT_BYTES + NONCE_BYTES:]
    try:
        payload = json.loads(AESGCM(_key(passphrase, salt)).decrypt(nonce, sealed, MAGIC))
    except InvalidTag as exc:
        raise ConfigError(f"cannot open {source}: wrong passphrase, or the file was "
                          "changed since it was written") from exc
    return {name: base64.b64decode(data) for name, data in payload["files"].items()}


def backup(settings: Settings, destination: Path, passphrase: str) -> list[str]:
    """Write the encrypted archive (0600; refuses to overwrite); returns the names in it."""
    entries = store.resolve(settings).entries()
    missing = [str(entry.path) for entry in entries if not entry.path.exists()]
    if missing:
        raise ConfigError(f"no backup written: {', '.join(missing)} missing; the services "
                          "create generated files on their first start")
    if destination.exists():
        raise ConfigError(f"no backup written: {destination} already exists")
    store.write_private(destination, seal(
        {entry.name: entry.path.read_bytes() for entry in entries}, passphrase))
    return [entry.name for entry in entries]


def restore(settings: Settings, source: Path, passphrase: str,
            replace: bool = False) -> list[Path]:
    """Put the archived files where the configuration expects them, then check the result
    as a service start would (keys open with the configured passphrase and match, the
    controller's certificate comes from the client CA). A file that exists with other
    content is kept unless ``replace``; returns the files written."""
    try:
        archived = unseal(source.read_bytes(), passphrase, str(source))
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc.strerror}") from exc
    entries = store.resolve(settings).entries()
    missing = [entry.name for entry in entries if entry.name not in archived]
    if missing:
        raise ConfigError(f"nothing restored: {source} has no {', '.join(missing)}; the "
                          "configuration names files the backup did not have")
    wanted = [(entry.path, archived[entry.name]) for entry in entries
              if not entry.path.exists() or entry.path.read_bytes() != archived[entry.name]]
    differing = [str(path) for path, _ in wanted if path.exists()]
    if differing and not replace:
        raise ConfigError(f"nothing restored: {', '.join(differing)} exist with other "
                          "content; amphorae built with them stop working if they are "
                          "replaced: move them away, or pass --replace")
    before = {path: path.read_bytes() if path.exists() else None for path, _ in wanted}
    for path, data in wanted:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        store.write_private(path, data)
    try:
        store.ensure(settings)
    except ConfigError as exc:
        _put_back(before)
        raise ConfigError(f"nothing restored, the files are as they were: {exc}") from exc
    return [path for path, _ in wanted]


def _put_back(before: dict[Path, bytes | None]) -> None:
    for path, data in before.items():
        if data is None:
            path.unlink(missing_ok=True)
        else:
            store.write_private(path, data)
