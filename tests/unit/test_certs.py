"""The two CAs: generated once, supplied by the operator, and the mutual TLS they make."""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import http.server
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from lbaas import config
from lbaas.amphora.agent.status_message import amphora_key
from lbaas.certs import pki, store, tls
from lbaas.cli import app
from lbaas.drivers.certificates.base import HEARTBEAT_KEY
from lbaas.drivers.certificates.local import LocalCertificateDriver

AMPHORA = "5b6d4c3e-0f1a-4e2b-9c8d-7a6b5c4d3e2f"
OTHER_AMPHORA = "0e9d8c7b-6a5f-4e3d-2c1b-0a9f8e7d6c5b"
GENERATED = ["server_ca.pem", "server_ca.key", "client_ca.pem", "client_ca.key", "client.pem"]


def load_settings(state: Path, **sections: dict[str, str]) -> config.Settings:
    """Defaults with state in ``state`` and the given ``section -> {option: value}``."""
    environ = {"LBAAS__DEFAULT__state_path": str(state)}
    environ.update({f"LBAAS__{section}__{option}": value
                    for section, options in sections.items() for option, value in options.items()})
    return config.load(environ=environ)


@pytest.fixture
def settings(tmp_path: Path) -> config.Settings:
    return load_settings(tmp_path / "state")


@pytest.fixture
def paths(settings: config.Settings) -> store.CertPaths:
    return store.ensure(settings)


def amphora_pem(settings: config.Settings, amphora_id: str, directory: Path) -> Path:
    """Issue the server certificate of ``amphora_id`` and write it as the agent's server.pem."""
    issued = pki.issue_amphora_certificate(store.load_server_ca(settings), amphora_id,
                                           settings.certificates.cert_validity_time)
    path = directory / f"{amphora_id}.pem"
    path.write_bytes(issued.pem)
    return path


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def snapshot(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


# --- a TLS agent on loopback ---------------------------------------------------------------

@contextlib.contextmanager
def agent(context: ssl.SSLContext) -> Iterator[tuple[int, dict[str, Any]]]:
    """Serve one TLS connection on 127.0.0.1 with ``context``, answering "ping" with "pong".

    Yields the port and the outcome the agent saw: ``client`` (the client's certificate)
    or ``error`` (why the agent refused it); read it after the block.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    outcome: dict[str, Any] = {}

    def serve() -> None:
        try:
            connection, _ = listener.accept()
            connection.settimeout(10)
            with context.wrap_socket(connection, server_side=True) as stream:
                outcome["client"] = stream.getpeercert()
                if stream.recv(4) == b"ping":
                    stream.sendall(b"pong")
        except OSError as exc:  # ssl.SSLError included
            outcome["error"] = exc

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], outcome
    finally:
        thread.join(15)
        listener.close()


def ping(context: ssl.SSLContext, port: int) -> bytes:
    """Connect to the agent by address (as the controller does) and exchange a message."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as stream:
            stream.sendall(b"ping")
            return stream.recv(4)


def refused_by_agent(client: ssl.SSLContext, agent_context: ssl.SSLContext) -> dict[str, Any]:
    """Let ``client`` try the agent; assert it got no answer; return what the agent saw."""
    with agent(agent_context) as (port, outcome):
        with pytest.raises(OSError):  # an alert or a reset, depending on the TLS version
            reply = ping(client, port)
            if reply != b"pong":
                raise ConnectionResetError("connection closed without an answer")
    return outcome


@pytest.fixture
def agent_context(settings: config.Settings, paths: store.CertPaths,
                  tmp_path: Path) -> ssl.SSLContext:
    return tls.agent_context(amphora_pem(settings, AMPHORA, tmp_path), paths.client_ca)


@pytest.fixture
def other_settings(tmp_path: Path) -> config.Settings:
    """A second installation, with CAs of its own."""
    other = load_settings(tmp_path / "other")
    store.ensure(other)
    return other


# --- generation ----------------------------------------------------------------------------

def test_first_start_generates_both_cas_and_the_controller_certificate(settings, paths):
    directory = store.certs_dir(settings)
    assert sorted(path.name for path in directory.iterdir()) == sorted([".lock", *GENERATED])
    assert mode(directory) == 0o700
    assert {path.name: mode(path) for path in directory.iterdir()} == \
        dict.fromkeys([".lock", *GENERATED], 0o600)

    server_ca = x509.load_pem_x509_certificate(paths.ca_certificate.read_bytes())
    client_ca = x509.load_pem_x509_certificate(paths.client_ca.read_bytes())
    client = x509.load_pem_x509_certificate(paths.client_cert.read_bytes())
    assert server_ca != client_ca
    assert paths.server_ca == paths.ca_certificate
    for ca in (server_ca, client_ca):
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
        assert ca.public_key().curve.name == "secp384r1"
        assert ca.not_valid_after_utc - ca.not_valid_before_utc == dt.timedelta(days=1825)
    client.verify_directly_issued_by(client_ca)
    assert client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])


