"""``lbaas compute-agent`` refuses to start on settings it cannot serve, saying what to do."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lbaas import config
from lbaas.certs import store, tls
from lbaas.cli import app

pytestmark = pytest.mark.root


def start(tmp_path, **options: str) -> tuple[int, str]:
    """The exit code and the output (its line wrapping undone)."""
    environ = {"LBAAS__DEFAULT__state_path": str(tmp_path / "state"),
               **{f"LBAAS__{key.replace('.', '__')}": value for key, value in options.items()}}
    result = CliRunner().invoke(app, ["compute-agent", "--config-file", "/dev/null"], env=environ)
    return result.exit_code, "".join(result.output.splitlines())


def test_it_needs_an_address_and_its_certificate(tmp_path):
    code, output = start(tmp_path, **{"DEFAULT.host": "host-b"})
    assert code == 2 and "local_ip" in output
    host_b = {"DEFAULT.host": "host-b", "compute_agent.local_ip": "10.9.9.9"}
    code, output = start(tmp_path, **host_b)
    assert code == 2 and "run `lbaas certs issue-host host-b DIR` on a controller" in output


def test_it_refuses_another_hosts_certificate(tmp_path):
    controller = config.load(environ={"LBAAS__DEFAULT__state_path": str(tmp_path / "ctl")})
    store.issue_host(controller, tls.compute_agent_identity("host-c"), tmp_path / "certs")
    code, output = start(tmp_path, **{
        "DEFAULT.host": "host-b", "compute_agent.local_ip": "10.9.9.9",
        "compute_agent.server_cert": str(tmp_path / "certs/server.pem"),
        "compute_agent.client_ca": str(tmp_path / "certs/client_ca.pem")})
    assert code == 2 and "compute-host-c, not of this host (compute-host-b" in output


def test_a_host_cannot_be_named_like_an_amphora(tmp_path):
    code, output = start(tmp_path, **{"DEFAULT.host": "2f4c1b7e-8a0d-4e51-9b6a-1c2d3e4f5a6b",
                                      "compute_agent.local_ip": "10.9.9.9"})
    assert code == 2 and "cannot be named like a UUID" in output
