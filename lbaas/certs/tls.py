"""TLS contexts for the control channel: the controller (client) and the amphora agent (server).

The agent accepts only clients whose certificate the client CA signed; the controller accepts
only an agent whose certificate the server CA signed *and* that names the amphora it means to
reach. A certificate the server CA issued to one amphora therefore cannot answer for another,
and an amphora's certificate cannot pose as the controller (it comes from the other CA).
Both sides speak TLS 1.2 or later.
"""
from __future__ import annotations

import socket
import ssl
import uuid
from pathlib import Path

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


class AmphoraClientContext(ssl.SSLContext):
    """A client context bound to one amphora.

    Every connection made with it checks the agent's certificate against ``amphora_id``,
    whatever host name the caller connects to (the agent is reached by its management
    address, which its certificate does not name): the context passes the amphora id to
    OpenSSL as the expected host name, so the check happens inside the handshake, before a
    byte of the request is sent. The amphora certificates ``pki`` issues carry the id as
    both CN and SAN DNS name, so this is the "CN equals the amphora id" check (upstream does
    the same through urllib3's ``assert_hostname``). The id is also sent as SNI.

    Works with anything that wraps sockets through the context: ``ssl``, ``asyncio``, and
    httpx/httpcore (sync and async): ``httpx.Client(verify=context)``.
    """

    amphora_id: str

    def wrap_socket(self, sock: socket.socket, server_side: bool = False,
                    do_handshake_on_connect: bool = True, suppress_ragged_eofs: bool = True,
                    server_hostname: str | bytes | None = None,
                    session: ssl.SSLSession | None = None) -> ssl.SSLSocket:
        return super().wrap_socket(sock, server_side, do_handshake_on_connect,
                                   suppress_ragged_eofs, self.amphora_id, session)

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO,
                 server_side: bool = False, server_hostname: str | bytes | None = None,
                 session: ssl.SSLSession | None = None) -> ssl.SSLObject:
        return super().wrap_bio(incoming, outgoing, server_side, self.amphora_id, session)


def compute_agent_identity(host: str) -> str:
    """The name a compute agent's certificate carries (CN and SAN DNS) and controllers
    check: never an amphora's (a UUID), so that neither can pose as the other."""
    try:
        uuid.UUID(host)
    except ValueError:
        return f"compute-{host}"
    raise ValueError(f"a host cannot be named like a UUID ({host}); give it another name")


def controller_context(client_cert: Path, server_ca: Path, amphora_id: str) -> AmphoraClientContext:
    """The controller's context for talking to the agent of ``amphora_id``.

    ``client_cert`` is the controller's certificate and key in one PEM file
    (``[haproxy_amphora] client_cert``), ``server_ca`` the CA bundle agents are verified
    against (``[haproxy_amphora] server_ca``).
    """
    context = AmphoraClientContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies chain and host name
    context.amphora_id = amphora_id
    _configure(context, certificate=client_cert, trusted=server_ca)
    return context


def agent_context(server_cert: Path, client_ca: Path) -> ssl.SSLContext:
    """The agent's context: its certificate and key in one PEM file (upstream's
    ``server.pem``), and the client CA whose certificates it requires from every client."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_REQUIRED
    _configure(context, certificate=server_cert, trusted=client_ca)
    return context


def _configure(context: ssl.SSLContext, *, certificate: Path, trusted: Path) -> None:
    context.minimum_version = MINIMUM_VERSION
    context.load_cert_chain(certificate)
    context.load_verify_locations(cafile=trusted)
    # A certificate listed in the trusted bundle is a trust anchor even when it is not
    # self-signed, so an operator may trust an intermediate CA without its root.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
