"""``lbaas certs``: where the certificate material is, and a copy of it for disaster recovery."""
from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from lbaas import config, console, drivers
from lbaas.certs import backup, store, tls
from lbaas.cli import common
from lbaas.cli.common import ConfigFile, Format, OutputFormat
from lbaas.controller import ca_rotation
from lbaas.controller.flow import FlowContext

app = typer.Typer(help="The two CAs and the controller's client certificate.",
                  no_args_is_help=True)


@app.command("show")
def show(config_file: ConfigFile = None, output: Format = OutputFormat.table) -> None:
    """Print where each certificate and key is, and when the certificates expire."""
    settings = common.settings(config_file)
    try:
        rows = [_describe(entry) for entry in store.resolve(settings).entries()]
    except config.ConfigError as exc:
        common.fail(exc)
    if output is OutputFormat.json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("name", "path", "source", "expires", "option")
    table.columns[1].overflow = "fold"
    for row in rows:
        expires = (row["expires"] or "-") if row["exists"] else "missing"
        table.add_row(row["name"], row["path"], row["source"], expires, row["option"])
    console.output().print(table)


@app.command("export")
def export(directory: Annotated[Path, typer.Argument(help="Where to copy (created 0700).")],
           config_file: ConfigFile = None) -> None:
    """Copy the CA certificates and keys into DIRECTORY, for disaster recovery.

    The controller's certificate is copied too; every file is written 0600.
    """
    settings = common.settings(config_file)
    try:
        copied = store.export(settings, directory)
    except config.ConfigError as exc:
        common.fail(exc)
    for path in copied:
        typer.echo(path)
    if settings.certificates.ca_private_key_passphrase:
        typer.echo("The CA keys are encrypted with [certificates] ca_private_key_passphrase; "
                   "keep the passphrase apart from this copy.", err=True)


PassphraseFile = Annotated[Path | None, typer.Option(
    "--passphrase-file", help="Read the archive's passphrase from the first line of this "
                              "file (else it is asked for).")]


def _passphrase(path: Path | None, confirm: bool) -> str:
    if path is None:
        text: str = typer.prompt("Archive passphrase", hide_input=True,
                                 confirmation_prompt=confirm)
        return text
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        common.fail(f"cannot read {path}: {exc.strerror}")
    return lines[0] if lines else ""


@app.command("backup")
def backup_command(archive: Annotated[Path, typer.Argument(help="The file to write (0600).")],
                   passphrase_file: PassphraseFile = None,
                   config_file: ConfigFile = None) -> None:
    """Write both CAs, their keys and the controller's certificate into ARCHIVE, encrypted
    with a passphrase (scrypt, AES-256-GCM): keep it, and the passphrase, apart."""
    settings = common.settings(config_file)
    with common.reporting():
        names = backup.backup(settings, archive, _passphrase(passphrase_file, confirm=True))
    typer.echo(f"{archive}: {', '.join(names)}")


@app.command("restore")
def restore_command(archive: Annotated[Path, typer.Argument(help="A `certs backup` archive.")],
                    passphrase_file: PassphraseFile = None,
                    replace: Annotated[bool, typer.Option(
                        "--replace", help="Overwrite files that exist with other content.")]
                    = False,
                    config_file: ConfigFile = None) -> None:
    """Put the files of ARCHIVE where the configuration expects them, and check them as a
    service start would; run it before starting the services on a rebuilt controller."""
    settings = common.settings(config_file)
    with common.reporting():
        written = backup.restore(settings, archive, _passphrase(passphrase_file, confirm=False),
                                 replace)
    for path in written:
        typer.echo(path)
    if not written:
        typer.echo("every file already had the archive's content", err=True)


@app.command("issue-host")
def issue_host(host: Annotated[str, typer.Argument(help="The compute host's name ([DEFAULT] "
                                                       "host of its compute agent).")],
               directory: Annotated[Path, typer.Argument(help="Where to write (created 0700).")],
               config_file: ConfigFile = None,
               days: Annotated[int, typer.Option(min=1, help="How long it is valid.")] =
               store.HOST_CERT_VALIDITY_DAYS) -> None:
    """Write a compute agent's certificate (from the server CA) and the client CA into
    DIRECTORY; copy them to the host as its \\[compute_agent] server_cert and client_ca."""
    settings = common.settings(config_file)
    try:
        written = store.issue_host(settings, tls.compute_agent_identity(host), directory, days)
    except (config.ConfigError, ValueError) as exc:
        common.fail(exc)
    for path in written:
        typer.echo(path)


class WhichCa(str, enum.Enum):
    server = "server"
    client = "client"


@app.command("rotate-ca")
def rotate_ca(which: Annotated[WhichCa, typer.Argument(help="server: signs amphorae's "
                                                       "certificates; client: the controllers'.")],
              config_file: ConfigFile = None,
              yes: Annotated[bool, typer.Option(
                  "--yes", help="Rotate although compute hosts are registered (their "
                  "certificates must then be issued and copied again).")] = False) -> None:
    """Replace a generated CA without failing any amphora over: the new CA is trusted
    beside the old one, certificates are reissued by it, then the old one is dropped.
    Interrupted (an amphora that does not answer), it says why; run it again to resume."""
    services = common.open_services(config_file, upgrade=False)
    computes = ca_rotation.compute_hosts(services.db)
    if computes and not yes:
        common.fail(f"compute host(s) {', '.join(computes)} use certificates of the current "
                    "CAs: after the rotation issue theirs again (lbaas certs issue-host) and "
                    "copy them over; give --yes to go on", 1)
    with common.reporting(ca_rotation.RotationStopped):
        context = FlowContext(db=services.db, settings=services.settings,
                              drivers=drivers.load(services.settings, services.db))
        rotate = ca_rotation.rotate_server if which is WhichCa.server else ca_rotation.rotate_client
        rotate(context, typer.echo)


def _describe(entry: store.Entry) -> dict[str, Any]:
    expires = store.expiry(entry.path) if entry.holds_certificate else None
    return {
        "name": entry.name,
        "path": str(entry.path),
        "source": "generated" if entry.generated else "supplied",
        "option": entry.option,
        "exists": entry.path.exists(),
        "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ") if expires else None,
    }
