"""openstacksdk's ``conn.load_balancer`` proxy, unchanged, against ``lbaas up``."""
from __future__ import annotations

import uuid
from collections.abc import Iterator

import openstack
import pytest
from openstack import exceptions
from openstack.connection import Connection

from tests.helpers.service import PROJECT, SUBNET, Service

WAIT = {"interval": 0.1, "wait": 60}
pytestmark = [
    # The sdk's notices about its own future releases are not about this service.
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
    # The sdk only warns when it cannot make sense of our version document.
    pytest.mark.filterwarnings("error::openstack.warnings.UnsupportedServiceVersion"),
]


@pytest.fixture(scope="module")
def conn(lbaas_service: Service) -> Iterator[Connection]:
    """A connection as an operator makes one without Keystone (no clouds.yaml, no OS_*)."""
    connection = openstack.connect(
        auth_type="none", load_balancer_endpoint_override=f"{lbaas_service.url}/v2.0",
        load_yaml_config=False, load_envvars=False)
    try:
        yield connection
    finally:
        connection.close()


def create_active(conn: Connection, **fields: object) -> openstack.resource.Resource:
    lb = conn.load_balancer.create_load_balancer(vip_subnet_id=SUBNET, **fields)
    return conn.load_balancer.wait_for_load_balancer(lb.id, **WAIT)


def test_sdk_creates_a_load_balancer_and_waits_until_active(conn):
    lb = conn.load_balancer.create_load_balancer(name="web", vip_subnet_id=SUBNET,
                                                 tags=["prod"])
    assert lb.provisioning_status == "PENDING_CREATE"
    active = conn.load_balancer.wait_for_load_balancer(lb.id, **WAIT)
    assert active.provisioning_status == "ACTIVE"
    assert active.project_id == PROJECT
    assert active.vip_address and active.vip_port_id
    assert active.tags == ["prod"]
    shown = conn.load_balancer.get_load_balancer(lb.id)
    assert (shown.name, shown.vip_subnet_id, shown.provider) == ("web", SUBNET, "amphora")


def test_sdk_updates_a_load_balancer(conn):
    lb = create_active(conn, name="before")
    conn.load_balancer.update_load_balancer(lb, name="after", description="renamed")
    updated = conn.load_balancer.wait_for_load_balancer(lb.id, **WAIT)
    assert (updated.name, updated.description) == ("after", "renamed")


def test_sdk_lists_and_filters_load_balancers_across_pages(conn):
    tag = f"page-{uuid.uuid4().hex[:8]}"
    created = {create_active(conn, name=f"paged-{i}", tags=[tag]).id for i in range(3)}
    # limit=1 makes the sdk follow three "next" links.
    listed = {lb.id for lb in conn.load_balancer.load_balancers(tags=tag, limit=1)}
    assert listed == created
    by_name = list(conn.load_balancer.load_balancers(name="paged-1", tags=tag))
    assert [lb.name for lb in by_name] == ["paged-1"]


def test_sdk_reads_load_balancer_statistics(conn):
    lb = create_active(conn, name="observed")
    stats = conn.load_balancer.get_load_balancer_statistics(lb.id)
    assert (stats.bytes_in, stats.bytes_out, stats.active_connections,
            stats.total_connections, stats.request_errors) == (0, 0, 0, 0, 0)


def test_sdk_fails_over_a_load_balancer(conn):
    lb = create_active(conn)
    conn.load_balancer.failover_load_balancer(lb.id)
    assert conn.load_balancer.wait_for_load_balancer(lb.id, **WAIT).provisioning_status == "ACTIVE"


def test_sdk_cascade_delete_removes_the_load_balancer(conn):
    lb = create_active(conn, name="doomed")
    conn.load_balancer.delete_load_balancer(lb, cascade=True)
    conn.load_balancer.wait_for_delete(lb, **WAIT)
    with pytest.raises(exceptions.NotFoundException):
        conn.load_balancer.get_load_balancer(lb.id)


def test_sdk_reports_an_unknown_load_balancer_as_not_found(conn):
    missing = str(uuid.uuid4())
    with pytest.raises(exceptions.NotFoundException, match=f"Load Balancer {missing} not found"):
        conn.load_balancer.get_load_balancer(missing)
    assert conn.load_balancer.find_load_balancer("no-such-name") is None


