"""The agent's ``/info`` names the haproxy it runs without starting haproxy for each
call: the version is asked again only when the binary changed, once for every agent of
the process (the host agent serves many amphorae)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from lbaas.amphora.agent.config import AgentConfig
from lbaas.amphora.agent.server import Agent

AMPHORA_ID = "5b6d4c3e-0f1a-4e2b-9c8d-7a6b5c4d3e2f"


def _version(agent: Agent) -> str:
    status, answer, _ = agent.dispatch("GET", "/1.0/info", b"")
    assert status == 200
    return answer["haproxy_version"]


def _agent(tmp_path: Path, binary: Path, name: str) -> Agent:
    return Agent(AgentConfig(amphora_id=AMPHORA_ID, base_path=tmp_path / name,
                             bind_host="127.0.0.1", bind_port=0,
                             agent_server_cert=tmp_path / "server.pem",
                             agent_server_ca=tmp_path / "client_ca.pem",
                             haproxy_cmd=str(binary)))


def test_info_asks_haproxy_its_version_again_only_when_the_binary_changed(tmp_path: Path):
    binary = tmp_path / "haproxy"
    shutil.copy2(shutil.which("haproxy") or "/usr/sbin/haproxy", binary)
    agent = _agent(tmp_path, binary, "first")
    version = _version(agent)
    assert version.startswith("2."), version
    binary.chmod(0o644)  # no longer runnable: a second start would fail
    assert _version(agent) == version
    assert _version(_agent(tmp_path, binary, "second")) == version  # another amphora
    os.utime(binary, ns=(0, 1))  # the binary changed: asked again (and it cannot run)
    assert _version(agent) == "unknown"
    binary.unlink()
    assert _version(agent) == "unknown"
