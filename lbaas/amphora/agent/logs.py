"""The amphora's logs: what rsyslog does in upstream's amphora image.

haproxy logs to a Unix datagram socket in the amphora's directory (``log <socket>`` in
its global section): tenant flow logs on facility ``local<user_log_facility>``, its own
notices on ``local<administrative_log_facility>``. This agent thread reads them and

- keeps them on disk, bounded (``tenant.log`` and ``admin.log``, rotated at
  ``log_max_bytes`` with ``log_backup_count`` old files), unless
  ``disable_local_log_storage``;
- forwards each message as it came (an RFC 3164 syslog line) to every receiver of
  ``tenant_log_targets`` or ``admin_log_targets``, over UDP or TCP (``log_protocol``;
  on TCP one connection per receiver, newline-framed, dropped messages counted rather
  than blocking haproxy: the socket buffer is the only queue).
"""
from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import re
import socket
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)
SOCKET_NAME = "log.sock"
LOCAL0 = 16  # syslog facility code of local0
_PRI = re.compile(rb"^<(\d{1,3})>")


@dataclass(frozen=True)
class LogOffload:
    """Where the amphora's logs go (upstream's ``[amphora_agent]`` log options)."""

    admin_log_targets: tuple[str, ...] = ()
    tenant_log_targets: tuple[str, ...] = ()
    user_log_facility: int = 0
    administrative_log_facility: int = 1
    log_protocol: str = "UDP"
    disable_local_log_storage: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogOffload:
        """From its JSON form (``dataclasses.asdict``; lists for the targets)."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {key: tuple(value) if isinstance(value, list) else value
                                  for key, value in data.items() if key in known}
        return cls(**values)


def facility(message: bytes) -> int | None:
    """The syslog facility of a message (``<PRI>`` = facility * 8 + severity)."""
    match = _PRI.match(message)
    return int(match.group(1)) >> 3 if match else None


def _address(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)


@dataclass
class _Receiver:
    """One syslog receiver; its socket (a TCP connection) is made on first use and again
    after an error."""

    target: str
    protocol: str
    failing: bool = False  # logged once, until a message goes through again
    _sock: socket.socket | None = field(default=None, repr=False)  # UDP, or a TCP connection

    def send(self, message: bytes) -> None:
        """One socket per receiver, kept: this runs for every request a listener logs."""
        host, port = _address(self.target)
        try:
            if self.protocol == "UDP":
                if self._sock is None:
                    family = socket.AF_INET6 if ":" in host else socket.AF_INET
                    self._sock = socket.socket(family, socket.SOCK_DGRAM)
                self._sock.sendto(message, (host, port))
                return
            if self._sock is None:
                self._sock = socket.create_connection((host, port), timeout=2)
            self._sock.sendall(message.rstrip(b"\n") + b"\n")
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None


class LogForwarder:
    """Reads haproxy's log socket on a thread; stores and forwards what it reads."""

    def __init__(self, directory: Path, offload: LogOffload, max_bytes: int,
                 backup_count: int) -> None:
        self.path = directory / SOCKET_NAME
        self.offload = offload
        self.dropped = 0
        self._files: dict[str, logging.Handler] = {}
        directory.mkdir(parents=True, exist_ok=True)
        if not offload.disable_local_log_storage:
            for kind in ("tenant", "admin"):
                handler = logging.handlers.RotatingFileHandler(
                    directory / f"{kind}.log", maxBytes=max_bytes, backupCount=backup_count)
                handler.setFormatter(logging.Formatter("%(message)s"))
                self._files[kind] = handler
        self._receivers = {
            "tenant": [_Receiver(t, offload.log_protocol) for t in offload.tenant_log_targets],
            "admin": [_Receiver(t, offload.log_protocol) for t in offload.admin_log_targets]}
        self._stopped = threading.Event()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._sock.bind(str(self.path))
        # haproxy writes as its own user once it has dropped root: it may reach the socket
        # (search, not list, the amphora's directory; its files stay 0600) and write to it.
        os.chmod(self.path, 0o666)
        directory.chmod(directory.stat().st_mode | 0o011)

    def start(self) -> None:
        threading.Thread(target=self._run, name="log-forwarder", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                message = self._sock.recv(65536)
            except OSError:  # closed by stop()
                return
            if self._stopped.is_set():
                return
            if message:
                self.handle(message)

    def stop(self) -> None:
        """Stop reading (the socket is shut down, which wakes the thread) and close the
        files and receivers' connections."""
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        for handler in self._files.values():
            handler.close()
        for receivers in self._receivers.values():
            for receiver in receivers:
                receiver.close()

    def kind(self, message: bytes) -> str:
        """tenant for the user facility's messages (flow logs), admin for the rest."""
        return ("tenant" if facility(message) == LOCAL0 + self.offload.user_log_facility
                else "admin")

    def handle(self, message: bytes) -> None:
        kind = self.kind(message)
        text = message.decode(errors="replace").rstrip("\n")
        handler = self._files.get(kind)
        if handler is not None:
            handler.emit(logging.makeLogRecord({"msg": text, "levelno": logging.INFO}))
        for receiver in self._receivers[kind]:
            try:
                receiver.send(message)
            except OSError as exc:
                self.dropped += 1
                if not receiver.failing:
                    LOG.warning("cannot send %s logs to %s (%s); dropping them until it "
                                "answers", kind, receiver.target, exc)
                receiver.failing = True
            else:
                if receiver.failing:
                    LOG.info("%s logs reach %s again", kind, receiver.target)
                receiver.failing = False
