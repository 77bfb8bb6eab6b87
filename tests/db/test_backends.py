"""The same code on PostgreSQL and MariaDB: schema, lifecycle, the lock, quotas, the job board."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from lbaas.db.models import Base
from tests.api import test_concurrency
from tests.api.helpers import create_lb, wait_lb_active
from tests.conftest import wait_for


def test_migrations_create_exactly_the_models(services):
    with services.db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_load_balancer_lifecycle(client):
    lb = create_lb(client, name="on-a-real-database", tags=["a", "b"])
    assert client.put(f"/v2/lbaas/loadbalancers/{lb['id']}",
                      json={"loadbalancer": {"name": "renamed"}}).status_code == 200
    assert wait_lb_active(client, lb["id"])["name"] == "renamed"
    listed = client.get("/v2/lbaas/loadbalancers", params={"tags": "a,b", "limit": 1}).json()
    assert [item["id"] for item in listed["loadbalancers"]] == [lb["id"]]
    assert client.delete(f"/v2/lbaas/loadbalancers/{lb['id']}?cascade=true").status_code == 204
    wait_for(lambda: {"code": client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").status_code},
             "code", 404)


def test_concurrent_updates_never_both_win(api_only, services):
    test_concurrency.test_concurrent_updates_never_both_win(api_only, services)
