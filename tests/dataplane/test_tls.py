"""End to end: TLS terminated by an amphora (SNI, client certificates, revocation, TLS
versions, ciphers, ALPN, HSTS, X-SSL headers, L7 rules), re-encrypted to a member that
only speaks TLS (verified with the pool's CA and CRL, the pool's client certificate
presented), a certificate replaced under load, certificates carried to the amphorae of an
ACTIVE_STANDBY pair and of a failover, and HTTPS and TLS-HELLO health checks of TLS
members; the certificates come from the local store."""
from __future__ import annotations

import contextlib
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbaas import config, service
from tests.dataplane import netns
from tests.helpers import PROJECT, wait_for
from tests.helpers.api import create_lb, create_listener, create_member, create_pool, wait_lb_active
from tests.helpers.dataplane import (
    Topology,
    crash,
    fail_over,
    live_amphorae,
    vip_holders,
    wait_until,
)
from tests.tls_material import Authority, Issued

pytestmark = pytest.mark.root

TLS_MEMBER = "10.240.1.21"
TLS_SERVER = """
import http.server, ssl, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"tls-member"
        if self.path == "/headers":  # what the load balancer inserted
            body = "|".join(f"{name}={self.headers.get(name)}" for name in (
                "X-Forwarded-Proto", "X-SSL-Client-Verify", "X-SSL-Client-CN")).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer((sys.argv[1], 443), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2])
if len(sys.argv) > 3:  # clients must present a certificate this CA signed
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(sys.argv[3])
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

    def curl(self, name: str, *options: str, path: str = "/") -> str:
        result = run(self.namespace, "curl", "-s", "--max-time", "5", "--cacert", self.ca_file,
                     "--resolve", f"{name}:443:{self.vip}", *options, f"https://{name}{path}")
        return result.stdout.strip() if result.returncode == 0 else f"failed ({result.returncode})"

    def handshake(self, name: str, *options: str) -> str:
        """s_client's output for one handshake with SNI ``name`` (empty when it failed)."""
        result = subprocess.run(
            ["ip", "netns", "exec", self.namespace, "openssl", "s_client", "-connect",
             f"{self.vip}:443", "-servername", name, "-CAfile", self.ca_file, *options],
            input="", capture_output=True, text=True, timeout=15, check=False)
        return result.stdout if result.returncode == 0 else ""


@contextlib.contextmanager
def tls_member(topology: Topology, address: str, issued: Issued, workdir: Path,
               client_ca: bytes | None = None) -> Iterator[None]:
    """A member at ``address`` that only speaks TLS (port 443), with certificate ``issued``;
    with ``client_ca``, it refuses clients without a certificate that CA signed."""
    prefix = topology.members.cidr.split("/")[1]
    requires = [write(workdir / f"member-{address}-ca.pem", client_ca)] if client_ca else []
    with netns.namespace(f"lbt-tls-{netns.short_id()}", topology.members.bridge,
                         f"{address}/{prefix}") as namespace:
        server = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "-c", TLS_SERVER, address,
             write(workdir / f"member-{address}.pem", issued.cert_pem, issued.key_pem),
             *requires])
        try:
            probe = f"import socket; socket.create_connection(('{address}', 443), 0.2)"
            for _ in range(100):
                if netns.in_namespace(namespace, sys.executable, "-c", probe).returncode == 0:
                    break
            yield
        finally:
            server.kill()
            server.wait()


@pytest.fixture
def settings(settings: config.Settings, request) -> config.Settings:
    """The data-plane settings with the options a test passes ((section, option): value)."""
    for (section, option), value in getattr(request, "param", {}).items():
        setattr(getattr(settings, section), option, value)
    return settings


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
    with tls_member(topology, TLS_MEMBER, member_cert, tmp_path):
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
            alpn_protocols=["h2", "http/1.1"], hsts_max_age=3600, insert_headers={
                "X-Forwarded-Proto": "true", "X-SSL-Client-Verify": "true",
                "X-SSL-Client-CN": "true"})
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
        assert client.curl("www.example.com", *good, path="/headers") == (
            'X-Forwarded-Proto=https|X-SSL-Client-Verify=0|X-SSL-Client-CN=alice')
        # L7 rules on the client certificate, as on any HTTP listener.
        response = dataplane.post("/v2/lbaas/l7policies", json={"l7policy": {
            "listener_id": listener["id"], "action": "REJECT", "rules": [
                {"type": "SSL_DN_FIELD", "key": "CN", "compare_type": "EQUAL_TO",
                 "value": "bob"}]}})
        assert response.status_code == 201, response.text
        wait_lb_active(dataplane, lb["id"])
        bob_issued = ca.issue("bob", client=True)
        bob = ("--cert", write(tmp_path / "bob.pem", bob_issued.cert_pem),
               "--key", write(tmp_path / "bob.key", bob_issued.key_pem))
        assert client.curl("www.example.com", *bob, "-o", "/dev/null",
                           "-w", "%{http_code}") == "403"
        assert client.curl("www.example.com", *good) == "tls-member"
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
             (f"for i in $(seq 150); do curl -s -o /dev/null -w '%{{http_code}}\\n' "
              f"--max-time 5 --cacert {client.ca_file} {' '.join(good)} "
              f"--resolve www.example.com:443:{lb['vip_address']} https://www.example.com/; "
              f"done")], stdout=subprocess.PIPE, text=True)
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


