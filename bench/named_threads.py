"""Runs ``lbaas`` with each thread's Python name given to the kernel too (its ``comm``, 15
bytes at most), so that a benchmark can read in ``/proc/PID/task/TID/stat`` how much CPU
each part of ``lbaas up`` used: the worker, the health manager and housekeeping run as
threads of one process, named after their part (``worker-0``, ``hm-updater``,
``housekeeping-spare-pool``, ...); the API is a process it forks. Python 3.11 leaves every
thread named after the process.

Usage: ``python named_threads.py up --config-file FILE`` (the arguments of ``lbaas``).
"""
from __future__ import annotations

import ctypes
import threading

PR_SET_NAME = 15  # prctl(2): the calling thread's name
COMM_BYTES = 15  # the kernel keeps 16 bytes with the terminating NUL


def name_threads() -> None:
    """From now on, every thread started tells the kernel its name first."""
    libc = ctypes.CDLL(None, use_errno=True)
    bootstrap = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def named_bootstrap(thread: threading.Thread) -> None:
        libc.prctl(PR_SET_NAME, thread.name.encode()[:COMM_BYTES], 0, 0, 0)
        bootstrap(thread)

    threading.Thread._bootstrap_inner = named_bootstrap  # type: ignore[attr-defined]


if __name__ == "__main__":
    name_threads()
    from lbaas.cli import app
    app()
