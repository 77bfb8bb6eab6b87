"""Logging as operators expect of an OpenStack service.

Every service logs to standard error (in the foreground), or to ``[DEFAULT] log_file``
(reopened when logrotate moves it), or to syslog (``use_syslog``, ``use_journal``:
``/dev/log``, which journald serves on a systemd host). ``debug`` lowers the level to
DEBUG; without it, libraries' per-call lines (httpx, uvicorn's access log, SQLAlchemy)
stay out. Each line carries the request id of the work it belongs to (``request_id``):
the API's ``x-openstack-request-id``, which the jobs it queues carry to the worker.
"""
from __future__ import annotations

import contextvars
import logging
import logging.handlers
import sys
import uuid
from typing import Any

from lbaas.config import Settings

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s [%(request_id)s] %(message)s"
SYSLOG_FORMAT = "lbaas %(name)s [%(request_id)s] %(levelname)s %(message)s"
CHATTY = ("httpx", "httpcore", "uvicorn.access", "alembic.runtime.migration", "kombu", "amqp")
# SQL is logged only as upstream's [database] connection_debug asks (oslo.db: 50 the
# statements, 100 their rows too), never for debug alone: at DEBUG SQLAlchemy logs every
# row, which took 45 % of a list of 1,000 load balancers.
SQL_LOGGER = "sqlalchemy.engine"


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


class _RequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class _StandardError(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is when a record comes, not as it was at setup: a
    command run inside another program (a test runner) may swap it and close the old one
    while this process's threads still log."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _handler(settings: Settings) -> logging.Handler:
    options = settings.DEFAULT
    if options.use_syslog or options.use_journal:
        facility = logging.handlers.SysLogHandler.facility_names.get(
            options.syslog_log_facility.lower().removeprefix("log_"),
            logging.handlers.SysLogHandler.LOG_USER)
        handler: logging.Handler = logging.handlers.SysLogHandler("/dev/log", facility)
        handler.setFormatter(logging.Formatter(SYSLOG_FORMAT))
    elif options.log_file:
        options.log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.WatchedFileHandler(options.log_file)
        handler.setFormatter(logging.Formatter(FORMAT))
    else:
        handler = _StandardError()
        handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(_RequestId())
    return handler


def setup(settings: Settings) -> None:
    """Configure this process's logging from ``settings`` (again, on SIGHUP), and report
    what the configuration ignored."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(_handler(settings))
    apply_level(settings)
    for warning in settings.warnings:
        logging.getLogger("lbaas.config").warning(warning)


def apply_level(settings: Settings) -> None:
    debug = settings.DEFAULT.debug
    logging.getLogger().setLevel(logging.DEBUG if debug else logging.INFO)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)
    verbosity = settings.database.connection_debug
    logging.getLogger(SQL_LOGGER).setLevel(logging.DEBUG if verbosity >= 100 else
                                           logging.INFO if verbosity >= 50 else logging.WARNING)
