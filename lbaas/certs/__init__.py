"""Certificates for the control channel: the two CAs and what they sign.

- ``store.ensure(settings)`` at start-up: generates the server CA, the client CA and the
  controller's client certificate under ``<state_path>/certs/`` once (or checks the
  operator's own files) and returns their ``CertPaths``.
- ``store.load_server_ca(settings)`` then ``pki.issue_amphora_certificate(ca, amphora_id,
  settings.certificates.cert_validity_time)`` for each amphora: PEM certificate and key
  (``.pem`` is the agent's ``server.pem``) and the expiry.
- ``tls.controller_context(paths.client_cert, paths.server_ca, amphora_id)`` for the
  controller's HTTPS client, ``tls.agent_context(server_pem, client_ca)`` for the agent.
"""
from lbaas.certs.pki import Authority, IssuedCertificate, PkiError, issue_amphora_certificate
from lbaas.certs.store import CertPaths, ensure, export, load_server_ca, resolve
from lbaas.certs.tls import agent_context, controller_context

__all__ = [
    "Authority", "CertPaths", "IssuedCertificate", "PkiError", "agent_context",
    "controller_context", "ensure", "export", "issue_amphora_certificate", "load_server_ca",
    "resolve",
]