def test_second_start_reuses_the_cas(settings, paths):
    before = snapshot(store.certs_dir(settings))
    assert store.ensure(settings) == paths
    assert snapshot(store.certs_dir(settings)) == before


def test_services_starting_together_agree_on_one_set_of_cas(settings):
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(store.ensure(settings)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    store.ensure(settings)  # every key still matches its certificate
    store.load_server_ca(settings)


def test_loose_certs_directory_is_tightened(settings):
    store.certs_dir(settings).mkdir(parents=True, mode=0o755)
    store.ensure(settings)
    assert mode(store.certs_dir(settings)) == 0o700


def test_missing_ca_key_is_reported_not_regenerated(settings, paths):
    paths.ca_private_key.unlink()
    certificate = paths.ca_certificate.read_bytes()
    with pytest.raises(config.ConfigError, match="server_ca.key is missing.*lbaas certs export"):
        store.ensure(settings)
    assert paths.ca_certificate.read_bytes() == certificate


def test_lost_controller_certificate_is_reissued_by_the_same_client_ca(settings, paths):
    client_ca = paths.client_ca.read_bytes()
    paths.client_cert.unlink()
    store.ensure(settings)
    assert paths.client_ca.read_bytes() == client_ca
    x509.load_pem_x509_certificate(paths.client_cert.read_bytes()).verify_directly_issued_by(
        x509.load_pem_x509_certificate(client_ca))


# --- passphrase ----------------------------------------------------------------------------

def test_passphrase_protects_the_ca_keys(tmp_path):
    settings = load_settings(tmp_path, certificates={"ca_private_key_passphrase": "s3cret"})
    paths = store.ensure(settings)
    for key in (paths.ca_private_key, paths.client_ca_key):
        assert b"ENCRYPTED PRIVATE KEY" in key.read_bytes()
    assert b"ENCRYPTED" not in paths.client_cert.read_bytes()  # the controller needs it plain
    ca = store.load_server_ca(settings)
    assert ca.certificate == x509.load_pem_x509_certificate(paths.ca_certificate.read_bytes())
    store.ensure(settings)  # the second start opens the keys again


@pytest.mark.parametrize("passphrase", ["wrong", ""])
def test_ca_key_that_the_passphrase_does_not_open_is_refused(tmp_path, passphrase):
    store.ensure(load_settings(tmp_path, certificates={"ca_private_key_passphrase": "s3cret"}))
    settings = load_settings(tmp_path, certificates={"ca_private_key_passphrase": passphrase})
    with pytest.raises(config.ConfigError, match="server_ca.key"):
        store.load_server_ca(settings)


def test_config_show_masks_the_passphrase(tmp_path):
    settings = load_settings(tmp_path, certificates={"ca_private_key_passphrase": "s3cret"})
    assert "s3cret" not in settings.to_ini()
    assert settings.certificates.ca_private_key_passphrase.get_secret_value() == "s3cret"


# --- amphora certificates ------------------------------------------------------------------

@pytest.mark.parametrize("validity", [None, 3600])
def test_amphora_certificate_names_the_amphora(tmp_path, validity):
    options = {"cert_validity_time": str(validity)} if validity else {}
    settings = load_settings(tmp_path, certificates=options)
    store.ensure(settings)
    ca = store.load_server_ca(settings)

    issued = pki.issue_amphora_certificate(ca, AMPHORA, settings.certificates.cert_validity_time)
    certificate = x509.load_pem_x509_certificate(issued.certificate)
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == AMPHORA
    assert certificate.not_valid_after_utc - certificate.not_valid_before_utc == \
        dt.timedelta(seconds=validity or 30 * 24 * 3600)
    assert issued.expires_at == certificate.not_valid_after_utc
    certificate.verify_directly_issued_by(ca.certificate)
    extensions = {ext.oid: ext for ext in certificate.extensions}
    assert {ext.value for ext in extensions.values()
            if isinstance(ext.value, x509.SubjectAlternativeName)} == \
        {x509.SubjectAlternativeName([x509.DNSName(AMPHORA)])}
    basic = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and not basic.value.ca
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert (usage.value.digital_signature, usage.value.key_encipherment,
            usage.value.data_encipherment, usage.value.key_agreement) == (True,) * 4
    assert not (usage.value.key_cert_sign or usage.value.crl_sign)
    extended = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert extended.critical
    assert set(extended.value) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    authority = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert authority.value.key_identifier == ca.certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier).value.digest
    certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert pki.load_private_key(issued.private_key, None, "issued").public_key() == \
        certificate.public_key()


