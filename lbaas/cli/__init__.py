"""The ``lbaas`` command."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from lbaas import api_process, config, constants, host, log, service, status_view, systemd
from lbaas import drivers as driver_registry
from lbaas.cli import certs as certs_cli
from lbaas.cli import common
from lbaas.cli import images as images_cli
from lbaas.cli import keypairs as keypairs_cli
from lbaas.cli import load_balancer as load_balancer_cli
from lbaas.cli import network as network_cli
from lbaas.cli import secrets as secret_cli
from lbaas.cli.common import ConfigFile
from lbaas.console import print_error
from lbaas.db import migrate, overview
from lbaas.db.engine import Database
from lbaas.db.models import Amphora
from lbaas.drivers.compute import netns
from lbaas.health import failover

app = typer.Typer(help="Octavia-compatible load balancing as a service.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration.", no_args_is_help=True)
amphora_app = typer.Typer(help="Amphorae.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(amphora_app, name="amphora")
app.add_typer(config_app, name="config")
app.add_typer(certs_cli.app, name="certs")
app.add_typer(secret_cli.app, name="secret")
app.add_typer(images_cli.app, name="image")
app.add_typer(keypairs_cli.app, name="keypair")
app.add_typer(load_balancer_cli.app, name="loadbalancer")
app.add_typer(network_cli.network_app, name="network")
app.add_typer(network_cli.subnet_app, name="subnet")
app.add_typer(network_cli.host_app, name="host")
console = Console(stderr=True)

def _open(config_file: Path | None, *, upgrade: bool) -> service.Services:
    log.setup(common.settings(config_file))
    return common.open_services(config_file, upgrade=upgrade)


@contextlib.contextmanager
def _serving(config_file: Path | None, *, upgrade: bool = False) -> Iterator[service.Services]:
    """A service's process: its logging, privileges and database checked, SIGHUP reloading
    the logging options; an expected error (a port taken, an option that cannot work)
    ends it with one line and exit status 2, never a traceback."""
    settings = common.settings(config_file)
    log.setup(settings)
    signal.signal(signal.SIGHUP, lambda *_: _reload_logging(config_file))
    try:
        service.check_privileges(settings)
        yield service.open_services(settings, upgrade=upgrade)
    except config.ConfigError as exc:
        common.fail(exc)


def _reload_logging(config_file: Path | None) -> None:
    """SIGHUP: the logging options read again (a bad file leaves them as they were)."""
    try:
        settings = config.load(config_file)
    except config.ConfigError as exc:
        logging.getLogger(__name__).error("SIGHUP: not reloaded: %s", exc)
        return
    log.setup(settings)
    logging.getLogger(__name__).info("SIGHUP: logging options reloaded (debug %s)",
                                     settings.DEFAULT.debug)


def _stop_on_signals(*events: threading.Event) -> None:
    """SIGINT and SIGTERM set ``events``."""
    def stop(*_: object) -> None:
        for event in events:
            event.set()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)


def _run_until_stopped(what: str) -> None:
    """Block until SIGINT or SIGTERM (the service runs on its own threads meanwhile)."""
    stopped = threading.Event()
    _stop_on_signals(stopped)
    console.print(f"{what} running; Ctrl-C stops.")
    stopped.wait()


@app.command()
def up(config_file: ConfigFile = None) -> None:
    """Start every service (API, worker, health manager, housekeeping) with the embedded
    defaults: the API in a process of its own, the others in this one."""
    with _serving(config_file, upgrade=True) as services:
        sock = service.bind_api(services.settings)
        signalled, stopped = threading.Event(), threading.Event()
        api = api_process.ApiProcess.fork(services, sock, stopped)
        _stop_on_signals(signalled, stopped)

        def reload(*_: object) -> None:
            _reload_logging(config_file)
            api.signal(signal.SIGHUP)
        signal.signal(signal.SIGHUP, reload)
        try:
            with service.running_worker(services), service.running_housekeeping(services), \
                    service.running_health_manager(services):
                where = services.settings.api_settings
                console.print(f"lbaas API listening on http://{where.bind_host}:"
                              f"{where.bind_port}/ (database "
                              f"{services.db.engine.url.render_as_string()}); Ctrl-C stops.")
                stopped.wait()
                api.stop(services.settings.DEFAULT.graceful_shutdown_timeout)
        finally:
            api.stop(0)
        if api_process.died_alone(api, signalled):
            common.fail("lbaas stopped: its API process " + api.describe_exit(), 1)
    console.print("lbaas stopped.")


@app.command()
def api(config_file: ConfigFile = None) -> None:
    """Serve the Octavia v2 API."""
    with _serving(config_file) as services:
        sock = service.bind_api(services.settings)
        settings = services.settings.api_settings
        console.print(f"lbaas API listening on http://{settings.bind_host}:{settings.bind_port}/")
        service.serve_api(services, sock)


@app.command()
def worker(config_file: ConfigFile = None) -> None:
    """Run flows for the jobs the API queues."""
    with _serving(config_file) as services, service.running_worker(services):
        _run_until_stopped("lbaas worker")


@app.command()
def housekeeping(config_file: ConfigFile = None) -> None:
    """Keep the spare pool filled, purge old DELETED rows, rotate amphora certificates."""
    with _serving(config_file) as services, service.running_housekeeping(services):
        _run_until_stopped("lbaas housekeeping")


@app.command("health-manager")
def health_manager(config_file: ConfigFile = None) -> None:
    """Receive amphora heartbeats, keep operating statuses and stats, fail over silent amphorae."""
    with _serving(config_file) as services, service.running_health_manager(services):
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


@amphora_app.command("shell", context_settings={"ignore_unknown_options": True})
def amphora_shell(
        amphora_id: Annotated[str, typer.Argument(help="The amphora (its id).")],
        command: Annotated[Optional[list[str]], typer.Argument(
            help="What to run instead of a shell (after --).")] = None,
        config_file: ConfigFile = None) -> None:
    """Root shell inside a running amphora on this host, for trouble-shooting (as ssh into
    an amphora is upstream): `lbaas amphora shell ID -- ss -tlnp` runs one command."""
    services = _open(config_file, upgrade=False)
    with services.db.read() as session:
        amphora = session.get(Amphora, amphora_id)
        if amphora is None or amphora.status == constants.DELETED:
            common.fail(f"no amphora {amphora_id}", 1)
        compute_id, where = amphora.compute_id, amphora.cached_zone
    try:
        argv = netns.entering(compute_id or "", command or [os.environ.get("SHELL", "/bin/sh")],
                              services.settings.haproxy_amphora.base_path)
    except netns.ComputeError as exc:
        common.fail(f"{exc}: amphora {amphora_id} runs "
                    + (f"on host {where}; run this there" if where else "on no host"), 1)
    os.execvp(argv[0], argv)


@app.command()
def down(config_file: ConfigFile = None,
         everything: Annotated[bool, typer.Option(
             "--all", help="Also remove the spare amphorae and the management bridge "
             "(with lbaas stopped and no load balancer left).")] = False,
         yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False) -> None:
    """Remove what `lbaas up` installed on the host: the firewall rules (amphorae keep
    running); with --all also the spares and the management bridge."""
    settings = common.settings(config_file)
    if everything:
        _down_all(config_file, yes)
    host.down(settings)
    console.print("lbaas firewall rules removed.")


def _down_all(config_file: Path | None, yes: bool) -> None:
    services = _open(config_file, upgrade=False)
    plan = host.teardown_plan(services.db, services.settings)
    if plan.running:
        print_error(f"lbaas still runs ({', '.join(plan.running)}) and would rebuild what "
                    "this removes; stop it first (`systemctl stop lbaas.target`, or Ctrl-C "
                    "on `lbaas up`)")
        raise typer.Exit(1)
    if plan.serving:
        print_error(f"{len(plan.serving)} amphora(e) still serve load balancers and would be "
                    "cut off from their controller; delete those load balancers first, or run "
                    "`lbaas down` without --all")
        raise typer.Exit(1)
    console.print(f"This removes {len(plan.spares)} spare amphora(e) and the management "
                  f"bridge {plan.bridge}.")
    if not yes:
        typer.confirm("Remove them?", abort=True)
    drivers = driver_registry.load(services.settings, services.db)
    removed = host.tear_down(services.settings, services.db, drivers)
    console.print(f"removed {len(removed)} spare amphora(e) and the bridge {plan.bridge}.")


@app.command("install-units")
def install_units(
        config_file: Annotated[Path, typer.Option(
            "--config-file", help="The configuration file the services read.")
        ] = config.DEFAULT_CONFIG_FILE,
        unit_dir: Annotated[Path, typer.Option(
            "--unit-dir", help="Where to write the units.")] = systemd.DEFAULT_UNIT_DIR,
        compute_agent: Annotated[bool, typer.Option(
            "--compute-agent", help="Install the compute agent's unit (on an amphora host) "
            "instead of the controller's.")] = False) -> None:
    """Install systemd units for the services, grouped under lbaas.target."""
    if not config_file.is_file():
        print_error(f"{config_file} does not exist; the services need it: write it first "
                    f"(`lbaas config show --unmasked > {config_file}`, then edit)")
        raise typer.Exit(2)
    settings = common.settings(config_file)
    for warning in settings.warnings:
        console.print(f"warning: {warning}", markup=False, highlight=False)
    executable = Path(sys.executable).with_name("lbaas")
    units = (systemd.COMPUTE_AGENT_UNIT,) if compute_agent else systemd.CONTROLLER_UNITS
    written = systemd.install(unit_dir, executable, config_file.resolve(),
                              settings.DEFAULT.graceful_shutdown_timeout, units)
    for path in written:
        typer.echo(path)
    console.print(f"Start them with: systemctl daemon-reload && systemctl enable --now "
                  f"{systemd.TARGET}", markup=False, highlight=False)


@app.command("amphora-agent")
def amphora_agent(config_file: Annotated[Path, typer.Option(
        "--config-file", help="The agent's amphora-agent.conf (the compute driver writes it).")]) -> None:
    """Run the amphora agent in the foreground, inside an amphora (as `python -m lbaas.amphora.agent`)."""
    from lbaas.amphora.agent.__main__ import main  # the agent imports only the standard library

    main(["--config-file", str(config_file)])


@app.command("compute-agent")
def compute_agent(config_file: ConfigFile = None) -> None:
    """Run the compute agent of an amphora host: it builds and removes the amphorae the
    controllers place here, over mutual TLS (\\[compute_agent] options)."""
    from lbaas.compute_agent import run

    settings = common.settings(config_file)
    log.setup(settings)
    try:
        agent = run.prepare(settings)
    except config.ConfigError as exc:
        print_error(exc)
        raise typer.Exit(2) from exc
    console.print(f"lbaas compute agent of host {settings.DEFAULT.host} listening on "
                  f"https://{agent.bind_host}:{agent.bind_port}/ (mutual TLS)")
    run.serve(agent)


@app.command()
def status(config_file: ConfigFile = None,
           output: Annotated[str, typer.Option(
               "-f", "--format", help="table (one screen) or json.")] = "table") -> None:
    """The deployment at a glance: services and their last activity, hosts, amphorae and
    their last heartbeat, objects by status, jobs, certificates, what needs attention."""
    if output not in ("table", "json"):
        print_error(f"unknown format {output}; choose table or json")
        raise typer.Exit(2)
    services = _open(config_file, upgrade=False)
    with services.db.read() as session:
        view = overview.read(session, services.settings)
    if output == "json":
        typer.echo(json.dumps(status_view.as_json(view), indent=2))
    else:
        Console().print(status_view.render(view))


@db_app.command("upgrade")
def db_upgrade(config_file: ConfigFile = None,
               revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Create or migrate the database schema."""
    db = Database(common.settings(config_file).database_url)
    migrate.upgrade(db.engine, revision)
    console.print(f"database at revision {migrate.current_revision(db.engine)}")


@config_app.command("show")
def config_show(config_file: ConfigFile = None,
                unmasked: Annotated[bool, typer.Option(
                    "--unmasked", help="Print secrets as they are (to save the output as a "
                    "configuration file); keep it 0600.")] = False) -> None:
    """Print the effective configuration (secrets masked unless --unmasked), and on standard
    error which file it came from and what in it was ignored."""
    settings = common.settings(config_file)
    console.print(f"# configuration file: {settings.source or 'none (built-in defaults)'}",
                  markup=False, highlight=False)
    for warning in settings.warnings:
        console.print(f"# {warning}", markup=False, highlight=False)
    typer.echo(settings.to_ini(unmasked=unmasked))
