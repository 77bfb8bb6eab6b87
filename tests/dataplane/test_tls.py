"""End to end: TLS terminated by an amphora (SNI, client certificates, revocation, TLS
versions, ALPN, HSTS), re-encrypted to a member that only speaks TLS, and a certificate
replaced under load, with certificates from the local store."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.helpers import create_lb, create_listener, create_member, create_pool, wait_lb_active
from tests.conftest import PROJECT
from tests.dataplane import netns
from tests.dataplane.conftest import Topology
from tests.tls_material import Authority

pytestmark = pytest.mark.root

TLS_MEMBER = "10.240.1.21"
TLS_SERVER = """
import http.server, ssl, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"tls-member"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer((sys.argv[1], 443), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


def write(path: Path, *parts: bytes) -> str:
    path.write_bytes(b"".join(parts))
    return str(path)


def run(namespace: str, *command: str) -> subprocess.CompletedProcess[str]:
    return netns.in_namespace(namespace, *command, timeout=15)


class Client:
    """curl and openssl s_client in the client namespace, trusting the test CA."""

    def __init__(self, namespace: str, vip: str, ca_file: str) -> None:
        self.namespace, self.vip, self.ca_file = namespace, vip, ca_file

    def curl(self, name: str, *options: str) -> str:
        result = run(self.namespace, "curl", "-s", "--max-time", "5", "--cacert", self.ca_file,
                     "--resolve", f"{name}:443:{self.vip}", *options, f"https://{name}/")
        return result.stdout.strip() if result.returncode == 0 else f"failed ({result.returncode})"

    def handshake(self, name: str, *options: str) -> str:
        """s_client's output for one handshake with SNI ``name`` (empty when it failed)."""
        result = subprocess.run(
            ["ip", "netns", "exec", self.namespace, "openssl", "s_client", "-connect",
             f"{self.vip}:443", "-servername", name, "-CAfile", self.ca_file, *options],
            input="", capture_output=True, text=True, timeout=15)
        return result.stdout if result.returncode == 0 else ""


def test_terminated_https_with_sni_client_auth_and_reencryption(
        dataplane, services, topology: Topology, backends, tmp_path: Path):
    store = services.api_state.cert_manager
    ca, member_ca, stranger_ca = Authority(), Authority("Member CA"), Authority("Stranger CA")
    www, api = ca.issue("www.example.com", ("www.example.com",)), ca.issue(
        "api.example.com", ("api.example.com",))
    alice, mallory = ca.issue("alice", client=True), ca.issue("mallory", client=True)
    ca.revoke(mallory)
    refs = {
        "www": store.store_certificate(www.tls, PROJECT),
        "api": store.store_certificate(api.tls, PROJECT),
        "client-ca": store.store_secret(ca.cert_pem, PROJECT),
        "crl": store.store_secret(ca.crl_pem(), PROJECT),
        "member-ca": store.store_secret(member_ca.cert_pem, PROJECT),
        "stranger-ca": store.store_secret(stranger_ca.cert_pem, PROJECT),
    }
    # A member that only speaks TLS, with a certificate from the members' CA.
    member_cert = member_ca.issue("member", ip_addresses=(TLS_MEMBER,))
    prefix = topology.members.cidr.split("/")[1]
    with netns.namespace(f"lbt-tls-{netns.short_id()}", topology.members.bridge,
                         f"{TLS_MEMBER}/{prefix}") as member_ns:
        server = subprocess.Popen(
            ["ip", "netns", "exec", member_ns, sys.executable, "-c", TLS_SERVER, TLS_MEMBER,
             write(tmp_path / "member.pem", member_cert.cert_pem, member_cert.key_pem)])
        try:
            lb = create_lb(dataplane, vip_subnet_id=topology.vips.subnet_id)
            pool = create_pool(dataplane, lb["id"], "HTTP", tls_enabled=True,
                               ca_tls_container_ref=refs["member-ca"])
            create_member(dataplane, pool["id"], TLS_MEMBER, 443,
                          subnet_id=topology.members.subnet_id)
            listener = create_listener(
                dataplane, lb["id"], "TERMINATED_HTTPS", 443, default_pool_id=pool["id"],
                default_tls_container_ref=refs["www"], sni_container_refs=[refs["api"]],
                client_authentication="MANDATORY", client_ca_tls_container_ref=refs["client-ca"],
                client_crl_container_ref=refs["crl"], tls_versions=["TLSv1.3"],
                alpn_protocols=["h2", "http/1.1"], hsts_max_age=3600)
            client = Client(topology.client, lb["vip_address"],
                            write(tmp_path / "ca.pem", ca.cert_pem))
            good = ("--cert", write(tmp_path / "alice.pem", alice.cert_pem),
                    "--key", write(tmp_path / "alice.key", alice.key_pem))
            revoked = ("--cert", write(tmp_path / "mallory.pem", mallory.cert_pem),
                       "--key", write(tmp_path / "mallory.key", mallory.key_pem))
            s_client_cert = ("-cert", good[1], "-key", good[3])

            # Terminated with the client's certificate, re-encrypted to the verified member.
            assert client.curl("www.example.com", *good) == "tls-member"
            assert client.curl("www.example.com", *good, "--http2", "-o", "/dev/null",
                               "-w", "%{http_version}") == "2"
            headers = client.curl("www.example.com", *good, "-D", "-", "-o", "/dev/null")
            assert "strict-transport-security: max-age=3600;" in headers.lower()
            # SNI picks the certificate; unknown names get the default one.
            assert "CN = api.example.com" in client.handshake("api.example.com", *s_client_cert)
            assert "CN = www.example.com" in client.handshake("other.example", *s_client_cert)
            # MANDATORY: no certificate, or a revoked one, is refused.
            assert client.curl("www.example.com").startswith("failed")
            assert client.curl("www.example.com", *revoked).startswith("failed")
            # Only TLS 1.3, ALPN h2 offered.
            assert client.handshake("www.example.com", "-tls1_2", *s_client_cert) == ""
            tls13 = client.handshake("www.example.com", "-tls1_3", "-alpn", "h2", *s_client_cert)
            assert "TLSv1.3" in tls13 and "ALPN protocol: h2" in tls13

            # A member whose certificate the pool's CA did not sign gets no traffic.
            assert dataplane.put(f"/v2/lbaas/pools/{pool['id']}", json={"pool": {
                "ca_tls_container_ref": refs["stranger-ca"]}}).status_code == 200
            wait_lb_active(dataplane, lb["id"])
            assert client.curl("www.example.com", *good, "-o", "/dev/null",
                               "-w", "%{http_code}") == "503"
            assert dataplane.put(f"/v2/lbaas/pools/{pool['id']}", json={"pool": {
                "ca_tls_container_ref": refs["member-ca"]}}).status_code == 200
            wait_lb_active(dataplane, lb["id"])

            # A new certificate under load: a hitless reload, no request fails.
            renewed = ca.issue("www.example.com", ("www.example.com",))
            renewed_ref = store.store_certificate(renewed.tls, PROJECT)
            loop = subprocess.Popen(
                ["ip", "netns", "exec", topology.client, "bash", "-c",
                 f"for i in $(seq 150); do curl -s -o /dev/null -w '%{{http_code}}\\n' "
                 f"--max-time 5 --cacert {client.ca_file} {' '.join(good)} "
                 f"--resolve www.example.com:443:{lb['vip_address']} https://www.example.com/; "
                 f"done"], stdout=subprocess.PIPE, text=True)
            assert dataplane.put(f"/v2/lbaas/listeners/{listener['id']}", json={"listener": {
                "default_tls_container_ref": renewed_ref}}).status_code == 200
            wait_lb_active(dataplane, lb["id"])
            codes = loop.communicate(timeout=120)[0].split()
            assert codes == ["200"] * 150
            serial = format(renewed.certificate.serial_number, "X")
            shown = run(topology.client, "bash", "-c",
                        f"openssl s_client -connect {lb['vip_address']}:443 -servername "
                        f"www.example.com -cert {good[1]} -key {good[3]} </dev/null 2>/dev/null"
                        " | openssl x509 -noout -serial").stdout
            assert shown.strip().removeprefix("serial=").lstrip("0") == serial.lstrip("0")
        finally:
            server.kill()
            server.wait()
