"""The amphora agent on its own: a rejected configuration leaves the old one serving."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from lbaas.amphora.agent.config import AgentConfig
from lbaas.certs import pki, tls

pytestmark = pytest.mark.root


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def agent(tmp_path: Path):
    """An agent on loopback with its own certificates, and a controller client for it."""
    amphora_id = str(uuid.uuid4())
    server_ca, client_ca = pki.create_ca("server-ca"), pki.create_ca("client-ca")
    (tmp_path / "server.pem").write_bytes(pki.issue_amphora_certificate(server_ca, amphora_id, 3600).pem)
    (tmp_path / "client_ca.pem").write_bytes(pki.certificate_pem(client_ca.certificate))
    (tmp_path / "controller.pem").write_bytes(pki.issue_client_certificate(client_ca, "controller").pem)
    (tmp_path / "server_ca.pem").write_bytes(pki.certificate_pem(server_ca.certificate))
    config = AgentConfig(amphora_id=amphora_id, base_path=tmp_path / "amphora",
                         bind_host="127.0.0.1", bind_port=_free_port(),
                         agent_server_cert=tmp_path / "server.pem",
                         agent_server_ca=tmp_path / "client_ca.pem")
    config.write(tmp_path / "agent.conf")
    process = subprocess.Popen([sys.executable, "-m", "lbaas.amphora.agent", "--config-file",
                                str(tmp_path / "agent.conf")])
    context = tls.controller_context(tmp_path / "controller.pem", tmp_path / "server_ca.pem",
                                     amphora_id)
    client = httpx.Client(base_url=f"https://127.0.0.1:{config.bind_port}", verify=context)
    try:
        for _ in range(100):
            try:
                client.get("/")
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield amphora_id, client
    finally:
        lb_dirs = list(config.base_path.glob("*/")) if config.base_path.exists() else []
        for lb_dir in lb_dirs:
            client.delete(f"/1.0/listeners/{lb_dir.name}")
        client.close()
        process.terminate()
        process.wait()


@pytest.fixture
def backend():
    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"served")

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def _config(lb_id: str, listen: int, backend: int) -> str:
    return (f"global\n    stats socket abns@lbaas-{lb_id} level admin expose-fd listeners\n"
            "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n"
            "    timeout server 5s\n"
            f"frontend f\n    bind 127.0.0.1:{listen}\n    default_backend b\n"
            f"backend b\n    server s 127.0.0.1:{backend}\n")


def test_rejected_configuration_leaves_the_old_one_serving(agent, backend):
    amphora_id, client = agent
    lb_id, listen = str(uuid.uuid4()), _free_port()
    path = f"/1.0/loadbalancer/{amphora_id}/{lb_id}/haproxy"
    assert client.put(path, content=_config(lb_id, listen, backend)).status_code == 202
    assert client.put(f"/1.0/loadbalancer/{lb_id}/reload").status_code == 202
    assert httpx.get(f"http://127.0.0.1:{listen}/").text == "served"

    rejected = client.put(path, content="frontend broken\n    bind nowhere\n")
    assert rejected.status_code == 400
    assert "ALERT" in rejected.json()["details"]
    assert client.get(f"/1.0/loadbalancer/{lb_id}/haproxy").text == _config(lb_id, listen, backend)
    assert httpx.get(f"http://127.0.0.1:{listen}/").text == "served"


def test_agent_refuses_a_configuration_meant_for_another_amphora(agent, backend):
    _, client = agent
    lb_id = str(uuid.uuid4())
    response = client.put(f"/1.0/loadbalancer/{uuid.uuid4()}/{lb_id}/haproxy",
                          content=_config(lb_id, _free_port(), backend))
    assert response.status_code == 400