def test_sdk_sees_a_validation_error_as_bad_request(conn):
    with pytest.raises(exceptions.BadRequestException, match="VIP must contain one of"):
        conn.load_balancer.create_load_balancer(name="no-vip")


def test_sdk_sets_shows_and_resets_a_quota(conn):
    project = uuid.uuid4().hex
    conn.load_balancer.update_quota(project, load_balancers=7, listeners=3)
    quota = conn.load_balancer.get_quota(project)
    assert (quota.load_balancers, quota.listeners) == (7, 3)
    assert project in {q.project_id for q in conn.load_balancer.quotas()}
    conn.load_balancer.delete_quota(project)
    defaults = conn.load_balancer.get_quota_default()
    assert conn.load_balancer.get_quota(project).load_balancers == defaults.load_balancers


def test_sdk_lists_providers_and_their_capabilities(conn):
    assert "amphora" in {provider.name for provider in conn.load_balancer.providers()}
    capabilities = {c.name for c in conn.load_balancer.provider_flavor_capabilities("amphora")}
    assert "loadbalancer_topology" in capabilities


def test_sdk_builds_a_tree_and_cascade_delete_removes_it(conn):
    lb = create_active(conn, name="tree")
    listener = conn.load_balancer.create_listener(
        name="http", protocol="HTTP", protocol_port=80, load_balancer_id=lb.id)
    conn.load_balancer.wait_for_load_balancer(lb.id, **WAIT)
    pool = conn.load_balancer.create_pool(
        name="app", protocol="HTTP", lb_algorithm="ROUND_ROBIN", listener_id=listener.id)
    conn.load_balancer.wait_for_load_balancer(lb.id, **WAIT)
    member = conn.load_balancer.create_member(pool, address="192.0.2.30", protocol_port=8080,
                                              weight=3)
    conn.load_balancer.wait_for_load_balancer(lb.id, **WAIT)
    monitor = conn.load_balancer.create_health_monitor(
        pool_id=pool.id, type="HTTP", delay=5, timeout=3, max_retries=2, url_path="/ping")
    conn.load_balancer.wait_for_load_balancer(lb.id, **WAIT)

    assert conn.load_balancer.get_listener(listener.id).default_pool_id == pool.id
    assert [m.id for m in conn.load_balancer.members(pool)] == [member.id]
    assert conn.load_balancer.get_pool(pool.id).health_monitor_id == monitor.id
    conn.load_balancer.update_member(member, pool, weight=7)
    conn.load_balancer.wait_for_load_balancer(lb.id, **WAIT)
    assert conn.load_balancer.get_member(member, pool).weight == 7
    stats = conn.load_balancer.get_listener_statistics(listener.id)
    assert stats.total_connections == 0

    conn.load_balancer.delete_load_balancer(lb, cascade=True)
    conn.load_balancer.wait_for_delete(lb, **WAIT)
    for lookup, object_id in ((conn.load_balancer.get_listener, listener.id),
                              (conn.load_balancer.get_pool, pool.id),
                              (conn.load_balancer.get_health_monitor, monitor.id)):
        with pytest.raises(exceptions.NotFoundException):
            lookup(object_id)


def test_sdk_creates_a_fully_populated_load_balancer_in_one_call(conn):
    lb = conn.load_balancer.create_load_balancer(
        name="populated", vip_subnet_id=SUBNET,
        listeners=[{"name": "http", "protocol": "HTTP", "protocol_port": 80, "default_pool": {
            "name": "app", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
            "members": [{"address": "192.0.2.41", "protocol_port": 8080},
                        {"address": "192.0.2.42", "protocol_port": 8080}],
            "healthmonitor": {"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 2}}}])
    active = conn.load_balancer.wait_for_load_balancer(lb.id, **WAIT)
    [listener] = conn.load_balancer.listeners(load_balancer_id=active.id)
    pool = conn.load_balancer.get_pool(listener.default_pool_id)
    assert sorted(m.address for m in conn.load_balancer.members(pool)) == ["192.0.2.41",
                                                                          "192.0.2.42"]
    assert conn.load_balancer.get_health_monitor(pool.health_monitor_id).type == "HTTP"
    conn.load_balancer.delete_load_balancer(active, cascade=True)
    conn.load_balancer.wait_for_delete(active, **WAIT)
