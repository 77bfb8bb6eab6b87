"""Certificate references of listeners and pools, read and checked when they are set.

As upstream's controllers: every reference a listener or pool names must be readable by
the certificate manager now (400 ``Could not retrieve certificate: <ref>`` otherwise, with
the reason), hold what its field needs (a certificate with its matching key, a CA bundle,
a revocation list signed by that CA), and belong to the object's project unless an admin
asks. So the worker can always fetch and serve what the API accepted.

An update checks only the references it changes (upstream checks those its body names):
renaming or disabling a listener must not fail because a certificate it was accepted with
can no longer be read, or belongs to another project because an admin set it.
"""
from __future__ import annotations

from lbaas import constants
from lbaas.api import faults
from lbaas.api.context import RequestContext
from lbaas.cert_manager import pem
from lbaas.cert_manager.base import CertificateError, CertManager, Requester
from lbaas.db.models import Listener, LoadBalancer, Pool

Refs = tuple[tuple[str, ...], tuple[str | None, str | None]]
"""An object's certificate references and its (CA, CRL) pair: what its check reads."""


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


def listener_refs(listener: Listener) -> Refs:
    certificates = (listener.tls_certificate_id, *(listener.sni_container_refs or ()))
    return (tuple(dict.fromkeys(ref for ref in certificates if ref)),
            (listener.client_ca_tls_certificate_id, listener.client_crl_container_id))


def pool_refs(pool: Pool) -> Refs:
    return ((pool.tls_certificate_id,) if pool.tls_certificate_id else (),
            (pool.ca_tls_certificate_id, pool.crl_container_id))


def _check(refs: Refs, before: Refs | None, manager: CertManager, requester: Requester | None,
           what: str) -> None:
    """Every reference of ``refs``, or on an update only those not in ``before``."""
    certificates, ca_and_crl = refs
    known = set(before[0]) if before else set[str]()
    for ref in certificates:
        if ref not in known:
            _certificate(manager, ref, requester)
    if before is None or ca_and_crl != before[1]:
        _ca_and_crl(manager, *ca_and_crl, requester, what)


def check_listener(listener: Listener, manager: CertManager, ctx: RequestContext,
                   before: Refs | None = None) -> None:
    """A new listener's references, or those an update changed (``before``: its
    ``listener_refs`` before the update)."""
    if listener.protocol != constants.TERMINATED_HTTPS:
        return
    _check(listener_refs(listener), before, manager, _requester(ctx, listener.project_id),
           "client authentication")


def check_pool(pool: Pool, manager: CertManager, ctx: RequestContext,
               before: Refs | None = None) -> None:
    """A new pool's references, or those an update changed (``before``: its ``pool_refs``
    before the update)."""
    _check(pool_refs(pool), before, manager, _requester(ctx, pool.project_id), "pool")


def check_load_balancer(lb: LoadBalancer, manager: CertManager, ctx: RequestContext) -> None:
    """Every listener and pool of a fully-populated create."""
    for listener in lb.listeners:
        check_listener(listener, manager, ctx)
    for pool in lb.pools:
        check_pool(pool, manager, ctx)