def test_each_amphora_gets_its_own_key(settings, paths):
    ca = store.load_server_ca(settings)
    first, second = (pki.issue_amphora_certificate(ca, AMPHORA, 60) for _ in range(2))
    assert first.private_key != second.private_key


# --- mutual TLS ----------------------------------------------------------------------------

def test_controller_and_agent_complete_a_mutual_tls_handshake(paths, agent_context):
    controller = tls.controller_context(paths.client_cert, paths.server_ca, AMPHORA)
    with agent(agent_context) as (port, outcome):
        assert ping(controller, port) == b"pong"
    assert "error" not in outcome
    subject = dict(item for rdn in outcome["client"]["subject"] for item in rdn)
    assert subject["commonName"] == store.CONTROLLER_NAME


def test_both_sides_insist_on_tls_1_2_or_later(paths, agent_context):
    controller = tls.controller_context(paths.client_cert, paths.server_ca, AMPHORA)
    assert agent_context.minimum_version == controller.minimum_version == ssl.TLSVersion.TLSv1_2
    assert agent_context.verify_mode == controller.verify_mode == ssl.CERT_REQUIRED


def test_agent_refuses_a_client_without_a_certificate(paths, agent_context):
    anonymous = tls.AmphoraClientContext(ssl.PROTOCOL_TLS_CLIENT)
    anonymous.amphora_id = AMPHORA
    anonymous.load_verify_locations(cafile=paths.server_ca)
    outcome = refused_by_agent(anonymous, agent_context)
    assert isinstance(outcome["error"], ssl.SSLError)
    assert "client" not in outcome


def test_agent_refuses_a_client_certificate_from_another_ca(paths, agent_context,
                                                             other_settings):
    stranger = tls.controller_context(store.resolve(other_settings).client_cert,
                                      paths.server_ca, AMPHORA)
    outcome = refused_by_agent(stranger, agent_context)
    assert isinstance(outcome["error"], ssl.SSLError)


def test_amphora_certificate_cannot_pose_as_the_controller(settings, paths, agent_context,
                                                           tmp_path):
    impostor = tls.controller_context(amphora_pem(settings, OTHER_AMPHORA, tmp_path),
                                      paths.server_ca, AMPHORA)
    outcome = refused_by_agent(impostor, agent_context)
    assert isinstance(outcome["error"], ssl.SSLError)


def test_controller_refuses_an_agent_whose_cn_is_another_amphora(paths, agent_context):
    controller = tls.controller_context(paths.client_cert, paths.server_ca, OTHER_AMPHORA)
    with agent(agent_context) as (port, _):
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            ping(controller, port)


def test_controller_refuses_an_agent_signed_by_another_server_ca(paths, other_settings,
                                                                  tmp_path):
    foreign = tls.agent_context(amphora_pem(other_settings, AMPHORA, tmp_path), paths.client_ca)
    controller = tls.controller_context(paths.client_cert, paths.server_ca, AMPHORA)
    with agent(foreign) as (port, _):
        with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
            ping(controller, port)


@contextlib.contextmanager
def https_agent(context: ssl.SSLContext) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 answering every GET with 200 "ok"."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def fetch_sync(context: ssl.SSLContext, url: str) -> int:
    with httpx.Client(verify=context, timeout=10) as client:
        return client.get(url).status_code


def fetch_async(context: ssl.SSLContext, url: str) -> int:
    async def fetch() -> int:
        async with httpx.AsyncClient(verify=context, timeout=10) as client:
            return (await client.get(url)).status_code
    return asyncio.run(fetch())


@pytest.mark.parametrize("fetch", [fetch_sync, fetch_async], ids=["sync", "async"])
def test_httpx_reaches_an_agent_by_address_only_as_the_expected_amphora(paths, agent_context,
                                                                        fetch):
    with https_agent(agent_context) as port:
        url = f"https://127.0.0.1:{port}/1.0/info"
        right = tls.controller_context(paths.client_cert, paths.server_ca, AMPHORA)
        assert fetch(right, url) == 200
        wrong = tls.controller_context(paths.client_cert, paths.server_ca, OTHER_AMPHORA)
        with pytest.raises(httpx.ConnectError, match="mismatch"):
            fetch(wrong, url)


