"""The local certificate store: what goes in, what comes out, what stays secret."""
from __future__ import annotations

import json
import stat

import pytest
from typer.testing import CliRunner

from lbaas import config
from lbaas.cert_manager import pem
from lbaas.cert_manager.base import CertificateError, Requester, SecretNotFound
from lbaas.cert_manager.local import LocalCertManager
from lbaas.cli import app
from lbaas.db import migrate
from lbaas.db.engine import Database
from lbaas.db.models import TlsSecret
from tests.tls_material import Authority

PROJECT = "project-a"


@pytest.fixture(scope="module")
def ca() -> Authority:
    return Authority()


@pytest.fixture
def settings(tmp_path):
    return config.load(environ={"LBAAS__DEFAULT__state_path": str(tmp_path)})


@pytest.fixture
def store(settings):
    db = Database(settings.database_url)
    migrate.upgrade(db.engine)
    yield LocalCertManager.from_settings(settings, db)
    db.dispose()


def test_certificate_round_trips_and_the_key_is_encrypted_at_rest(store, ca, settings):
    issued = ca.issue("www.example.com", ("www.example.com",))
    ref = store.store_certificate(issued.tls, PROJECT, "www")
    tls = store.get_cert(ref, Requester(PROJECT))
    assert tls.certificate == issued.cert_pem and tls.private_key == issued.key_pem
    with store.db.read() as session:
        row = session.get(TlsSecret, ref)
        assert b"PRIVATE KEY" not in row.payload and issued.key_pem not in row.payload
    key_file = settings.DEFAULT.state_path / "secret-store.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_another_project_cannot_read_a_secret(store, ca):
    ref = store.store_certificate(ca.issue("a").tls, PROJECT)
    with pytest.raises(SecretNotFound):
        store.get_cert(ref, Requester("project-b"))
    assert store.get_cert(ref, None).certificate  # an admin's (or the controller's) read


def test_a_key_that_does_not_match_is_refused(ca):
    one, other = ca.issue("one"), ca.issue("other")
    with pytest.raises(CertificateError, match="do not match"):
        pem.from_pem(one.cert_pem, other.key_pem)


def test_pkcs12_with_passphrase_and_intermediates(ca):
    issued = ca.issue("p12")
    issued.chain = (ca.certificate,)
    tls = pem.from_pkcs12(issued.pkcs12(b"s3cret"), b"s3cret")
    assert tls.certificate == issued.cert_pem and tls.intermediates == ca.cert_pem
    with pytest.raises(CertificateError, match="PKCS12"):
        pem.from_pkcs12(issued.pkcs12(b"s3cret"), b"wrong")


def test_a_certificate_used_as_a_secret_gives_only_its_public_part(store, ca):
    ref = store.store_certificate(ca.issue("x").tls, PROJECT)
    assert b"PRIVATE KEY" not in store.get_secret(ref)


def test_crl_must_come_from_the_ca(ca):
    assert pem.crl_signed_by(pem.revocation_list(ca.crl_pem()), ca.cert_pem)
    assert not pem.crl_signed_by(ca.crl_pem(), Authority("Other CA").cert_pem)
    with pytest.raises(CertificateError, match="revocation list"):
        pem.revocation_list(b"not a crl")


def test_a_store_opened_with_another_key_says_so(store, ca, settings):
    ref = store.store_certificate(ca.issue("k").tls, PROJECT)
    other = LocalCertManager(store.db, b"A" * 43 + b"=")
    with pytest.raises(CertificateError, match="storage_key"):
        other.get_cert(ref)


def test_secret_cli_stores_lists_shows_and_deletes(tmp_path, ca):
    issued = ca.issue("cli.example.com")
    (tmp_path / "cert.pem").write_bytes(issued.cert_pem)
    (tmp_path / "key.pem").write_bytes(issued.key_pem)
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    env = {"LBAAS__DEFAULT__state_path": str(tmp_path / "state")}
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    stored = runner.invoke(app, ["secret", "store", "--name", "web", "--certificate",
                                 str(tmp_path / "cert.pem"), "--private-key",
                                 str(tmp_path / "key.pem"), "-f", "json"], env=env)
    assert stored.exit_code == 0, stored.output
    info = json.loads(stored.output)
    assert info["subject"] == "CN=cli.example.com" and info["project_id"] == "admin"
    assert "PRIVATE" not in stored.output
    ca_ref = json.loads(runner.invoke(app, ["secret", "store", "--payload-file",
                                            str(tmp_path / "ca.pem"), "-f", "json"], env=env).output)["id"]
    listed = json.loads(runner.invoke(app, ["secret", "list", "-f", "json"], env=env).output)
    assert {row["ID"] for row in listed} == {info["id"], ca_ref}
    wrong = runner.invoke(app, ["secret", "store", "--certificate", str(tmp_path / "cert.pem"),
                                "--private-key", str(tmp_path / "ca.pem")], env=env)
    assert wrong.exit_code == 1 and "private key" in wrong.output
    assert runner.invoke(app, ["secret", "delete", info["id"], ca_ref], env=env).exit_code == 0
    assert json.loads(runner.invoke(app, ["secret", "list", "-f", "json"], env=env).output) == []
    missing = runner.invoke(app, ["secret", "show", info["id"]], env=env)
    assert missing.exit_code == 1 and "not found" in missing.output
