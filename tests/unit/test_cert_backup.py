"""``lbaas certs backup`` / ``restore``: an encrypted copy of both CAs that brings a rebuilt
controller back to the same certificates, and refuses what would break running amphorae."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lbaas import config
from lbaas.certs import backup, store
from lbaas.cli import app

PASSPHRASE = "correct horse battery staple"


def settings_in(state: Path, **certificates: str) -> config.Settings:
    environ = {"LBAAS__DEFAULT__state_path": str(state),
               **{f"LBAAS__certificates__{key}": value for key, value in certificates.items()}}
    return config.load(environ=environ)


def material(settings: config.Settings) -> dict[str, bytes]:
    return {entry.name: entry.path.read_bytes() for entry in store.resolve(settings).entries()}


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def original(tmp_path: Path) -> config.Settings:
    settings = settings_in(tmp_path / "old", ca_private_key_passphrase="ca secret")
    store.ensure(settings)
    return settings


def test_a_rebuilt_controller_gets_the_same_certificates_back(original, tmp_path):
    archive = tmp_path / "certs.backup"
    names = backup.backup(original, archive, PASSPHRASE)
    assert names == [entry.name for entry in store.resolve(original).entries()]
    assert archive.stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" not in archive.read_bytes()
    assert b"CERTIFICATE" not in archive.read_bytes()

    rebuilt = settings_in(tmp_path / "new", ca_private_key_passphrase="ca secret")
    written = backup.restore(rebuilt, archive, PASSPHRASE)

    assert sorted(path.name for path in written) == sorted(names)
    assert material(rebuilt) == material(original)
    assert store.ensure(rebuilt)  # the services start on it as they are
    assert backup.restore(rebuilt, archive, PASSPHRASE) == []  # again: nothing to do


def test_a_wrong_passphrase_or_a_changed_archive_restores_nothing(original, tmp_path):
    archive = tmp_path / "certs.backup"
    backup.backup(original, archive, PASSPHRASE)
    rebuilt = settings_in(tmp_path / "new")
    with pytest.raises(config.ConfigError, match="wrong passphrase, or the file was changed"):
        backup.restore(rebuilt, archive, "another passphrase")
    damaged = bytearray(archive.read_bytes())
    damaged[-1] ^= 1
    archive.write_bytes(bytes(damaged))
    with pytest.raises(config.ConfigError, match="wrong passphrase, or the file was changed"):
        backup.restore(rebuilt, archive, PASSPHRASE)
    archive.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(config.ConfigError, match="not an archive"):
        backup.restore(rebuilt, archive, PASSPHRASE)
    assert not store.certs_dir(rebuilt).exists()


def test_restore_keeps_other_certificates_unless_told_to_replace_them(original, tmp_path):
    archive = tmp_path / "certs.backup"
    backup.backup(original, archive, PASSPHRASE)
    other = settings_in(tmp_path / "other", ca_private_key_passphrase="ca secret")
    store.ensure(other)  # a controller that generated CAs of its own meanwhile
    own = material(other)
    with pytest.raises(config.ConfigError, match="exist with other content.*--replace"):
        backup.restore(other, archive, PASSPHRASE)
    assert material(other) == own
    backup.restore(other, archive, PASSPHRASE, replace=True)
    assert material(other) == material(original)


def test_keys_the_configured_passphrase_cannot_open_are_not_restored(original, tmp_path):
    archive = tmp_path / "certs.backup"
    backup.backup(original, archive, PASSPHRASE)
    rebuilt = settings_in(tmp_path / "new", ca_private_key_passphrase="not the CA secret")
    with pytest.raises(config.ConfigError, match="nothing restored, the files are as they were"):
        backup.restore(rebuilt, archive, PASSPHRASE)
    assert not any(entry.path.exists() for entry in store.resolve(rebuilt).entries())


def test_a_short_passphrase_and_an_existing_file_are_refused(original, tmp_path):
    with pytest.raises(config.ConfigError, match="use at least 12"):
        backup.backup(original, tmp_path / "a", "short")
    (tmp_path / "b").write_text("keep me")
    with pytest.raises(config.ConfigError, match="already exists"):
        backup.backup(original, tmp_path / "b", PASSPHRASE)
    assert (tmp_path / "b").read_text() == "keep me"


def test_the_commands_round_trip_with_a_passphrase_file(tmp_path):
    old, new = tmp_path / "old.conf", tmp_path / "new.conf"
    old.write_text(f"[DEFAULT]\nstate_path = {tmp_path / 'old'}\n")
    new.write_text(f"[DEFAULT]\nstate_path = {tmp_path / 'new'}\n")
    store.ensure(config.load(old, environ={}))
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    archive = tmp_path / "certs.backup"

    made = run("certs", "backup", str(archive), "--passphrase-file", str(secret),
               "--config-file", str(old))
    assert made.exit_code == 0, made.output
    restored = run("certs", "restore", str(archive), "--passphrase-file", str(secret),
                   "--config-file", str(new))
    assert restored.exit_code == 0, restored.output
    assert material(config.load(new, environ={})) == material(config.load(old, environ={}))

    secret.write_text("not the passphrase at all\n")
    refused = run("certs", "restore", str(archive), "--passphrase-file", str(secret),
                  "--config-file", str(new))
    assert refused.exit_code == 2
    assert "wrong passphrase" in refused.output and "Traceback" not in refused.output
