"""The crash tests of ``test_crash`` at the points where the agent starts, runs or goes,
with one host agent serving every amphora (``[haproxy_amphora] agent_launcher = host``):
a worker killed there, another finishes the job, and the host agent serves exactly the
amphorae the database names."""
from __future__ import annotations

import pytest

from tests.dataplane import test_crash as crash
from tests.dataplane.controllers import reserve_second_host
from tests.dataplane.test_crash import (  # noqa: F401 - the fixtures, for this module's environ
    api,
    controllers,
    crash_services,
    topology,
)
from tests.helpers.dataplane import dataplane_environ

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def environ(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    settings = dataplane_environ(tmp_path_factory.mktemp("crash-host-agent"))
    return reserve_second_host({**settings, "LBAAS__haproxy_amphora__agent_launcher": "host"})


@pytest.mark.parametrize("point", ["netns:management-plugged",
                                   "create_load_balancer:build-amphorae/instance-built"])
def test_create_finishes_after_the_worker_is_killed(point, api, controllers, topology,  # noqa: F811
                                                    crash_services):  # noqa: F811
    crash.test_create_finishes_after_the_worker_is_killed(point, api, controllers, topology,
                                                          crash_services)


@pytest.mark.parametrize(("kind", "point"), [
    ("loadbalancer", "failover-amphora-*:build-amphorae/instance-built"),
    ("amphora", "failover_amphora:remove-retired-amphorae")])
def test_failover_finishes_after_the_worker_is_killed(kind, point, api, controllers,  # noqa: F811
                                                      topology, crash_services):  # noqa: F811
    crash.test_failover_finishes_after_the_worker_is_killed(kind, point, api, controllers,
                                                            topology, crash_services)
