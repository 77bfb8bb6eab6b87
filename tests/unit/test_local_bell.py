"""The job bell between the processes of one host: a ring from another process wakes
this process's workers, dead listeners are cleared away, a deep state path works."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from lbaas.controller.jobs import Wakeup
from lbaas.controller.wakeups import LocalBell


class Woken(Wakeup):
    def __init__(self) -> None:
        super().__init__()
        self.woken = threading.Event()

    def notify_local(self) -> None:
        super().notify_local()
        self.woken.set()


def listening(directory: Path) -> tuple[LocalBell, Woken]:
    bell, wakeup = LocalBell(directory), Woken()
    bell.listen(wakeup)
    assert wakeup.woken.wait(1)  # listening starts with a wake-up: jobs queued before
    wakeup.woken.clear()
    return bell, wakeup


def test_a_ring_from_another_process_wakes_the_listener(tmp_path: Path) -> None:
    # Deeper than a socket path may be (108 bytes).
    directory = tmp_path / ("d" * 60) / ("e" * 60) / "job-bells"
    bell, wakeup = listening(directory)
    try:
        subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                        "from lbaas.controller.wakeups import LocalBell; "
                        "LocalBell(Path(sys.argv[1])).ring()", str(directory)], check=True)
        assert wakeup.woken.wait(5)
    finally:
        bell.stop()
    assert os.listdir(directory) == []  # stop removes its socket
    assert not any(t.name == "job-bell-local" and t.is_alive() for t in threading.enumerate())


def test_own_ring_is_not_sent_to_itself_and_dead_sockets_are_removed(tmp_path: Path) -> None:
    bell, wakeup = listening(tmp_path)
    other, other_wakeup = listening(tmp_path)
    try:
        # A socket left by a process that died (bound, then closed without unlinking).
        import socket
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        dead.bind(str(tmp_path / "1-dead.sock"))
        dead.close()
        bell.ring()
        assert other_wakeup.woken.wait(5)
        assert not wakeup.woken.is_set()
        assert not (tmp_path / "1-dead.sock").exists()
    finally:
        bell.stop()
        other.stop()


def test_a_directory_that_cannot_be_made_leaves_the_bell_silent(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    bell = LocalBell(blocker / "job-bells")
    bell.ring()  # no exception: the workers poll instead
    bell.listen(Woken())
    bell.stop()