def test_pool_presents_its_certificate_to_members_and_honours_its_crl(
        dataplane, services, topology: Topology, tmp_path: Path):
    """Re-encryption to a member that demands a client certificate: the pool's
    ``tls_container_ref`` is presented; without it, or once the pool's CRL revokes the
    member's certificate, no request reaches the member."""
    store = services.api_state.cert_manager
    member_ca, client_ca = Authority("Member CA"), Authority("Client CA")
    member_cert = member_ca.issue("member", ip_addresses=(TLS_MEMBER,))
    refs = {"member-ca": store.store_secret(member_ca.cert_pem, PROJECT),
            "client": store.store_certificate(client_ca.issue("lb", client=True).tls, PROJECT)}
    with tls_member(topology, TLS_MEMBER, member_cert, tmp_path, client_ca=client_ca.cert_pem):
        lb = create_lb(dataplane, vip_subnet_id=topology.vips.subnet_id)
        pool = create_pool(dataplane, lb["id"], "HTTP", tls_enabled=True,
                           ca_tls_container_ref=refs["member-ca"],
                           tls_container_ref=refs["client"])
        create_member(dataplane, pool["id"], TLS_MEMBER, 443,
                      subnet_id=topology.members.subnet_id)
        create_listener(dataplane, lb["id"], "HTTP", 80, default_pool_id=pool["id"])

        def get() -> str:
            """The member's answer and the status code, or only the code of an error."""
            result = run(topology.client, "curl", "-s", "--max-time", "5", "-w", " %{http_code}",
                         f"http://{lb['vip_address']}/")
            body, _, code = result.stdout.strip().rpartition(" ")
            return f"{body} {code}" if code == "200" else code

        def update_pool(**fields: object) -> None:
            response = dataplane.put(f"/v2/lbaas/pools/{pool['id']}", json={"pool": fields})
            assert response.status_code == 200, response.text
            wait_lb_active(dataplane, lb["id"])

        assert get() == "tls-member 200"
        update_pool(tls_container_ref=None)
        assert get() in ("502", "503")  # the member refused the handshake
        update_pool(tls_container_ref=refs["client"])
        assert get() == "tls-member 200"
        member_ca.revoke(member_cert)
        update_pool(crl_container_ref=store.store_secret(member_ca.crl_pem(), PROJECT))
        assert get() == "503"  # haproxy refused the member's revoked certificate


ACTIVE_STANDBY = {("controller_worker", "loadbalancer_topology"): "ACTIVE_STANDBY"}


def certificate_files(services, amphora_id: str, lb_id: str) -> dict[str, int]:
    """The certificate files in an amphora's directory for ``lb_id``, with their modes."""
    directory = services.settings.haproxy_amphora.base_path / amphora_id / lb_id / "certs"
    if not directory.is_dir():
        return {}
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in directory.iterdir()}


