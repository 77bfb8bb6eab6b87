"""The ``lbaas`` command."""
from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from lbaas import config, host, service
from lbaas.console import print_error
from lbaas.certs import cli as certs_cli
from lbaas.cert_manager import cli as secret_cli
from lbaas.db import migrate
from lbaas.db.engine import Database
from lbaas.health import failover
from lbaas.network import cli as network_cli

app = typer.Typer(help="Octavia-compatible load balancing as a service.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration.", no_args_is_help=True)
amphora_app = typer.Typer(help="Amphorae.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(amphora_app, name="amphora")
app.add_typer(config_app, name="config")
app.add_typer(certs_cli.app, name="certs")
app.add_typer(secret_cli.app, name="secret")
app.add_typer(network_cli.network_app, name="network")
app.add_typer(network_cli.subnet_app, name="subnet")
app.add_typer(network_cli.host_app, name="host")
console = Console(stderr=True)

ConfigFile = Annotated[Optional[Path], typer.Option(
    "--config-file", help=f"INI file with octavia.conf sections (default {config.DEFAULT_CONFIG_FILE}).")]


def _settings(config_file: Path | None) -> config.Settings:
    try:
        return config.load(config_file)
    except config.ConfigError as exc:
        print_error(exc)
        raise typer.Exit(2) from exc


def _open(config_file: Path | None, *, upgrade: bool) -> service.Services:
    settings = _settings(config_file)
    logging.basicConfig(level=logging.DEBUG if settings.DEFAULT.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return service.open_services(settings, upgrade=upgrade)
    except config.ConfigError as exc:
        print_error(exc)
        raise typer.Exit(2) from exc


def _run_until_stopped(what: str) -> None:
    """Block until SIGINT or SIGTERM (the service runs on its own threads meanwhile)."""
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    console.print(f"{what} running; Ctrl-C stops.")
    stopped.wait()


@app.command()
def up(config_file: ConfigFile = None) -> None:
    """Start every service in one process (API, worker, housekeeping) with the embedded defaults."""
    services = _open(config_file, upgrade=True)
    api = services.settings.api_settings
    console.print(f"lbaas API listening on http://{api.bind_host}:{api.bind_port}/ "
                  f"(database {services.db.engine.url.render_as_string()}); Ctrl-C stops.")
    with service.running_worker(services), service.running_housekeeping(services), \
            service.running_health_manager(services):
        service.serve_api(services)
    console.print("lbaas stopped.")


@app.command()
def api(config_file: ConfigFile = None) -> None:
    """Serve the Octavia v2 API."""
    services = _open(config_file, upgrade=False)
    settings = services.settings.api_settings
    console.print(f"lbaas API listening on http://{settings.bind_host}:{settings.bind_port}/")
    service.serve_api(services)


@app.command()
def worker(config_file: ConfigFile = None) -> None:
    """Run flows for the jobs the API queues."""
    services = _open(config_file, upgrade=False)
    with service.running_worker(services):
        _run_until_stopped("lbaas worker")


@app.command()
def housekeeping(config_file: ConfigFile = None) -> None:
    """Keep the spare pool filled, purge old DELETED rows, rotate amphora certificates."""
    services = _open(config_file, upgrade=False)
    with service.running_housekeeping(services):
        _run_until_stopped("lbaas housekeeping")


@app.command("health-manager")
def health_manager(config_file: ConfigFile = None) -> None:
    """Receive amphora heartbeats, keep operating statuses and stats, fail over silent amphorae."""
    services = _open(config_file, upgrade=False)
    with service.running_health_manager(services):
        _run_until_stopped("lbaas health manager")


@amphora_app.command("failover-resume")
def amphora_failover_resume(
        config_file: ConfigFile = None,
        amphora_id: Annotated[Optional[list[str]], typer.Argument(
            help="Amphorae to resume (default: every FAILOVER_STOPPED amphora).")] = None) -> None:
    """Resume automatic failover after the storm guard stopped it: FAILOVER_STOPPED
    amphorae become ALLOCATED again; those still silent are failed over now."""
    services = _open(config_file, upgrade=False)
    result = failover.resume(services.db, services.settings, amphora_id or None)
    for item in result.started:
        typer.echo(f"{item}: failover started")
    for item in result.finished:
        typer.echo(f"{item}: heartbeats are back, ALLOCATED again")
    not_stopped = set(amphora_id or []) - {*result.started, *result.finished}
    if not_stopped:
        print_error(f"not FAILOVER_STOPPED, nothing to resume: {', '.join(sorted(not_stopped))}")
        raise typer.Exit(1)
    if not result.started and not result.finished:
        console.print("no FAILOVER_STOPPED amphora to resume")


@app.command()
def down(config_file: ConfigFile = None) -> None:
    """Remove what `lbaas up` installed on the host (the firewall rules)."""
    host.down(_settings(config_file))
    console.print("lbaas firewall rules removed.")


@app.command("amphora-agent")
def amphora_agent(config_file: Annotated[Path, typer.Option(
        "--config-file", help="The agent's amphora-agent.conf (the compute driver writes it).")]) -> None:
    """Run the amphora agent in the foreground, inside an amphora (as `python -m lbaas.amphora.agent`)."""
    from lbaas.amphora.agent.__main__ import main  # the agent imports only the standard library

    main(["--config-file", str(config_file)])


@app.command("compute-agent")
def compute_agent(config_file: ConfigFile = None) -> None:
    """Run the compute agent of an amphora host: it builds and removes the amphorae the
    controllers place here, over mutual TLS ([compute_agent] options)."""
    from lbaas.compute_agent import run

    settings = _settings(config_file)
    logging.basicConfig(level=logging.DEBUG if settings.DEFAULT.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        agent = run.prepare(settings)
    except config.ConfigError as exc:
        print_error(exc)
        raise typer.Exit(2) from exc
    console.print(f"lbaas compute agent of host {settings.DEFAULT.host} listening on "
                  f"https://{agent.bind_host}:{agent.bind_port}/ (mutual TLS)")
    run.serve(agent)


@db_app.command("upgrade")
def db_upgrade(config_file: ConfigFile = None,
               revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Create or migrate the database schema."""
    db = Database(_settings(config_file).database_url)
    migrate.upgrade(db.engine, revision)
    console.print(f"database at revision {migrate.current_revision(db.engine)}")


@config_app.command("show")
def config_show(config_file: ConfigFile = None) -> None:
    """Print the effective configuration."""
    typer.echo(_settings(config_file).to_ini())
