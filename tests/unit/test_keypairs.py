"""``lbaas keypair create / list / show / delete``: public keys checked and fingerprinted as
ssh-keygen does, a generated private key printed once and never stored, and a missing
keypair failing an amphora build with a line saying what to do."""
from __future__ import annotations

import json
import logging
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from lbaas.cli import app
from lbaas.db import keypairs
from lbaas.db.models import Keypair
from tests.helpers import NOOP_DRIVERS, PROJECT, wait_for
from tests.helpers.api import SUBNET, create_lb


@pytest.fixture
def keypair_cli(services):
    env = {**NOOP_DRIVERS, "LBAAS__DEFAULT__state_path": str(services.settings.DEFAULT.state_path)}

    def run(*args: str):
        return CliRunner().invoke(app, ["keypair", *args], env=env)
    return run


def test_a_generated_keypair_prints_its_private_key_once_and_stores_the_public_one(
        keypair_cli, services, tmp_path):
    created = keypair_cli("create", "ops")
    assert created.exit_code == 0, created.output
    assert created.output.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    private = tmp_path / "id_ops"
    private.write_text(created.output)
    private.chmod(0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(private)], capture_output=True,
                             text=True, check=True).stdout.split()[:2]
    with services.db.read() as session:
        stored = session.get(Keypair, "ops")
        assert stored.public_key.split()[:2] == derived
        assert "PRIVATE" not in stored.public_key
    listed = json.loads(keypair_cli("list", "-f", "json").output)
    assert [(row["Name"], row["Fingerprint"]) for row in listed] == [("ops", stored.fingerprint)]


def test_a_registered_public_key_has_ssh_keygens_fingerprint(keypair_cli, tmp_path):
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me@laptop", "-f",
                    str(key)], check=True)
    expected = subprocess.run(["ssh-keygen", "-l", "-f", f"{key}.pub"], capture_output=True,
                              text=True, check=True).stdout.split()[1]
    result = keypair_cli("create", "laptop", "--public-key", f"{key}.pub")
    assert result.exit_code == 0, result.output
    assert result.output == f"keypair laptop registered ({expected})\n"
    shown = json.loads(keypair_cli("show", "laptop", "-f", "json").output)
    assert shown["fingerprint"] == expected and shown["public_key"].endswith(" me@laptop")
    assert keypair_cli("create", "laptop", "--public-key", f"{key}.pub").output == \
        "error: keypair laptop already exists\n"


def test_bad_keys_and_names_are_refused_in_one_line(keypair_cli, tmp_path):
    garbage = tmp_path / "garbage.pub"
    garbage.write_text("ssh-ed25519 not-base64!\n")
    result = keypair_cli("create", "bad", "--public-key", str(garbage))
    assert result.exit_code == 1 and result.output.startswith("error: not an OpenSSH public key")
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    (tmp_path / "weak.pub").write_bytes(weak.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH))
    assert keypair_cli("create", "weak", "--public-key", str(tmp_path / "weak.pub")).output == \
        "error: an RSA key of 1024 bits is too weak; use 2048 or more\n"
    assert keypair_cli("create", "x/y").output.startswith("error: invalid keypair name 'x/y'")
    assert keypair_cli("create", "gone", "--public-key", str(tmp_path / "none.pub")).output == \
        f"error: cannot read {tmp_path / 'none.pub'}: No such file or directory\n"
    assert keypair_cli("list", "-f", "json").output.strip() == "[]"


def test_delete_and_a_missing_keypair(keypair_cli, services):
    keypairs.create(services.db, "old", keypairs.generate()[1])
    assert keypair_cli("delete", "old").output == "keypair old deleted\n"
    missing = keypair_cli("show", "old")
    assert (missing.exit_code, missing.output) == (
        1, "error: no keypair old (lbaas keypair list shows them; lbaas keypair create old "
           "makes one)\n")


def test_amphorae_get_the_configured_key_and_a_missing_one_fails_the_build(
        client, services, drivers, caplog):
    services.settings.controller_worker.amp_ssh_key_name = "ops"
    caplog.set_level(logging.INFO)
    failed = client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "vip_subnet_id": SUBNET, "project_id": PROJECT}}).json()["loadbalancer"]
    wait_for(lambda: client.get(f"/v2/lbaas/loadbalancers/{failed['id']}").json()["loadbalancer"],
             "provisioning_status", "ERROR")
    assert any("no keypair ops (lbaas keypair list shows them" in record.getMessage()
               for record in caplog.records)

    _, public = keypairs.generate()
    keypairs.create(services.db, "ops", public)
    built: dict[str, bytes] = {}
    original = drivers.compute.build

    def recording(amphora_id, **kwargs):
        built.update(kwargs["files"])
        return original(amphora_id, **kwargs)
    drivers.compute.build = recording  # type: ignore[method-assign]
    create_lb(client)
    assert built["authorized_keys"] == (public + "\n").encode()


def test_what_is_not_one_public_key_is_refused_in_one_line(keypair_cli, services, tmp_path):
    private, public = keypairs.generate()
    cases = {
        "private": (private, "error: this is a private key (or PEM): give the public key, the "
                             ".pub file"),
        "two": (f"{public}\n{keypairs.generate()[1]}\n",
                "error: give one public key (one line); this holds 2 lines"),
        "options": (f'from="10.0.0.1" {public}', "error: not an OpenSSH public key"),
        "cert": ("ssh-ed25519-cert-v01@openssh.com AAAA me", "error: this is an ssh "
                 "certificate: give the public key it certifies"),
    }
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text)
        result = keypair_cli("create", name, "--public-key", str(tmp_path / name))
        assert result.exit_code == 1 and result.output.startswith(expected), (name, result.output)
    assert keypairs.listed(services.db) == []  # nothing half-registered
    (tmp_path / "binary").write_bytes(b"\x94\xff\x00")
    assert keypair_cli("create", "b", "--public-key", str(tmp_path / "binary")).output == \
        f"error: {tmp_path / 'binary'} is not text: give the .pub file of an OpenSSH key\n"
    for bad in ("foo\n", " ops", ""):
        assert keypair_cli("create", bad).output.startswith("error: invalid keypair name")
    (tmp_path / "spaced.pub").write_text(public.split()[0] + " " + public.split()[1]
                                         + " héllo wörld ☃\n")
    assert keypair_cli("create", "spaced", "--public-key", str(tmp_path / "spaced.pub")) \
        .exit_code == 0
    assert keypairs.get(services.db, "spaced").public_key.endswith(" héllo wörld ☃")


def test_the_configured_keypair_is_deleted_only_with_force(services):
    keypairs.create(services.db, "ops", keypairs.generate()[1])
    env = {**NOOP_DRIVERS, "LBAAS__DEFAULT__state_path": str(services.settings.DEFAULT.state_path),
           "LBAAS__controller_worker__amp_ssh_key_name": "ops"}
    refused = CliRunner().invoke(app, ["keypair", "delete", "ops"], env=env)
    assert refused.exit_code == 1 and "amp_ssh_key_name names" in refused.output
    assert CliRunner().invoke(app, ["keypair", "delete", "ops", "--force"], env=env) \
        .output == "keypair ops deleted\n"
