"""One process at a time on this machine: an exclusive ``flock`` on a file.

The kernel drops the lock when its holder's descriptor closes, also when the holder is
killed, so a crash never leaves a lock behind for someone to clear.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def held(path: Path, directory_mode: int = 0o755) -> Iterator[None]:
    """Hold ``path``'s lock (made, with its directory, if missing) until the block ends."""
    path.parent.mkdir(mode=directory_mode, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
