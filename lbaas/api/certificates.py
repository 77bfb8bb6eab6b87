"""Certificate references of listeners and pools, read and checked when they are set.

As upstream's controllers: every reference a listener or pool names must be readable by
the certificate manager now (400 ``Could not retrieve certificate: <ref>`` otherwise, with
the reason), hold what its field needs (a certificate with its matching key, a CA bundle,
a revocation list signed by that CA), and belong to the object's project unless an admin
asks. So the worker can always fetch and serve what the API accepted.
"""
from __future__ import annotations

from lbaas import constants
from lbaas.api import faults
from lbaas.api.context import RequestContext
from lbaas.cert_manager import pem
from lbaas.cert_manager.base import CertificateError, CertManager, Requester
from lbaas.db.models import LoadBalancer, Listener, Pool


def _requester(ctx: RequestContext, project_id: str | None) -> Requester | None:
    """Whose secrets may be used: the object's project's (as the caller can read them),
    or any for an admin."""
    return None if ctx.is_admin else Requester(project_id, ctx.token)


def _certificate(manager: CertManager, ref: str, requester: Requester | None) -> None:
    try:
        pem.checked(manager.get_cert(ref, requester), ref)
    except CertificateError as exc:
        raise faults.CertificateRetrieval(ref=f"{ref} ({exc})") from exc


def _secret(manager: CertManager, ref: str, requester: Requester | None) -> bytes:
    try:
        return manager.get_secret(ref, requester)
    except CertificateError as exc:
        raise faults.CertificateRetrieval(ref=f"{ref} ({exc})") from exc


def _ca_and_crl(manager: CertManager, ca_ref: str | None, crl_ref: str | None,
                requester: Requester | None, what: str) -> None:
    """A CA bundle, and a revocation list that CA signed."""
    if not ca_ref:
        return
    try:
        ca = pem.ca_bundle(_secret(manager, ca_ref, requester))
    except CertificateError as exc:
        raise faults.ValidationException(
            detail=f"The {what} CA certificate is invalid. It must be a valid x509 PEM "
                   "format certificate.") from exc
    if not crl_ref:
        return
    try:
        crl = pem.revocation_list(_secret(manager, crl_ref, requester))
    except CertificateError as exc:
        raise faults.ValidationException(
            detail=f"The {what} certificate revocation list is invalid. It must be a valid "
                   "x509 PEM format certificate revocation list.") from exc
    if not pem.crl_signed_by(crl, ca):
        raise faults.ValidationException(
            detail=f"The CRL specified is not valid for {what} certificate authority "
                   "reference supplied.")


def check_listener(listener: Listener, manager: CertManager, ctx: RequestContext) -> None:
    if listener.protocol != constants.TERMINATED_HTTPS:
        return
    requester = _requester(ctx, listener.project_id)
    for ref in dict.fromkeys(ref for ref in (listener.tls_certificate_id,
                                             *(listener.sni_container_refs or ())) if ref):
        _certificate(manager, ref, requester)
    _ca_and_crl(manager, listener.client_ca_tls_certificate_id,
                listener.client_crl_container_id, requester, "client authentication")


def check_pool(pool: Pool, manager: CertManager, ctx: RequestContext) -> None:
    requester = _requester(ctx, pool.project_id)
    if pool.tls_certificate_id:
        _certificate(manager, pool.tls_certificate_id, requester)
    _ca_and_crl(manager, pool.ca_tls_certificate_id, pool.crl_container_id, requester,
                "pool")


def check_load_balancer(lb: LoadBalancer, manager: CertManager, ctx: RequestContext) -> None:
    """Every listener and pool of a fully-populated create."""
    for listener in lb.listeners:
        check_listener(listener, manager, ctx)
    for pool in lb.pools:
        check_pool(pool, manager, ctx)
