"""Private PostgreSQL, MariaDB and RabbitMQ servers for tests: own data directory, Unix
socket (the databases) or loopback (RabbitMQ) only."""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket as socket_module
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy


def _wait_until_connects(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    engine = sqlalchemy.create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                with engine.connect():
                    return
            except sqlalchemy.exc.OperationalError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        engine.dispose()


def _initialize(command: list[str]) -> None:
    """Run a data directory's initialization; on failure, say what the tool said."""
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} exited with {result.returncode}:\n"
                           f"{result.stdout}{result.stderr}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def postgresql(workdir: Path) -> Iterator[str]:
    """A PostgreSQL server run as the ``postgres`` user; yields a URL of an empty database."""
    bindir = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])
    data, sockets = workdir / "pgdata", workdir / "pgsock"
    workdir.mkdir(parents=True, exist_ok=True)
    sockets.mkdir()
    shutil.chown(workdir, "postgres")
    shutil.chown(sockets, "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    _initialize([*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                 "--auth=trust", "-E", "UTF8"])
    process = subprocess.Popen(
        [*as_postgres, str(bindir / "postgres"), "-D", str(data), "-k", str(sockets),
         "-c", "listen_addresses=", "-c", "fsync=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        admin = f"postgresql+psycopg://postgres@/postgres?host={sockets}"
        _wait_until_connects(admin, process)
        engine = sqlalchemy.create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.exec_driver_sql("CREATE DATABASE lbaas")
        engine.dispose()
        yield f"postgresql+psycopg://postgres@/lbaas?host={sockets}"
    finally:
        _stop(process)


@contextlib.contextmanager
def mariadb(workdir: Path) -> Iterator[str]:
    """A MariaDB server with networking off; yields a URL of an empty database."""
    data, socket = workdir / "data", workdir / "mysqld.sock"
    workdir.mkdir(parents=True, exist_ok=True)
    _initialize(["mariadb-install-db", "--user=root", f"--datadir={data}",
                 "--auth-root-authentication-method=normal", "--skip-test-db"])
    process = subprocess.Popen(
        ["mariadbd", "--no-defaults", "--user=root", f"--datadir={data}", f"--socket={socket}",
         "--skip-networking", f"--pid-file={workdir / 'mysqld.pid'}",
         "--innodb-flush-log-at-trx-commit=0", "--character-set-server=utf8mb4"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        admin = f"mysql+pymysql://root@localhost/mysql?unix_socket={socket}"
        _wait_until_connects(admin, process)
        engine = sqlalchemy.create_engine(admin)
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE DATABASE lbaas CHARACTER SET utf8mb4")
        engine.dispose()
        yield f"mysql+pymysql://root@localhost/lbaas?unix_socket={socket}&charset=utf8mb4"
    finally:
        _stop(process)


def _free_port() -> int:
    with socket_module.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def rabbitmq(workdir: Path) -> Iterator[str]:
    """A private RabbitMQ node on loopback, with an Erlang port mapper (epmd) of its own;
    yields its URL as upstream's ``transport_url`` spells it."""
    port, dist_port, epmd_port = _free_port(), _free_port(), _free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "enabled_plugins").write_text("[].\n")
    (workdir / "rabbitmq.conf").write_text("")
    env = {**os.environ, "HOME": str(workdir), "ERL_EPMD_PORT": str(epmd_port),
           "RABBITMQ_NODENAME": f"lbaas{port}@localhost", "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
           "RABBITMQ_NODE_PORT": str(port), "RABBITMQ_DIST_PORT": str(dist_port),
           "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"), "RABBITMQ_LOG_BASE": str(workdir),
           "RABBITMQ_PID_FILE": str(workdir / "rabbitmq.pid"),
           "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
           "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq")}
    process = subprocess.Popen(["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    url = f"rabbit://guest:guest@127.0.0.1:{port}/"
    try:
        import kombu
        deadline = time.monotonic() + 60
        while True:
            try:
                with kombu.Connection(f"amqp://guest:guest@127.0.0.1:{port}//",
                                      connect_timeout=1) as connection:
                    connection.connect()
                break
            except (OSError, kombu.exceptions.OperationalError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        _stop(process)
        subprocess.run(["epmd", "-port", str(epmd_port), "-kill"], env=env,
                       capture_output=True, check=False)
