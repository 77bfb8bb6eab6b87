"""Secrets made once in the state directory, readable by root only."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def ensure(path: Path, make: Callable[[], str]) -> str:
    """The key in ``path``, made with ``make`` (mode 0600) when the file does not exist.

    Written aside, then linked in: concurrent starters agree on one complete key.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(make())
        try:
            os.link(candidate, path)
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    return path.read_text().strip()
