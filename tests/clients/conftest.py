"""The real service (``lbaas up``) in a subprocess, for tests that drive it with real clients."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.service import Service, free_port, running, write_config


@pytest.fixture(scope="module")
def lbaas_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """``lbaas up`` on a free loopback port with a private state directory."""
    workdir = tmp_path_factory.mktemp("lbaas-up")
    port = free_port()
    config = write_config(workdir, port)
    with running(Service(url=f"http://127.0.0.1:{port}", workdir=workdir, config=config)) as service:
        yield service
