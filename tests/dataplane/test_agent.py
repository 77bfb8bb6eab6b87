"""The amphora agent on its own: rejected configurations, hitless reloads, its command."""
from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from lbaas.amphora.agent.config import AgentConfig
from lbaas.amphora.agent.haproxy import HaproxyPaths
from lbaas.certs import pki, tls

pytestmark = pytest.mark.root


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


AGENT_COMMANDS = {"module": [sys.executable, "-m", "lbaas.amphora.agent"],
                  "cli": [str(Path(sys.executable).with_name("lbaas")), "amphora-agent"]}


@pytest.fixture
def agent(tmp_path: Path, request):
    """An agent on loopback with its own certificates, and a controller client for it;
    started as ``python -m lbaas.amphora.agent`` unless the test asks for ``cli``."""
    command = AGENT_COMMANDS[getattr(request, "param", "module")]
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
    process = subprocess.Popen([*command, "--config-file", str(tmp_path / "agent.conf")])
    context = tls.controller_context(tmp_path / "controller.pem", tmp_path / "server_ca.pem",
                                     amphora_id)
    client = httpx.Client(base_url=f"https://127.0.0.1:{config.bind_port}", verify=context)
    try:
        # `lbaas amphora-agent` imports the whole service first: seconds on a busy host.
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
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
    stats_socket = HaproxyPaths(Path("."), lb_id).stats_socket
    return (f"global\n    stats socket {stats_socket} level admin expose-fd listeners\n"
            "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n"
            "    timeout server 5s\n"
            f"frontend f\n    bind 127.0.0.1:{listen}\n    default_backend b\n"
            f"backend b\n    server s 127.0.0.1:{backend}\n")


def test_a_plugged_interface_gets_exactly_its_addresses(agent):
    """An interface found by its MAC gets the port's addresses (an old one goes), its MTU
    and up, in one `ip -batch`; a MAC that no interface has is a 404, an MTU, address or
    body it cannot read a 400. The interface is one
    end of a veth pair of the test's own (this kernel has no dummy devices), with TEST-NET-2
    addresses."""
    _, client = agent
    name, mac = f"lbt-d{uuid.uuid4().hex[:6]}", "02:00:5e:%02x:%02x:%02x" % tuple(uuid.uuid4().bytes[:3])

    def plug(address: str, mac_address: object = mac, mtu: object = 1400) -> httpx.Response:
        return client.post("/1.0/plug/network", json={
            "mac_address": mac_address, "mtu": mtu,
            "fixed_ips": [{"ip_address": address, "subnet_cidr": "198.51.100.0/24"}]})

    def shown() -> tuple[list[str], int, bool]:
        (link,) = json.loads(subprocess.run(["ip", "-j", "addr", "show", "dev", name],
                                            check=True, capture_output=True, text=True).stdout)
        return ([f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"]], link["mtu"],
                "UP" in link["flags"])

    subprocess.run(["ip", "link", "add", name, "address", mac, "type", "veth", "peer", "name",
                    f"{name}p"], check=True)
    try:
        assert plug("198.51.100.10").status_code == 202
        assert shown() == (["198.51.100.10/24"], 1400, True)
        assert plug("198.51.100.11").status_code == 202
        assert shown() == (["198.51.100.11/24"], 1400, True)
        missing = plug("198.51.100.12", mac_address="02:00:5e:ff:ff:ff")
        assert missing.status_code == 404
        assert missing.json()["message"] == "No suitable network interface found"
        for mtu in ("1400\nlink set dev lo down", 10**6, True):  # the MTU goes into a script
            refused = plug("198.51.100.13", mtu=mtu)
            assert refused.status_code == 400 and "is not an MTU" in refused.json()["details"]
        # Whatever it cannot read is a 400 too, and changes nothing.
        vip = {"subnet_cidr": "198.51.100.0/24", "mac_address": mac, "vrrp_ip": "198.51.100.14"}
        for response in (
                plug("198.51.100.13\nlink set dev lo down"),
                plug("198.51.100.13", mac_address=None),
                client.post("/1.0/plug/network", json={"fixed_ips": []}),
                client.post("/1.0/plug/network", json=[mac]),
                client.post("/1.0/plug/network", content=b"{not json"),
                client.post("/1.0/plug/vip/198.51.100.300", json=vip),
                client.post("/1.0/plug/vip/198.51.100.15", json={**vip, "gateway": "not an ip"}),
                client.post("/1.0/plug/vip/198.51.100.15", json={**vip, "subnet_cidr": "x"})):
            assert response.status_code == 400, response.text
            assert response.json()["message"] == "Invalid request"
        assert shown() == (["198.51.100.11/24"], 1400, True)
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


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


@pytest.mark.parametrize("agent", ["cli"], indirect=True)
def test_lbaas_amphora_agent_command_serves_the_agent_api(agent):
    amphora_id, client = agent
    info = client.get("/1.0/info")
    assert info.status_code == 200
    assert info.json()["amphora_id"] == amphora_id


def test_lbaas_amphora_agent_command_refuses_a_missing_configuration(tmp_path):
    result = subprocess.run([*AGENT_COMMANDS["cli"], "--config-file", str(tmp_path / "none.conf")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "none.conf" in result.stderr and "not found" in result.stderr


@pytest.fixture
def silent_backend():
    """A backend that accepts connections and never answers: a request to it keeps an
    old haproxy busy (draining) after a reload."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept_until_shut_down() -> None:
        with contextlib.suppress(OSError):  # shutdown() wakes accept() with an error
            while True:
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept_until_shut_down, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        thread.join()
        listener.close()
        for connection in accepted:
            connection.close()


def _alive(pid: int) -> bool:
    """A live process (a zombie has an empty command line)."""
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False


def test_reload_hands_the_listeners_over_and_stop_ends_draining_processes(
        agent, backend, silent_backend, tmp_path):
    amphora_id, client = agent
    lb_id, listen, held = str(uuid.uuid4()), _free_port(), _free_port()
    paths = HaproxyPaths(tmp_path / "amphora", lb_id)
    config = _config(lb_id, listen, backend) + (
        f"listen held\n    bind 127.0.0.1:{held}\n    timeout server 60s\n"
        f"    server s 127.0.0.1:{silent_backend}\n")
    upload = f"/1.0/loadbalancer/{amphora_id}/{lb_id}/haproxy"
    assert client.put(upload, content=config).status_code == 202
    assert client.put(f"/1.0/loadbalancer/{lb_id}/reload").status_code == 202
    first = int(paths.pid.read_text())
    with socket.create_connection(("127.0.0.1", held)) as waiting:
        waiting.sendall(b"GET / HTTP/1.1\r\nHost: held\r\n\r\n")  # answered never: first drains
        assert client.put(upload, content=config.replace("timeout client 5s", "timeout client 6s")
                          ).status_code == 202
        # Concurrent reloads take turns; each leaves exactly one process listening.
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda _: client.put(f"/1.0/loadbalancer/{lb_id}/start"),
                                     range(4)))
        assert [response.status_code for response in statuses] == [202] * 4
        current = int(paths.pid.read_text())
        assert current != first and _alive(first) and _alive(current)
        answers = client.put(f"/1.0/loadbalancer/{lb_id}/runtime", json=["show info"]).json()
        assert f"\nPid: {current}\n" in answers["answers"][0]
        assert httpx.get(f"http://127.0.0.1:{listen}/").text == "served"
        assert client.delete(f"/1.0/listeners/{lb_id}").status_code == 200
        assert not _alive(first) and not _alive(current)
