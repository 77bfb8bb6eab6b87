"""The agent's routes for CA rotation and draining refuse what they cannot use, with a
4xx and the reason, and change nothing then."""
from __future__ import annotations

from pathlib import Path

import pytest

from lbaas import config
from lbaas.amphora.agent.config import AgentConfig
from lbaas.amphora.agent.server import Agent, HttpError
from lbaas.certs import pki, store

AMPHORA_ID = "5b6d4c3e-0f1a-4e2b-9c8d-7a6b5c4d3e2f"


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    settings = config.load(environ={"LBAAS__DEFAULT__state_path": str(tmp_path)})
    paths = store.ensure(settings)
    (tmp_path / "client_ca.pem").write_bytes(paths.client_ca.read_bytes())
    issued = pki.issue_amphora_certificate(store.load_server_ca(settings), AMPHORA_ID, 3600)
    (tmp_path / "server.pem").write_bytes(issued.pem)
    return Agent(AgentConfig(amphora_id=AMPHORA_ID, base_path=tmp_path / "amphora",
                             bind_host="127.0.0.1", bind_port=0,
                             agent_server_cert=tmp_path / "server.pem",
                             agent_server_ca=tmp_path / "client_ca.pem"))


def _refusal(agent: Agent, path: str, body: bytes) -> tuple[int, str]:
    with pytest.raises(HttpError) as refused:
        agent.dispatch("PUT", path, body)
    return refused.value.status, refused.value.details


def test_a_client_ca_bundle_replaces_the_old_one_and_a_bad_one_is_refused(agent, tmp_path):
    before = (tmp_path / "client_ca.pem").read_bytes()
    key = pki.private_key_pem(pki.new_key())
    assert _refusal(agent, "/1.0/client_ca", before + key) == (
        400, "expected PEM CA certificates and no private key")
    assert _refusal(agent, "/1.0/client_ca", b"-----BEGIN CERTIFICATE-----\nxx\n")[0] == 400
    assert (tmp_path / "client_ca.pem").read_bytes() == before
    bundle = before + pki.certificate_pem(pki.create_ca("next client CA").certificate)
    assert agent.dispatch("PUT", "/1.0/client_ca", bundle)[0] == 202
    assert (tmp_path / "client_ca.pem").read_bytes() == bundle


def test_a_drain_needs_addresses(agent):
    assert _refusal(agent, "/1.0/drain", b"{}") == (400, "'addresses'")
    assert _refusal(agent, "/1.0/drain", b'{"addresses": ["not an address"]}')[0] == 400
