"""What the agent processes that serve a whole host share (the zygote, the host agent):
the hash of the source they preloaded, and entering an amphora's network namespace."""
from __future__ import annotations

import ctypes
import hashlib
import os
import socket
from pathlib import Path

CLONE_NEWNET = 0x40000000


def source_hash() -> str:
    """A hash of the agent package's source: what such a process preloaded, so that a
    compute driver of newer code replaces it rather than use old code."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def enter_namespace(path: str) -> None:
    """Move the calling thread into the network namespace ``path`` (``setns``): its
    sockets, and the threads and commands it starts, are in that namespace from now on."""
    libc = ctypes.CDLL(None, use_errno=True)
    descriptor = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(descriptor, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns {path}: {os.strerror(error)}")
    finally:
        os.close(descriptor)


def namespace_inode() -> int:
    """The calling thread's network namespace, as the inode that names it."""
    return os.stat("/proc/thread-self/ns/net").st_ino


def listen(path: Path) -> socket.socket:
    """A Unix stream socket at ``path`` that only root may use (0600), listening."""
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_mask = os.umask(0o177)
    try:
        listener.bind(str(path))
    finally:
        os.umask(old_mask)
    listener.listen(128)
    return listener
