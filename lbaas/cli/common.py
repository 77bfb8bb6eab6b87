"""What every ``lbaas`` command shares: the ``--config-file`` and ``-f/--format``
options, reading the configuration and the service's database with one-line errors, and
printing objects as a table or JSON."""
from __future__ import annotations

import contextlib
import enum
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer
from rich.table import Table

from lbaas import config, console, service
from lbaas.console import print_error
from lbaas.db.engine import Database


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"


ConfigFile = Annotated[Optional[Path], typer.Option(  # noqa: UP045 (typer reads Optional)
    "--config-file",
    help=f"INI file with octavia.conf sections (default {config.DEFAULT_CONFIG_FILE}).")]
Format = Annotated[OutputFormat, typer.Option("-f", "--format", help="Output format.")]


def fail(exc: Exception | str, code: int = 2) -> NoReturn:
    """One line on standard error and exit ``code`` (2: the configuration or the call)."""
    print_error(exc)
    raise typer.Exit(code)



@contextlib.contextmanager
def reporting(*expected: type[Exception]) -> Iterator[None]:
    """One line instead of a traceback: an ``expected`` error (the command's own: a
    network in use, a certificate that does not parse) exits 1, a configuration error 2."""
    try:
        yield
    except config.ConfigError as exc:
        fail(exc)
    except expected as exc:
        fail(exc, 1)

def settings(config_file: Path | None) -> config.Settings:
    try:
        return config.load(config_file)
    except config.ConfigError as exc:
        fail(exc)


def open_services(config_file: Path | None, *, upgrade: bool) -> service.Services:
    """The configured services; without ``upgrade`` the database must exist already."""
    loaded = settings(config_file)
    try:
        return service.open_services(loaded, upgrade=upgrade)
    except config.ConfigError as exc:
        fail(exc)


def database(config_file: Path | None) -> Database:
    """The running service's database (never a new one)."""
    return open_services(config_file, upgrade=False).db


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(_cell(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}={_cell(item)}" for key, item in value.items())
    return str(value).lower() if isinstance(value, bool) else str(value)


def _table(headers: Sequence[str]) -> Table:
    """A table that wraps long values (ids, addresses) instead of cutting them short."""
    table = Table()
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def print_show(item: dict[str, Any], fmt: OutputFormat) -> None:
    """One object: a Field/Value table, or a JSON object."""
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(item, indent=2))
        return
    table = _table(["Field", "Value"])
    for key in sorted(item):
        table.add_row(key, _cell(item[key]))
    console.output().print(table)


def print_list(items: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]],
               fmt: OutputFormat) -> None:
    """Rows with the given (header, field) columns: a table, or a JSON list keyed by header."""
    rows = [{header: item[key] for header, key in columns} for item in items]
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = _table([header for header, _ in columns])
    for row in rows:
        table.add_row(*(_cell(value) for value in row.values()))
    console.output().print(table)