@pytest.mark.parametrize("settings", [ACTIVE_STANDBY], indirect=True)
def test_certificates_reach_both_amphorae_and_a_failovers_and_go_with_the_listener(
        dataplane, services, drivers, topology: Topology, tmp_path: Path):
    store = services.api_state.cert_manager
    ca = Authority()
    ref = store.store_certificate(ca.issue("www.example.com", ("www.example.com",)).tls, PROJECT)
    lb = create_lb(dataplane, vip_subnet_id=topology.vips.subnet_id)
    pool = create_pool(dataplane, lb["id"], "HTTP")
    for backend in topology.backends:
        create_member(dataplane, pool["id"], backend.address, subnet_id=topology.members.subnet_id)
    listener = create_listener(dataplane, lb["id"], "TERMINATED_HTTPS", 443,
                               default_pool_id=pool["id"], default_tls_container_ref=ref,
                               tls_ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    create_listener(dataplane, lb["id"], "HTTP", 80, default_pool_id=pool["id"])
    client = Client(topology.client, lb["vip_address"], write(tmp_path / "ca.pem", ca.cert_pem))
    answers = {"backend-1", "backend-2"}
    assert client.curl("www.example.com") in answers
    # tls_ciphers: the only TLS 1.2 cipher offered.
    assert "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256" in client.handshake("www.example.com",
                                                                        "-tls1_2")
    assert client.handshake("www.example.com", "-tls1_2", "-cipher",
                            "ECDHE-ECDSA-AES256-GCM-SHA384") == ""
    for amphora in live_amphorae(services, lb["id"]):
        files = certificate_files(services, amphora.id, lb["id"])
        assert len(files) == 2 and set(files.values()) == {0o600}  # certificate + crt-list

    wait_until(lambda: len(vip_holders(services, drivers, lb)) == 1)
    master = vip_holders(services, drivers, lb)[0]
    crash(master)
    wait_until(lambda: client.curl("www.example.com", "--max-time", "1") in answers, timeout=10)
    fail_over(dataplane, lb["id"])
    replaced = live_amphorae(services, lb["id"])
    assert master.id not in {amphora.id for amphora in replaced}
    assert all(len(certificate_files(services, amphora.id, lb["id"])) == 2
               for amphora in replaced)
    assert client.curl("www.example.com") in answers

    assert dataplane.delete(f"/v2/lbaas/listeners/{listener['id']}").status_code == 204
    wait_lb_active(dataplane, lb["id"])
    assert all(certificate_files(services, amphora.id, lb["id"]) == {}
               for amphora in live_amphorae(services, lb["id"]))
    assert client.curl("www.example.com").startswith("failed")


HEALTH = {("health_manager", "heartbeat_interval"): 0.5, ("health_manager", "heartbeat_timeout"): 3,
          ("health_manager", "failover_grace_period"): 0}


@pytest.mark.parametrize("settings", [HEALTH], indirect=True)
@pytest.mark.parametrize("monitor", ["HTTPS", "TLS-HELLO"])
def test_monitors_check_tls_members_against_the_pools_ca(
        dataplane, services, topology: Topology, tmp_path: Path, monitor: str):
    """A member whose certificate the pool's CA signed is ONLINE, the other ERROR."""
    store = services.api_state.cert_manager
    member_ca, stranger_ca = Authority("Member CA"), Authority("Stranger CA")
    trusted, untrusted = "10.240.1.21", "10.240.1.22"
    with service.running_health_manager(services), \
            tls_member(topology, trusted, member_ca.issue("a", ip_addresses=(trusted,)), tmp_path), \
            tls_member(topology, untrusted, stranger_ca.issue("b", ip_addresses=(untrusted,)),
                       tmp_path):
        lb = create_lb(dataplane, vip_subnet_id=topology.vips.subnet_id)
        pool = create_pool(dataplane, lb["id"], "HTTP", tls_enabled=True,
                           ca_tls_container_ref=store.store_secret(member_ca.cert_pem, PROJECT))
        create_listener(dataplane, lb["id"], "HTTP", 80, default_pool_id=pool["id"])
        for address in (trusted, untrusted):
            create_member(dataplane, pool["id"], address, 443, subnet_id=topology.members.subnet_id)
        fields = {"url_path": "/"} if monitor == "HTTPS" else {}
        response = dataplane.post("/v2/lbaas/healthmonitors", json={"healthmonitor": {
            "pool_id": pool["id"], "type": monitor, "delay": 1, "timeout": 1, "max_retries": 1,
            **fields}})
        assert response.status_code == 201, response.text
        wait_lb_active(dataplane, lb["id"])

        def statuses() -> dict[str, str]:
            tree = dataplane.get(f"/v2/lbaas/loadbalancers/{lb['id']}/status").json()
            members = tree["statuses"]["loadbalancer"]["listeners"][0]["pools"][0]["members"]
            return {"wanted": str({m["address"]: m["operating_status"] for m in members}
                                  == {trusted: "ONLINE", untrusted: "ERROR"})}

        wait_for(statuses, "wanted", "True", timeout=30)
