"""`lbaas certs rotate-ca`: each CA replaced while a load balancer serves, no amphora
failed over, and the old CA refused afterwards; a rotation stopped by an amphora that
does not answer resumes when run again."""
from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from lbaas.certs import store
from lbaas.cli import app
from lbaas.controller import ca_rotation
from lbaas.controller.flow import FlowContext
from lbaas.db.models import Amphora
from tests.helpers.dataplane import balanced, build, dataplane_environ, traffic

pytestmark = pytest.mark.root


def _amphorae(services) -> dict[str, str]:
    with services.db.read() as session:
        return {a.id: a.status for a in session.scalars(
            select(Amphora).where(Amphora.status != "DELETED"))}


def _handshake(address: str, trusted: bytes, client_pem: Path) -> str:
    """A TLS handshake with the agent, as a controller trusting ``trusted`` with the
    certificate in ``client_pem``: "ok", or why it failed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cadata=trusted.decode())
    context.load_cert_chain(client_pem)
    try:
        with socket.create_connection((address, 9443), timeout=5) as raw:
            with context.wrap_socket(raw) as tls:
                tls.sendall(b"GET /1.0/info HTTP/1.0\r\n\r\n")
                answer = tls.recv(64)  # a refused client certificate shows here (TLS 1.3)
                return "ok" if b" 200 " in answer.split(b"\r\n")[0] else repr(answer)
    except ssl.SSLCertVerificationError:
        return "agent not trusted"
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return "controller refused"


def test_both_cas_rotate_under_traffic_without_a_failover(dataplane, topology, services,
                                                          drivers, tmp_path):
    made = build(dataplane, topology)
    amphorae = _amphorae(services)
    paths = store.resolve(services.settings)
    [address] = [a.lb_network_ip for a in _rows(services)]
    old_server_ca = paths.ca_certificate.read_bytes()
    old_client = tmp_path / "old-client.pem"
    old_client.write_bytes(paths.client_cert.read_bytes())
    context = FlowContext(db=services.db, drivers=drivers, settings=services.settings)

    progress: list[str] = []
    with traffic(topology, made["lb"]["vip_address"]) as during_server:
        ca_rotation.rotate_server(context, progress.append)
    assert during_server["failed"] == 0 and during_server["ok"] > 0, during_server
    assert progress[-1] == "the old server CA is no longer trusted"
    new_server_ca = paths.ca_certificate.read_bytes()
    assert new_server_ca != old_server_ca
    assert _handshake(address, old_server_ca, paths.client_cert) == "agent not trusted"
    assert _handshake(address, new_server_ca, paths.client_cert) == "ok"
    assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}

    # The client CA: the first amphora push fails (it does not answer), the rotation stops
    # before the old CA is dropped, and running it again finishes it.
    original = drivers.amphora.upload_client_ca

    def unreachable(amphora, pem):
        raise OSError("no route to host")
    drivers.amphora.upload_client_ca = unreachable  # type: ignore[method-assign]
    with pytest.raises(ca_rotation.RotationStopped, match="did not answer"):
        ca_rotation.rotate_client(context, progress.append)
    assert _handshake(address, new_server_ca, old_client) == "ok"  # nothing changed yet
    drivers.amphora.upload_client_ca = original  # type: ignore[method-assign]
    with traffic(topology, made["lb"]["vip_address"]) as during_client:
        runner = CliRunner().invoke(app, ["certs", "rotate-ca", "client"],
                                    env=dataplane_environ_of(services))
    assert during_client["failed"] == 0 and during_client["ok"] > 0, during_client
    assert runner.exit_code == 0, runner.output
    assert runner.output.splitlines()[-1] == "the old client CA is no longer trusted"
    assert _handshake(address, new_server_ca, old_client) == "controller refused"
    assert _handshake(address, new_server_ca, paths.client_cert) == "ok"

    # The worker (its driver noticed the new files) still manages the amphora, which was
    # never replaced, and traffic flowed throughout.
    member = made["members"][0]
    response = dataplane.put(f"/v2/lbaas/pools/{made['pool']['id']}/members/{member['id']}",
                             json={"member": {"weight": 3}})
    assert response.status_code == 200
    assert balanced(topology, made["url"])["backend-1"] > 0
    assert _amphorae(services) == amphorae


def _rows(services) -> list[Amphora]:
    with services.db.read() as session:
        return list(session.scalars(select(Amphora).where(Amphora.status != "DELETED")))


def dataplane_environ_of(services) -> dict[str, str]:
    """The environment that makes the CLI open this test's deployment."""
    environ = dataplane_environ(services.settings.DEFAULT.state_path)
    environ["LBAAS__haproxy_amphora__base_path"] = str(services.settings.haproxy_amphora.base_path)
    environ["LBAAS__networking__lb_network_cidr"] = str(services.settings.networking.lb_network_cidr)
    environ["LBAAS__networking__lb_network_bridge"] = services.settings.networking.lb_network_bridge
    return environ
