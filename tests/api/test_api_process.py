"""``lbaas up`` serves the API from a process of its own: jobs it queues wake the worker
at once through the host's job bell, it dies with ``lbaas up``, and ``lbaas up`` stops
with one line when it dies alone."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.service import (
    SUBNET,
    clean_environment,
    free_port,
    lbaas_command,
    stop,
    wait_until_answering,
    write_config,
)

WAIT = 10.0


def children(pid: int) -> list[int]:
    return [int(child) for child in
            Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state == "Z"  # dead, not yet reaped


def session_members(sid: int) -> list[int]:
    """The live processes of session ``sid`` (``lbaas up`` is started in one of its own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, _, _, session = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:4]
        except OSError:  # gone meanwhile
            continue
        if int(session) == sid and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, int]]:
    """``lbaas up`` whose worker polls only every 60 s: a job done sooner was rung for."""
    port = free_port()
    config = write_config(tmp_path, port)
    config.write_text(config.read_text().replace("job_poll_interval = 0.1",
                                                 "job_poll_interval = 60"))
    log = tmp_path / "lbaas.log"
    with log.open("wb") as output:
        process = subprocess.Popen([str(lbaas_command()), "up", "--config-file", str(config)],
                                   stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT, env=clean_environment(),
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(url + "/", process, "lbaas up", log)
        yield process, url, port
    finally:
        stop(process)


def api_child(process: subprocess.Popen[bytes]) -> int:
    (child,) = children(process.pid)
    return child


def test_the_api_is_a_child_process_whose_jobs_wake_the_worker(
        up: tuple[subprocess.Popen[bytes], str, int]) -> None:
    process, url, _ = up
    child = api_child(process)
    assert not gone(child)
    created = httpx.post(f"{url}/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "vip_subnet_id": SUBNET}}).json()["loadbalancer"]
    deadline = time.monotonic() + WAIT
    while (status := httpx.get(f"{url}/v2/lbaas/loadbalancers/{created['id']}").json()
           ["loadbalancer"]["provisioning_status"]) != "ACTIVE":
        assert time.monotonic() < deadline, f"still {status}: the worker was not woken"
        time.sleep(0.05)


def test_a_killed_lbaas_up_takes_its_api_process_along(
        up: tuple[subprocess.Popen[bytes], str, int]) -> None:
    process, _, _ = up
    child = api_child(process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + WAIT
    while not gone(child):
        assert time.monotonic() < deadline, "the API process outlived lbaas up"
        time.sleep(0.05)
    # Nor did anything of its session stay behind to hold the port. (Connecting to the
    # port, or binding it, says nothing on a busy host: another test may have taken it.)
    while left := session_members(process.pid):
        assert time.monotonic() < deadline, f"lbaas up left {left} behind"
        time.sleep(0.05)


def test_lbaas_up_stops_with_one_line_when_its_api_process_dies(
        up: tuple[subprocess.Popen[bytes], str, int], tmp_path: Path) -> None:
    process, _, _ = up
    os.kill(api_child(process), signal.SIGKILL)
    assert process.wait(WAIT + 30) == 1
    assert "lbaas stopped: its API process killed by SIGKILL" in (
        tmp_path / "lbaas.log").read_text()


def test_sigterm_to_lbaas_up_alone_stops_both(
        up: tuple[subprocess.Popen[bytes], str, int], tmp_path: Path) -> None:
    process, _, _ = up
    child = api_child(process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(WAIT + 30) == 0
    assert gone(child)
    assert "lbaas stopped." in (tmp_path / "lbaas.log").read_text()
