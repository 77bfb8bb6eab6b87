"""systemd units for the services (``lbaas install-units``): one per process, grouped
under ``lbaas.target`` so that ``systemctl start|stop|reload lbaas.target`` acts on all.

- SIGTERM stops a service gracefully: a worker lets its running flows finish for
  ``[DEFAULT] graceful_shutdown_timeout`` seconds and hands the others back, so the unit
  waits that long (and a little) before SIGKILL.
- ``systemctl reload`` sends SIGHUP: the logging options are read again.
- ``KillMode=process``: amphorae (their agent, haproxy and keepalived) are started by
  the controller processes but must outlive their restart; only the service's own
  process is stopped.
- The services run as root: they make bridges, namespaces and firewall rules.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TARGET = "lbaas.target"
DEFAULT_UNIT_DIR = Path("/etc/systemd/system")


@dataclass(frozen=True)
class Unit:
    command: str  # the lbaas subcommand
    description: str
    # Processes it starts that must survive it (amphorae): stop only the main process.
    keeps_children: bool

    @property
    def name(self) -> str:
        return f"lbaas-{self.command}.service"


CONTROLLER_UNITS = (
    Unit("api", "lbaas API (Octavia v2)", keeps_children=False),
    Unit("worker", "lbaas worker (runs the flows the API queues)", keeps_children=True),
    Unit("health-manager", "lbaas health manager (heartbeats, failover)", keeps_children=True),
    Unit("housekeeping", "lbaas housekeeping (spares, cleanup, certificate rotation)",
         keeps_children=True),
)
COMPUTE_AGENT_UNIT = Unit("compute-agent", "lbaas compute agent (amphorae of this host)",
                          keeps_children=True)


def unit_text(unit: Unit, executable: Path, config_file: Path, stop_timeout: int) -> str:
    kill_mode = "KillMode=process\n" if unit.keeps_children else ""
    return (
        "[Unit]\n"
        f"Description={unit.description}\n"
        "Wants=network-online.target\n"
        "After=network-online.target postgresql.service mariadb.service "
        "rabbitmq-server.service\n"
        f"PartOf={TARGET}\n"
        "\n"
        "[Service]\n"
        "Type=exec\n"
        f"ExecStart={executable} {unit.command} --config-file {config_file}\n"
        "ExecReload=/bin/kill -HUP $MAINPID\n"
        f"TimeoutStopSec={stop_timeout}\n"
        f"{kill_mode}"
        "Restart=on-failure\n"
        "RestartSec=2\n"
        "LimitNOFILE=1048576\n"
        # An expected error (a bad option, a port taken) exits 2 with one line: restarting
        # would only repeat it.
        "RestartPreventExitStatus=2\n"
        "\n"
        "[Install]\n"
        f"WantedBy={TARGET}\n")


def target_text(units: tuple[Unit, ...]) -> str:
    return (
        "[Unit]\n"
        "Description=lbaas: Octavia-compatible load balancing\n"
        f"Wants={' '.join(unit.name for unit in units)}\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n")


def install(directory: Path, executable: Path, config_file: Path, graceful_shutdown: int,
            units: tuple[Unit, ...]) -> list[Path]:
    """Write the units (and the target that groups them) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for unit in units:
        path = directory / unit.name
        path.write_text(unit_text(unit, executable, config_file, graceful_shutdown + 15))
        written.append(path)
    target = directory / TARGET
    target.write_text(target_text(units))
    return [*written, target]
