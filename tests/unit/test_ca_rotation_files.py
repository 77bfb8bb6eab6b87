"""The files' side of a CA rotation (lbaas.certs.rotation): at every step the signing CA
is the bundle's certificate matching the key, a service starting mid-rotation accepts
the files, an interrupted step is finished by running it again, and only generated CAs
are rotated."""
from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from lbaas import config
from lbaas.certs import pki, rotation, store

PASSPHRASE = "ca secret"


@pytest.fixture
def settings(tmp_path: Path) -> config.Settings:
    loaded = config.load(environ={
        "LBAAS__DEFAULT__state_path": str(tmp_path),
        "LBAAS__certificates__ca_private_key_passphrase": PASSPHRASE})
    store.ensure(loaded)
    return loaded


def _certificates(path: Path) -> list[x509.Certificate]:
    return pki.load_certificates(path.read_bytes(), str(path))


def test_the_server_ca_is_trusted_beside_the_old_one_signs_then_stands_alone(settings):
    paths = store.resolve(settings)
    [old] = _certificates(paths.ca_certificate)
    rotation.begin(settings, "server")
    first, new = _certificates(paths.ca_certificate)
    assert first == old and new != old
    assert store.load_server_ca(settings).certificate == new  # the new key is in place
    issued = pki.issue_amphora_certificate(store.load_server_ca(settings), "a" * 36, 3600)
    assert pki.issued_by_any(pki.load_certificates(issued.certificate, "issued")[0], [new])
    store.ensure(settings)  # a service starting now accepts the files
    assert sorted(p.name.split(".retired-")[0] for p in paths.ca_certificate.parent.glob(
        "*.retired-*")) == ["server_ca.key", "server_ca.pem"]
    assert not list(paths.ca_certificate.parent.glob("*.next.key"))

    rotation.begin(settings, "server")  # run again: nothing more changes
    assert _certificates(paths.ca_certificate) == [old, new]
    rotation.finish(settings, "server")
    assert _certificates(paths.ca_certificate) == [new]
    store.ensure(settings)


def test_the_client_ca_switches_only_when_told_and_reissues_the_controllers_certificate(
        settings):
    paths = store.resolve(settings)
    [old] = _certificates(paths.client_ca)
    before = paths.client_cert.read_bytes()
    both = rotation.begin(settings, "client")
    assert pki.load_certificates(both, "bundle")[0] == old
    assert paths.client_cert.read_bytes() == before  # the old CA still signs: agents not told yet
    store.ensure(settings)
    rotation.switch_client(settings)
    new = _certificates(paths.client_ca)[1]
    controller = _certificates(paths.client_cert)[0]
    assert pki.issued_by_any(controller, [new]) and not pki.issued_by_any(controller, [old])
    rotation.switch_client(settings)  # again: the certificate is kept
    assert _certificates(paths.client_cert)[0] == controller
    store.ensure(settings)
    assert rotation.finishing_bundle(settings, "client") == pki.certificate_pem(new)
    rotation.finish(settings, "client")
    assert _certificates(paths.client_ca) == [new]
    store.ensure(settings)


def test_a_start_interrupted_after_the_bundle_is_finished_by_running_it_again(settings):
    paths = store.resolve(settings)
    rotation.begin(settings, "server")
    new_key = paths.ca_private_key.read_bytes()
    # As if the process died after writing the bundle, before putting the new key in place.
    retired_key = next(paths.ca_private_key.parent.glob("server_ca.key.retired-*"))
    store.write_private(paths.ca_private_key.with_name("server_ca.next.key"), new_key)
    store.write_private(paths.ca_private_key, retired_key.read_bytes())
    assert store.load_server_ca(settings).certificate == _certificates(paths.ca_certificate)[0]
    rotation.begin(settings, "server")
    assert store.load_server_ca(settings).certificate == _certificates(paths.ca_certificate)[1]


def test_a_supplied_ca_is_not_rotated(settings, tmp_path):
    paths = store.resolve(settings)
    supplied = config.load(environ={
        "LBAAS__DEFAULT__state_path": str(tmp_path / "other"),
        "LBAAS__certificates__ca_certificate": str(paths.ca_certificate),
        "LBAAS__certificates__ca_private_key": str(paths.ca_private_key),
        "LBAAS__certificates__ca_private_key_passphrase": PASSPHRASE})
    with pytest.raises(rotation.RotationError, match="rotate it yourself"):
        rotation.begin(supplied, "server")


def test_a_passphrase_that_does_not_open_the_key_changes_nothing(settings, tmp_path):
    paths = store.resolve(settings)
    before = {path: path.read_bytes() for path in paths.ca_certificate.parent.iterdir()
              if path.is_file()}
    wrong = config.load(environ={
        "LBAAS__DEFAULT__state_path": str(settings.DEFAULT.state_path),
        "LBAAS__certificates__ca_private_key_passphrase": "not the CA secret"})
    for which in ("server", "client"):
        with pytest.raises(config.ConfigError, match="server_ca.key|client_ca.key"):
            rotation.begin(wrong, which)
    with pytest.raises(config.ConfigError):
        rotation.switch_client(wrong)
    after = {path: path.read_bytes() for path in paths.ca_certificate.parent.iterdir()
             if path.is_file()}
    assert after == before


def test_nothing_to_rotate_before_the_services_made_the_cas(tmp_path):
    fresh = config.load(environ={"LBAAS__DEFAULT__state_path": str(tmp_path / "fresh")})
    with pytest.raises(rotation.RotationError, match="no generated server CA in .* yet"):
        rotation.begin(fresh, "server")


def test_a_client_switch_stopped_before_the_key_moved_leaves_usable_files(settings):
    paths = store.resolve(settings)
    rotation.begin(settings, "client")
    following = paths.client_ca_key.with_name("client_ca.next.key")
    saved = following.read_bytes()
    rotation.switch_client(settings)
    # As if it stopped after writing the controller's certificate, before the key moved.
    store.write_private(following, saved)
    retired_key = next(paths.client_ca_key.parent.glob("client_ca.key.retired-*"))
    store.write_private(paths.client_ca_key, retired_key.read_bytes())
    store.ensure(settings)  # a service starting now is fine: agents accept both CAs
    rotation.switch_client(settings)
    assert not following.exists()
    store.ensure(settings)