# --- operator-supplied CAs -----------------------------------------------------------------

def openssl_server_ca(directory: Path, passphrase: str) -> tuple[Path, Path]:
    """A server CA made the way openstack-ansible makes it: RSA, aes256-encrypted key."""
    key, certificate, conf = (directory / "ca_key.pem", directory / "ca.pem",
                              directory / "openssl.cnf")
    conf.write_text(
        "[req]\ndistinguished_name = dn\nx509_extensions = v3_ca\nprompt = no\n"
        "[dn]\nO = Operator\nCN = Operator Server CA\n"
        "[v3_ca]\nbasicConstraints = critical,CA:true\nkeyUsage = critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier = hash\n")
    subprocess.run(["openssl", "genrsa", "-aes256", "-passout", f"pass:{passphrase}",
                    "-out", str(key), "2048"], check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-x509", "-new", "-key", str(key), "-passin",
                    f"pass:{passphrase}", "-config", str(conf), "-days", "1825",
                    "-out", str(certificate)], check=True, capture_output=True)
    return certificate, key


def operator_client_side(directory: Path, ca_name: str = "Operator Client CA") -> tuple[Path, Path]:
    client_ca = pki.create_ca(ca_name)
    ca_path, cert_path = directory / f"{ca_name}.pem", directory / "client.pem"
    ca_path.write_bytes(pki.certificate_pem(client_ca.certificate))
    cert_path.write_bytes(pki.issue_client_certificate(client_ca, "operator controller").pem)
    return ca_path, cert_path


@pytest.fixture
def operator_files(tmp_path: Path) -> dict[str, Path]:
    directory = tmp_path / "operator"
    directory.mkdir()
    ca_certificate, ca_key = openssl_server_ca(directory, "op-pass")
    client_ca, client_cert = operator_client_side(directory)
    return {"ca_certificate": ca_certificate, "ca_private_key": ca_key,
            "client_ca": client_ca, "client_cert": client_cert}


def operator_settings(tmp_path: Path, files: dict[str, Path]) -> config.Settings:
    return load_settings(
        tmp_path / "state",
        certificates={"ca_certificate": str(files["ca_certificate"]),
                      "ca_private_key": str(files["ca_private_key"]),
                      "ca_private_key_passphrase": "op-pass"},
        controller_worker={"client_ca": str(files["client_ca"])},
        haproxy_amphora={"client_cert": str(files["client_cert"])})


def test_operator_supplied_cas_are_used_and_never_overwritten(tmp_path, operator_files):
    settings = operator_settings(tmp_path, operator_files)
    directory = operator_files["ca_certificate"].parent
    before = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in directory.iterdir()}

    paths = store.ensure(settings)
    store.ensure(settings)

    assert (paths.ca_certificate, paths.ca_private_key, paths.server_ca, paths.client_ca,
            paths.client_cert, paths.client_ca_key) == (
        operator_files["ca_certificate"], operator_files["ca_private_key"],
        operator_files["ca_certificate"], operator_files["client_ca"],
        operator_files["client_cert"], None)
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns)
            for path in directory.iterdir()} == before
    assert [path.name for path in store.certs_dir(settings).iterdir()] == [".lock"]

    operator_ca = x509.load_pem_x509_certificate(operator_files["ca_certificate"].read_bytes())
    agent_pem = amphora_pem(settings, AMPHORA, tmp_path)
    x509.load_pem_x509_certificate(agent_pem.read_bytes()).verify_directly_issued_by(operator_ca)
    controller = tls.controller_context(paths.client_cert, paths.server_ca, AMPHORA)
    with agent(tls.agent_context(agent_pem, paths.client_ca)) as (port, _):
        assert ping(controller, port) == b"pong"


def test_one_side_supplied_the_other_generated(tmp_path, operator_files):
    settings = load_settings(tmp_path / "state", controller_worker={
        "client_ca": str(operator_files["client_ca"])}, haproxy_amphora={
        "client_cert": str(operator_files["client_cert"])})
    paths = store.ensure(settings)
    assert not paths.server_supplied and paths.client_supplied
    assert sorted(path.name for path in store.certs_dir(settings).iterdir()) == \
        [".lock", "server_ca.key", "server_ca.pem"]


