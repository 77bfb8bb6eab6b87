"""The certificates a load balancer's configuration needs, fetched for the amphora driver."""
from __future__ import annotations

import logging

from lbaas import constants
from lbaas.amphora.haproxy_config import TlsMaterial
from lbaas.cert_manager import pem
from lbaas.cert_manager.base import CertificateError, CertManager, TlsCertificate
from lbaas.cert_manager.expiry import WARN_WITHIN
from lbaas.db.models import LoadBalancer, utcnow

LOG = logging.getLogger(__name__)
NOT_SERVED = (constants.PENDING_DELETE, constants.ERROR)


def references(load_balancer: LoadBalancer) -> tuple[set[str], set[str]]:
    """(certificate refs, secret refs) of the listeners and pools that may be served."""
    certificates: set[str] = set()
    secrets: set[str] = set()
    for listener in load_balancer.listeners:
        if (listener.protocol != constants.TERMINATED_HTTPS
                or listener.provisioning_status in NOT_SERVED):
            continue
        certificates.update(ref for ref in (listener.tls_certificate_id,
                                            *(listener.sni_container_refs or ())) if ref)
        secrets.update(ref for ref in (listener.client_ca_tls_certificate_id,
                                       listener.client_crl_container_id) if ref)
    for pool in load_balancer.pools:
        if not pool.tls_enabled or pool.provisioning_status in NOT_SERVED:
            continue
        if pool.tls_certificate_id:
            certificates.add(pool.tls_certificate_id)
        secrets.update(ref for ref in (pool.ca_tls_certificate_id, pool.crl_container_id) if ref)
    return certificates, secrets


def fetch(load_balancer: LoadBalancer, manager: CertManager) -> TlsMaterial:
    """Everything the load balancer's references name. A reference that cannot be read is
    left out and logged: the renderer then fails only if that object is served."""
    certificate_refs, secret_refs = references(load_balancer)
    certificates: dict[str, TlsCertificate] = {}
    secrets: dict[str, bytes] = {}
    for ref in sorted(certificate_refs):
        try:
            certificates[ref] = manager.get_cert(ref)
        except CertificateError as exc:
            LOG.warning("load balancer %s: certificate %s: %s", load_balancer.id, ref, exc)
            continue
        expires = pem.not_after(certificates[ref].certificate)
        if expires - utcnow() < WARN_WITHIN:  # logged at every configuration push
            LOG.warning("load balancer %s: certificate %s %s on %s: store a new one and "
                        "point the listener or pool at it", load_balancer.id, ref,
                        "expired" if expires < utcnow() else "expires", expires.isoformat())
    for ref in sorted(secret_refs):
        try:
            secrets[ref] = manager.get_secret(ref)
        except CertificateError as exc:
            LOG.warning("load balancer %s: secret %s: %s", load_balancer.id, ref, exc)
    return TlsMaterial(certificates, secrets)
