"""Run the service on PostgreSQL and on MariaDB, each in a private server per module."""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbaas import config
from tests.db import servers
from tests.helpers import NOOP_DRIVERS


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix=f"lbaas-{request.param}-") as workdir:
        with getattr(servers, request.param)(Path(workdir)) as url:
            yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> config.Settings:
    return config.load(environ={"LBAAS__DEFAULT__state_path": str(tmp_path), **NOOP_DRIVERS,
                                "LBAAS__database__connection": database_url})

