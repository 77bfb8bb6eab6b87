"""The real service (``lbaas up``) as a subprocess: its configuration, start and stop."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

# The project the service gives callers that name none: the clients here send no
# X-Project-Id. A UUID, so `openstack loadbalancer quota show` needs no Keystone lookup.
PROJECT = "0f4bd8a3c4a94d0f9b8c7a6e5d4c3b2a"
SUBNET = "8c1a4e5c-9b1f-4d5c-8f5e-0a6f3e2b9c10"


START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


@dataclass(frozen=True)
class Service:
    url: str
    workdir: Path
    config: Path

    def lbaas(self, *args: str) -> str:
        """Run another ``lbaas`` command on this service's configuration; its output."""
        result = subprocess.run([str(lbaas_command()), *args, "--config-file", str(self.config)],
                                capture_output=True, text=True, env=clean_environment(),
                                stdin=subprocess.DEVNULL, timeout=120)
        assert result.returncode == 0, f"lbaas {' '.join(args)}: {result.stdout}{result.stderr}"
        return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(workdir: Path, port: int) -> Path:
    path = workdir / "lbaas.conf"
    path.write_text(
        "[DEFAULT]\n"
        f"state_path = {workdir / 'state'}\n"
        "[api_settings]\n"
        "bind_host = 127.0.0.1\n"
        f"bind_port = {port}\n"
        f"default_project_id = {PROJECT}\n"
        "[controller_worker]\n"
        "job_poll_interval = 0.1\n"
        # The API as clients see it, whatever the built-in drivers become.
        "amphora_driver = amphora_noop_driver\n"
        "compute_driver = compute_noop_driver\n"
        "network_driver = network_noop_driver\n"
        "[certificates]\n"
        "cert_generator = cert_noop_generator\n")
    return path


def lbaas_command() -> Path:
    """The installed ``lbaas`` script of the interpreter running the tests."""
    command = Path(sys.executable).parent / "lbaas"
    if not command.exists():
        pytest.fail(f"{command} is missing; install the package (make test does)")
    return command


def clean_environment() -> dict[str, str]:
    """This environment without settings that would reconfigure the service or the clients."""
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("LBAAS__", "OS_"))}


def wait_until_answering(url: str, process: subprocess.Popen, name: str, log: Path) -> None:
    """Poll ``url`` until it answers 200; fail with the server's ``log`` if it exits or never does."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"{name} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{name} did not answer on {url} in {START_TIMEOUT:.0f}s:\n"
                        f"{log.read_text(errors='replace')}")
        time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the service's process group (it and its children), SIGKILL if it lingers."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            break
        try:
            process.wait(STOP_TIMEOUT)
            break
        except subprocess.TimeoutExpired:
            continue
    process.wait()


@contextlib.contextmanager
def running(service: Service) -> Iterator[Service]:
    """``lbaas up`` on the service's configuration, answering until the block ends."""
    with open(service.workdir / "lbaas.log", "wb") as log:
        process = subprocess.Popen(
            [str(lbaas_command()), "up", "--config-file", str(service.config)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=clean_environment(), start_new_session=True)
    try:
        wait_until_answering(service.url + "/", process, "lbaas up", service.workdir / "lbaas.log")
        yield service
    finally:
        stop(process)


@contextlib.contextmanager
def registry_subnet(service: Service, cidr: str) -> Iterator[dict[str, Any]]:
    """A subnet in the service's network registry; the network's bridge goes afterwards."""
    network = f"cli-{uuid.uuid4().hex[:6]}"
    service.lbaas("network", "create", network)
    try:
        yield json.loads(service.lbaas("subnet", "create", "--network", network, "--subnet-range",
                                       cidr, "--format", "json", f"{network}-subnet"))
    finally:
        service.lbaas("network", "delete", network)
