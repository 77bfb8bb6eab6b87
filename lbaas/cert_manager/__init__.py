"""Tenants' TLS certificates: the certificate manager interface and its implementations.

``[certificates] cert_manager`` picks one: ``local_cert_manager`` (the encrypted store of
``lbaas secret``) or ``barbican_cert_manager``.
"""
from __future__ import annotations

from lbaas.cert_manager.base import CertManager
from lbaas.config import ConfigError, Settings
from lbaas.db.engine import Database

SERVICE_USER = ("auth_url", "username", "password", "project_name")


def check(settings: Settings) -> None:
    """ConfigError naming what to set when the configured manager cannot work."""
    if settings.certificates.cert_manager != "barbican_cert_manager":
        return
    missing = [name for name in SERVICE_USER if getattr(settings.service_auth, name) is None]
    if missing:
        raise ConfigError(
            "[certificates] cert_manager = barbican_cert_manager reads secrets as the service "
            f"user of [service_auth]: set {', '.join(missing)}")


def load(settings: Settings, db: Database) -> CertManager:
    """The configured certificate manager."""
    if settings.certificates.cert_manager == "barbican_cert_manager":
        from lbaas.cert_manager.barbican import BarbicanCertManager
        return BarbicanCertManager.from_settings(settings)
    from lbaas.cert_manager.local import LocalCertManager
    return LocalCertManager.from_settings(settings, db)
