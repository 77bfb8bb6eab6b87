"""The multi-host tests' cluster: see tests/multihost/cluster.py."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.multihost.cluster import Cluster, running_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster")) as made:
        yield made
