"""Controllers benchmark: create-to-ACTIVE with the API and the worker in separate
processes, against ``lbaas up`` (both in one), side by side.

With the no-op drivers (no amphora: what is measured is the controllers' own work and
how fast a job reaches a worker), ``--count`` load balancers are created one after the
other, each ``POST`` followed by ``GET``s back to back until it is ``ACTIVE``, against:

1. ``lbaas up`` on SQLite: the API in the process it forks, the worker woken by the
   host's job bell (``lbaas.controller.wakeups.LocalBell``);
2. ``lbaas api`` + ``lbaas worker`` on SQLite: the same bell between two commands;
3. PostgreSQL, the worker as on another host (a state path of its own, so no bell): it
   LISTENs, the job's transaction NOTIFYs;
4. the same on MariaDB with RabbitMQ (``[DEFAULT] transport_url``);
5. the same on MariaDB without RabbitMQ: the worker polls (``job_poll_interval``, 0.5 s).

The database servers and RabbitMQ are private ones started for the run (the tests'
``tests/db/servers.py``), on Unix sockets or loopback, removed at the end.
Run as root (the PostgreSQL server runs as the postgres user) from the repository root:
``.venv/bin/python bench/controllers_bench.py``.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from api_bench import (
    Target,
    client,
    create_to_active,
    free_port,
    lbaas_command,
    machine,
    percentile,
    stop,
    wait_until_serving,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.db import servers  # noqa: E402 - the private servers the tests start

NOOP = ("[controller_worker]\ncompute_driver = compute_noop_driver\n"
        "network_driver = network_noop_driver\namphora_driver = amphora_noop_driver\n"
        "[certificates]\ncert_generator = cert_noop_generator\n")


def write_config(workdir: Path, port: int, database: str = "", transport: str = "",
                 name: str = "") -> Path:
    config = workdir / f"lbaas{name}.conf"
    config.write_text(f"[DEFAULT]\nstate_path = {workdir / ('state' + name)}\n"
                      + (f"transport_url = {transport}\n" if transport else "")
                      + f"[api_settings]\nbind_port = {port}\n"
                      + (f"[database]\nconnection = {database}\n" if database else "") + NOOP)
    return config


@contextlib.contextmanager
def services(workdir: Path, commands: list[str], database: str = "",
             transport: str = "", apart: bool = False) -> Iterator[int]:
    """``lbaas <command>`` for each of ``commands`` on one configuration (``apart``: the
    ones after the first with a state path of their own, as on another host); yields the
    port."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = write_config(workdir, port, database, transport)
    other = write_config(workdir, port, database, transport, "-apart") if apart else config
    environ = {key: value for key, value in os.environ.items() if not key.startswith("LBAAS__")}
    subprocess.run([*lbaas_command(), "db", "upgrade", "--config-file", str(config)],
                   env=environ, check=True, capture_output=True)
    log = workdir / "lbaas.log"
    processes = []
    try:
        with log.open("w") as output:
            for index, command in enumerate(commands):
                processes.append(subprocess.Popen(
                    [*lbaas_command(), command, "--config-file", str(other if index else config)],
                    env=environ,
                    stdout=output, stderr=subprocess.STDOUT, start_new_session=True))
        wait_until_serving(port, processes[0], log)
        yield port
    finally:
        for process in processes:
            stop(process)


def measure(port: int, count: int) -> list[float]:
    with client(port) as api:
        create_to_active(api, -1)  # warm-up: connections, caches, the first claim
        return [create_to_active(api, index)[1] for index in range(count)]


def run(workdir: Path, count: int) -> list[tuple[str, list[float]]]:
    results = []

    def case(name: str, commands: list[str], database: str = "", transport: str = "") -> None:
        with services(workdir / str(len(results)), commands, database, transport,
                      apart=bool(database)) as port:
            samples = measure(port, count)
        results.append((name, samples))
        print(f"  {name:<46} p50 {statistics.median(samples) * 1000:7.1f} ms, "
              f"p90 {percentile(samples, 90) * 1000:7.1f} ms", flush=True)

    case("lbaas up, SQLite (API forked, bell)", ["up"])
    case("lbaas api + worker, SQLite (bell)", ["api", "worker"])
    # Its own directory: the server runs as the postgres user, who cannot enter ``workdir``.
    with tempfile.TemporaryDirectory(prefix="lbaas-bench-pg-") as pg, \
            servers.postgresql(Path(pg)) as url:
        case("api + worker apart, PostgreSQL (NOTIFY)", ["api", "worker"], url)
    with servers.mariadb(workdir / "mariadb") as url, servers.rabbitmq(workdir / "mq") as mq:
        case("api + worker apart, MariaDB + RabbitMQ", ["api", "worker"], url, mq)
        case("api + worker apart, MariaDB (poll)", ["api", "worker"], url)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50,
                        help="load balancers created one after the other per case (default 50)")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"create-to-ACTIVE, {args.count} sequential creates per case (no-op drivers)")
    with tempfile.TemporaryDirectory(prefix="lbaas-bench-") as tmp:
        results = run(Path(tmp), args.count)
    print()  # figures to compare, no target (issue 10 asks for the measurement)
    for name, samples in results:
        print(Target(f"{name}: p50", statistics.median(samples) * 1000, "ms", "-", True).line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
