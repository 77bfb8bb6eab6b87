"""Agents forked from a preloaded parent (``[haproxy_amphora] agent_launcher = zygote``):
each amphora still has its own agent in its own namespace, serving as before; the agents
outlive the parent, and the next build starts a new one."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import select

from lbaas import config
from lbaas.db.models import Amphora
from lbaas.drivers.compute.netns import NetnsComputeDriver
from tests.helpers.dataplane import balanced, build

pytestmark = pytest.mark.root


@pytest.fixture
def settings(settings: config.Settings) -> config.Settings:
    settings.haproxy_amphora.agent_launcher = "zygote"
    return settings


def _agents(services) -> dict[str, int]:
    """Each live amphora's agent pid (the process in its namespace that the zygote forked)."""
    compute = NetnsComputeDriver(services.settings.haproxy_amphora.base_path)
    with services.db.read() as session:
        amphorae = list(session.scalars(select(Amphora).where(Amphora.status != "DELETED")))
    found = {}
    for amphora in amphorae:
        [pid] = [pid for pid in compute._namespace_pids(amphora.compute_id or "")
                 if b"lbaas.amphora.agent.zygote" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert os.readlink(f"/proc/{pid}/cwd") == str(
            services.settings.haproxy_amphora.base_path / amphora.id)
        found[amphora.id] = pid
    return found


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_agents_forked_by_the_zygote_serve_and_outlive_it(dataplane, topology, services, drivers):
    first = build(dataplane, topology)
    second = build(dataplane, topology)
    for made in (first, second):
        assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}
    agents = _agents(services)
    assert len(agents) == 2 and all(_parent(pid) == 1 for pid in agents.values())
    zygote = drivers.compute.launcher
    parent = zygote._pid()
    assert parent is not None and parent not in agents.values()

    os.kill(parent, signal.SIGKILL)  # the amphorae serve on; the next build starts another
    third = build(dataplane, topology)
    assert balanced(topology, third["url"]) == {"backend-1": 5, "backend-2": 5}
    assert balanced(topology, first["url"]) == {"backend-1": 5, "backend-2": 5}
    assert zygote._pid() not in (None, parent)
    assert set(agents.items()) < set(_agents(services).items())
