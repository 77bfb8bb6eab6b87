"""A service with the real drivers, and test hosts (namespaces) on its networks.

Every fixture removes what it made — namespaces, bridges, processes, firewall rules and
files — also when the test fails.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lbaas import config, service
from lbaas.api.app import create_app
from lbaas.drivers import Drivers
from tests.dataplane import netns
from tests.helpers import PROJECT
from tests.helpers.dataplane import (
    CLIENT_ADDRESS,
    MEMBER_CIDR,
    MEMBER_POOL,
    VIP_CIDR,
    VIP_POOL,
    BackendHosts,
    TestNetwork,
    Topology,
    dataplane_environ,
    delete_all_load_balancers,
    new_network,
    remove_amphorae_directories,
    remove_leftovers,
)
from tests.helpers.openapi import checked


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[config.Settings]:
    settings = config.load(environ=dataplane_environ(tmp_path))
    yield settings
    remove_amphorae_directories(settings)


@pytest.fixture
def dataplane(services: service.Services, drivers: Drivers) -> Iterator[TestClient]:
    """The API with a worker driving real amphorae; all load balancers deleted afterwards.

    ``drivers`` are the real drivers the worker uses: a test may break one of their
    methods to make a flow fail.
    """
    try:
        with service.running_worker(services, drivers):
            with checked(TestClient(create_app(services.api_state),
                                    headers={"X-Project-Id": PROJECT})) as client:
                try:
                    yield client
                finally:
                    delete_all_load_balancers(client)
    finally:
        remove_leftovers(services)


@pytest.fixture
def make_network(services: service.Services):
    """Create a registry network + subnet (and its bridge); removed with the test."""
    yield lambda name, cidr, pool: new_network(services, name, cidr, pool)


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[BackendHosts]:
    hosts = BackendHosts(tmp_path)
    try:
        yield hosts
    finally:
        hosts.close()


@pytest.fixture
def client_host():
    """A namespace standing for a client on a network; yields a function running commands there."""
    contexts = []

    def make(network: TestNetwork, address: str) -> str:
        prefix = network.cidr.split("/")[1]
        context = netns.namespace(f"lbt-client-{netns.short_id()}", network.bridge,
                                  f"{address}/{prefix}")
        contexts.append(context)
        return context.__enter__()

    try:
        yield make
    finally:
        for context in reversed(contexts):
            context.__exit__(None, None, None)


@pytest.fixture
def topology(make_network, backends, client_host) -> Topology:
    members = make_network("members", MEMBER_CIDR, MEMBER_POOL)
    vips = make_network("vips", VIP_CIDR, VIP_POOL)
    started = [backends.add(members, f"10.240.1.1{i}", f"backend-{i}") for i in (1, 2)]
    return Topology(members, vips, started, client_host(vips, CLIENT_ADDRESS))