@pytest.mark.parametrize("options, message", [
    ({"certificates": {"ca_certificate": "/x/ca.pem"}},
     r"ca_certificate set without \[certificates\] ca_private_key"),
    ({"haproxy_amphora": {"client_cert": "/x/client.pem"}},
     r"client_cert set without \[controller_worker\] client_ca"),
    ({"haproxy_amphora": {"server_ca": "/x/server_ca.pem"}},
     r"server_ca is set but \[certificates\] ca_certificate is not"),
])
def test_half_supplied_material_is_refused(tmp_path, options, message):
    with pytest.raises(config.ConfigError, match=message):
        store.ensure(load_settings(tmp_path, **options))


def test_supplied_controller_certificate_from_another_ca_is_refused(tmp_path, operator_files):
    other_ca, _ = operator_client_side(tmp_path, "Unrelated CA")
    settings = load_settings(tmp_path / "state", controller_worker={"client_ca": str(other_ca)},
                             haproxy_amphora={"client_cert": str(operator_files["client_cert"])})
    with pytest.raises(config.ConfigError, match="not signed by the client CA"):
        store.ensure(settings)


def test_server_ca_bundle_without_the_signing_ca_is_refused(tmp_path, operator_files):
    settings = operator_settings(tmp_path, operator_files).model_copy(deep=True)
    settings.haproxy_amphora.server_ca = operator_files["client_ca"]
    with pytest.raises(config.ConfigError, match="does not contain"):
        store.ensure(settings)


# --- command line --------------------------------------------------------------------------

def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "lbaas.conf"
    path.write_text(f"[DEFAULT]\nstate_path = {tmp_path / 'state'}\n")
    return path


def test_export_copies_the_cas_with_safe_modes(config_file, tmp_path):
    settings = config.load(config_file, environ={})
    paths = store.ensure(settings)
    backup = tmp_path / "backup" / "lbaas"

    result = run("certs", "export", str(backup), "--config-file", str(config_file))

    assert result.exit_code == 0, result.output
    assert mode(backup) == 0o700
    assert sorted(path.name for path in backup.iterdir()) == sorted(GENERATED)
    assert all(mode(path) == 0o600 for path in backup.iterdir())
    assert (backup / "server_ca.key").read_bytes() == paths.ca_private_key.read_bytes()
    assert (backup / "client_ca.pem").read_bytes() == paths.client_ca.read_bytes()

    again = run("certs", "export", str(backup), "--config-file", str(config_file))
    assert again.exit_code == 2
    assert "already exist" in again.output


def test_export_before_first_start_says_what_is_missing(config_file, tmp_path):
    result = run("certs", "export", str(tmp_path / "backup"), "--config-file", str(config_file))
    assert result.exit_code == 2
    assert "missing" in result.output
    assert not (tmp_path / "backup").exists()


def test_show_lists_paths_and_expiry(config_file):
    settings = config.load(config_file, environ={})
    before = json.loads(run("certs", "show", "-f", "json", "--config-file",
                            str(config_file)).output)
    assert {row["name"]: row["exists"] for row in before} == dict.fromkeys(GENERATED, False)

    paths = store.ensure(settings)
    result = run("certs", "show", "-f", "json", "--config-file", str(config_file))
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["server_ca.pem"]["path"] == str(paths.ca_certificate)
    assert rows["server_ca.pem"]["option"] == "[certificates] ca_certificate"
    assert all(row["exists"] and row["source"] == "generated" for row in rows.values())
    expires = dt.datetime.strptime(rows["client_ca.pem"]["expires"], "%Y-%m-%dT%H:%M:%SZ")
    expected = x509.load_pem_x509_certificate(paths.client_ca.read_bytes()).not_valid_after_utc
    assert expires == expected.replace(tzinfo=None, microsecond=0)
    assert rows["server_ca.key"]["expires"] is None

    table = run("certs", "show", "--config-file", str(config_file))
    assert table.exit_code == 0
    assert "client_ca.pem" in table.output



# --- the amphora's heartbeat key --------------------------------------------------------------

def test_each_amphora_gets_its_own_heartbeat_key_and_never_the_secret(settings):
    """Derived by the controller; the compute driver and the amphora see only that key."""
    driver = LocalCertificateDriver(settings, "controller-secret")
    first, second = (driver.amphora_identity(amphora_id).files
                     for amphora_id in (AMPHORA, "00000000-0000-4000-8000-0000000000bb"))
    assert first[HEARTBEAT_KEY] == amphora_key("controller-secret", AMPHORA).encode()
    assert first[HEARTBEAT_KEY] != second[HEARTBEAT_KEY]
    assert all(b"controller-secret" not in content for files in (first, second)
               for content in files.values())
