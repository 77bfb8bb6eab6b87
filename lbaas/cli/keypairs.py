"""``lbaas keypair ...``: the ssh public keys amphorae may accept (as ``openstack keypair``
for Nova); ``[controller_worker] amp_ssh_key_name`` picks one (lbaas.db.keypairs)."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from lbaas.cli import common
from lbaas.cli.common import ConfigFile, Format, OutputFormat, print_list, print_show
from lbaas.db import keypairs
from lbaas.db.models import Keypair

app = typer.Typer(help="ssh keypairs for amphorae (\\[controller_worker] amp_ssh_key_name).",
                  no_args_is_help=True)
Name = Annotated[str, typer.Argument(help="The keypair's name.")]
COLUMNS = (("Name", "name"), ("Fingerprint", "fingerprint"), ("Created", "created_at"))

_reporting = functools.partial(common.reporting, keypairs.KeypairError)


def _shown(keypair: Keypair) -> dict[str, Any]:
    return {"name": keypair.name, "fingerprint": keypair.fingerprint,
            "created_at": keypair.created_at.isoformat(timespec="seconds")
            if keypair.created_at else None, "public_key": keypair.public_key}


@app.command("create")
def create(name: Name,
           public_key: Annotated[Optional[Path], typer.Option(  # noqa: UP045 (typer)
               "--public-key", help="An OpenSSH public key file (.pub); without it a new "
               "ed25519 key is made and its private key printed, once.")] = None,
           config_file: ConfigFile = None) -> None:
    """Register a public key (or make a keypair and print its private key)."""
    db = common.database(config_file)
    with _reporting():
        if public_key is not None:
            try:
                line = public_key.read_text()
            except OSError as exc:
                raise keypairs.KeypairError(f"cannot read {public_key}: {exc.strerror}") from exc
            except UnicodeDecodeError as exc:
                raise keypairs.KeypairError(f"{public_key} is not text: give the .pub file "
                                            "of an OpenSSH key") from exc
            keypair = keypairs.create(db, name, line)
            typer.echo(f"keypair {name} registered ({keypair.fingerprint})")
            return
        private, public = keypairs.generate()
        keypairs.create(db, name, public)
        typer.echo(private, nl=False)  # as `openstack keypair create NAME`: save it, 0600


@app.command("list")
def list_keypairs(config_file: ConfigFile = None, fmt: Format = OutputFormat.table) -> None:
    print_list([_shown(k) for k in keypairs.listed(common.database(config_file))], COLUMNS, fmt)


@app.command("show")
def show(name: Name, config_file: ConfigFile = None, fmt: Format = OutputFormat.table) -> None:
    with _reporting():
        print_show(_shown(keypairs.get(common.database(config_file), name)), fmt)


@app.command("delete")
def delete(name: Name, config_file: ConfigFile = None,
           force: Annotated[bool, typer.Option(
               "--force", help="Even the one amp_ssh_key_name names.")] = False) -> None:
    """Remove a keypair; amphorae built with it keep accepting it until replaced."""
    settings = common.settings(config_file)
    if name == settings.controller_worker.amp_ssh_key_name and not force:
        common.fail(f"keypair {name} is the one [controller_worker] amp_ssh_key_name names: "
                    "every amphora build would fail without it; change the option first, "
                    "or give --force", 1)
    with _reporting():
        keypairs.delete(common.database(config_file), name)
    typer.echo(f"keypair {name} deleted")
