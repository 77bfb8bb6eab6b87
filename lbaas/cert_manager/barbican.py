"""Certificate manager ``barbican_cert_manager``: tenants' certificates kept in Barbican.

As upstream's Barbican certificate manager, a reference is the URL of a Barbican secret
(a PKCS12 bundle, upstream's recommended form, or a PEM CA bundle / CRL) or of a
certificate container (``certificate``, ``private_key``, ``intermediates``,
``private_key_passphrase``), and lbaas reads it as its service user (``[service_auth]``),
whom the owner grants read access with an ACL: ``openstack acl user add --user <lbaas
user id> <ref>`` (for a container, on the container and each of its secrets). A bare
UUID is taken as a secret of the Barbican in the catalog (``key-manager``).
"""
from __future__ import annotations

import json
import re
from typing import Any

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from lbaas import cert_manager
from lbaas.cert_manager import pem
from lbaas.cert_manager.base import (
    CertificateError,
    CertManager,
    Requester,
    SecretNotFound,
    TlsCertificate,
)
from lbaas.config import ConfigError, Settings

UUID = re.compile(r"[0-9a-fA-F-]{36}")
INTERFACES = {"publicURL": "public", "internalURL": "internal", "adminURL": "admin"}


class BarbicanCertManager(CertManager):
    def __init__(self, session: ks_session.Session, endpoint_filter: dict[str, Any]) -> None:
        self.session = session
        self.endpoint_filter = endpoint_filter

    @classmethod
    def from_settings(cls, settings: Settings) -> BarbicanCertManager:
        auth = settings.service_auth
        cert_manager.check(settings)
        if auth.auth_url is None or auth.password is None:  # check() names them, and more
            raise ConfigError("[service_auth] auth_url and password must be set")
        plugin = v3.Password(auth_url=auth.auth_url, username=auth.username,
                             password=auth.password.get_secret_value(),
                             project_name=auth.project_name,
                             user_domain_name=auth.user_domain_name,
                             project_domain_name=auth.project_domain_name)
        options = settings.certificates
        return cls(ks_session.Session(auth=plugin, verify=auth.cafile or True), {
            "service_type": "key-manager", "region_name": options.region_name,
            "interface": INTERFACES.get(options.endpoint_type, options.endpoint_type)})

    def _get(self, ref: str, path: str = "", accept: str = "application/json",
             token: str | None = None) -> bytes:
        """GET ``ref`` (a URL, or a secret's UUID) + ``path`` as the service user, or with
        ``token`` (a caller's) if given."""
        url = ref.rstrip("/") + path
        filters: dict[str, Any] = {}
        if UUID.fullmatch(ref):
            url, filters = f"/v1/secrets/{ref}{path}", {"endpoint_filter": self.endpoint_filter}
        elif not ref.startswith(("http://", "https://")):
            raise SecretNotFound(f"{ref} is neither a Barbican URL nor a secret's UUID")
        headers = {"Accept": accept}
        if token is not None:  # the caller's identity, not the service user's
            filters.update(authenticated=False)
            headers["X-Auth-Token"] = token
        try:
            response = self.session.get(url, headers=headers, raise_exc=False, **filters)
        except ks_exceptions.ClientException as exc:
            raise CertificateError(f"Barbican could not be asked for {ref}: {exc}") from exc
        if response.status_code == 404 or (token is not None and response.status_code == 403):
            raise SecretNotFound(f"Barbican has no secret or container {ref}"
                                 + (" that the caller may read" if token is not None else ""))
        if response.status_code == 403:
            raise CertificateError(
                f"the lbaas service user ({self.session.get_user_id()}) may not read {ref}: its "
                f"owner grants it with `openstack acl user add --user "
                f"{self.session.get_user_id()} {ref}` (for a container, on each of its "
                "secrets too)")
        if response.status_code >= 400:
            raise CertificateError(f"Barbican answered {response.status_code} for {ref}")
        return bytes(response.content)

    def _payload(self, ref: str) -> bytes:
        return self._get(ref, "/payload", accept="*/*")

    def _check_requester(self, ref: str, requester: Requester | None) -> None:
        """The caller must be able to read ``ref`` themselves (Barbican knows its owner):
        the service user's ACL alone does not let one project use another's secret."""
        if requester is not None and requester.token is not None:
            self._get(ref, token=requester.token)

    def get_cert(self, ref: str, requester: Requester | None = None) -> TlsCertificate:
        self._check_requester(ref, requester)
        if "/containers/" in ref:
            return self._container(ref)
        return pem.from_pkcs12(self._payload(ref), what=f"secret {ref}")

    def _container(self, ref: str) -> TlsCertificate:
        container = json.loads(self._get(ref))
        parts = {item["name"]: item["secret_ref"] for item in container.get("secret_refs", [])}
        if "certificate" not in parts or "private_key" not in parts:
            raise CertificateError(f"container {ref} needs a certificate and a private_key")
        passphrase = (self._payload(parts["private_key_passphrase"])
                      if "private_key_passphrase" in parts else None)
        return pem.from_pem(
            self._payload(parts["certificate"]), self._payload(parts["private_key"]),
            self._payload(parts["intermediates"]) if "intermediates" in parts else b"",
            passphrase, what=f"container {ref}")

    def get_secret(self, ref: str, requester: Requester | None = None) -> bytes:
        self._check_requester(ref, requester)
        return self._payload(ref)
