"""``lbaas secret ...``: the local certificate store (``local_cert_manager``).

Like ``lbaas network``, the commands work on the configured database directly. ``store``
prints the reference to give a listener (``--default-tls-container-ref``, ``--sni-container-refs``,
``--client-ca-tls-container-ref``, ``--client-crl-container-ref``) or a pool
(``--tls-container-ref``, ``--ca-tls-container-ref``, ``--crl-container-ref``).
"""
from __future__ import annotations

import datetime as dt
import functools
import typing
from pathlib import Path
from typing import Annotated, Optional

import typer

from lbaas import cert_manager, config
from lbaas.cert_manager import expiry as tls_expiry
from lbaas.cert_manager import pem
from lbaas.cert_manager.base import CertificateError
from lbaas.cert_manager.local import LocalCertManager
from lbaas.cli import common
from lbaas.cli.common import ConfigFile, Format, OutputFormat, print_list, print_show
from lbaas.console import print_error
from lbaas.db.models import utcnow

app = typer.Typer(help="TLS certificates and CA/CRL secrets of the local certificate store.",
                  no_args_is_help=True)

COLUMNS = (("ID", "id"), ("Name", "name"), ("Project", "project_id"), ("Type", "secret_type"),
           ("Expiration", "expiration"))


# The command's own errors exit 1 with their message (common.reporting).
_reporting = functools.partial(common.reporting, CertificateError)


def _manager(config_file: Path | None) -> LocalCertManager:
    with _reporting():
        settings = config.load(config_file)
        return LocalCertManager.from_settings(settings, common.database(config_file))


def _file(flag: str, help: str) -> typing.Any:
    return typer.Option(flag, help=help, exists=True, dir_okay=False, readable=True)


def _passphrase(passphrase_file: Path | None) -> bytes | None:
    return passphrase_file.read_bytes().rstrip(b"\r\n") if passphrase_file else None


@app.command("store")
def store(
    name: Annotated[Optional[str], typer.Option("--name", help="A name to recognise it by.")] = None,
    project: Annotated[Optional[str], typer.Option(
        "--project", help="Owning project id (default \\[api_settings] default_project_id); "
        "only its listeners and pools (and admins) can use the secret.")] = None,
    pkcs12: Annotated[Optional[Path], _file(
        "--pkcs12", "A PKCS12 bundle: certificate, key and intermediates.")] = None,
    certificate: Annotated[Optional[Path], _file(
        "--certificate", "PEM (or DER) certificate; more PEM certificates after it "
        "count as intermediates.")] = None,
    private_key: Annotated[Optional[Path], _file(
        "--private-key", "Its private key, PEM or DER.")] = None,
    intermediates: Annotated[Optional[Path], _file(
        "--intermediates", "PEM intermediate certificates.")] = None,
    passphrase_file: Annotated[Optional[Path], _file(
        "--passphrase-file", "File holding the passphrase of the PKCS12 bundle or key.")] = None,
    payload_file: Annotated[Optional[Path], _file(
        "--payload-file", "A CA bundle or a certificate revocation list (PEM or DER).")] = None,
    config_file: ConfigFile = None,
    fmt: Format = OutputFormat.table,
) -> None:
    """Store a certificate (--pkcs12, or --certificate with --private-key) or a CA/CRL
    (--payload-file) and print its reference."""
    kinds = [given for given in (pkcs12, certificate, payload_file) if given is not None]
    if len(kinds) != 1 or (certificate is None) != (private_key is None):
        print_error("give one of --pkcs12 FILE, --certificate FILE --private-key FILE, or "
                    "--payload-file FILE")
        raise typer.Exit(2)
    manager = _manager(config_file)
    owner = project or config.load(config_file).api_settings.default_project_id
    with _reporting():
        if payload_file is not None:
            ref = manager.store_secret(payload_file.read_bytes(), owner, name)
        else:
            if pkcs12 is not None:
                tls = pem.from_pkcs12(pkcs12.read_bytes(), _passphrase(passphrase_file), str(pkcs12))
            else:
                assert certificate is not None and private_key is not None
                tls = pem.from_pem(certificate.read_bytes(), private_key.read_bytes(),
                                   intermediates.read_bytes() if intermediates else b"",
                                   _passphrase(passphrase_file), str(certificate))
            ref = manager.store_certificate(tls, owner, name)
        print_show(manager.show(ref).as_dict(), fmt)


@app.command("list")
def list_secrets(
    project: Annotated[Optional[str], typer.Option("--project", help="Only this project's.")] = None,
    config_file: ConfigFile = None, fmt: Format = OutputFormat.table,
) -> None:
    """List the stored secrets (never their content)."""
    manager = _manager(config_file)
    with _reporting():
        print_list([info.as_dict() for info in manager.list(project)], COLUMNS, fmt)


@app.command("show")
def show(ref: str, config_file: ConfigFile = None, fmt: Format = OutputFormat.table) -> None:
    """Show a secret: its type, owner, and a certificate's subject and expiry."""
    manager = _manager(config_file)
    with _reporting():
        print_show(manager.show(ref).as_dict(), fmt)


@app.command("delete")
def delete(refs: Annotated[list[str], typer.Argument(help="References (ids).")],
           config_file: ConfigFile = None) -> None:
    """Delete secrets that no listener or pool uses."""
    manager = _manager(config_file)
    with _reporting():
        for ref in refs:
            manager.delete(ref)


EXPIRY_COLUMNS = (("Reference", "ref"), ("Used by", "used_by"), ("Subject", "subject"),
                  ("Expires", "expires"), ("Problem", "problem"))


@app.command("expiry")
def expiry(
    within: Annotated[Optional[int], typer.Option(
        "--within", help="Only those expiring within DAYS (or unreadable).", metavar="DAYS")] = None,
    config_file: ConfigFile = None, fmt: Format = OutputFormat.table,
) -> None:
    """The certificates and CAs that listeners and pools use, from the configured
    certificate manager (local or Barbican), soonest expiry first."""
    with _reporting():
        settings = config.load(config_file)
        db = common.database(config_file)
        items = tls_expiry.in_use(db, cert_manager.load(settings, db))
    if within is not None:
        limit = utcnow() + dt.timedelta(days=within)
        items = [item for item in items if item.expires is None or item.expires < limit]
    print_list([item.as_dict() for item in items], EXPIRY_COLUMNS, fmt)
