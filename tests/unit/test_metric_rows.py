"""Counters kept in the database: a batch adds to rows that exist and makes the others."""
from __future__ import annotations

import pytest

from lbaas.db import metrics, migrate
from lbaas.db.engine import Database


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'metrics.sqlite'}")
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


def _values(db: Database) -> dict[tuple[str, str | None], float]:
    with db.read() as session:
        return {(name, labels.get("le") or labels.get("outcome")): value
                for name, labels, value in metrics.read(session)}


def test_a_batch_counts_rows_that_exist_and_rows_that_do_not_yet(db):
    with db.write() as session:
        metrics.add(session, "lbaas_flows_total", action="create", outcome="done")
    with db.write() as session:  # one row exists, the other is new
        metrics.add_all(session, [
            ("lbaas_flows_total", 1.0, {"action": "create", "outcome": "done"}),
            ("lbaas_flows_total", 2.0, {"action": "create", "outcome": "reverted"})])
    with db.write() as session:  # both exist; one label set twice in the batch
        metrics.add_all(session, [
            ("lbaas_flows_total", 1.0, {"action": "create", "outcome": "done"}),
            ("lbaas_flows_total", 1.0, {"action": "create", "outcome": "reverted"}),
            ("lbaas_flows_total", 1.0, {"outcome": "done", "action": "create"})])
    assert _values(db) == {("lbaas_flows_total", "done"): 4.0,
                           ("lbaas_flows_total", "reverted"): 3.0}


def test_an_observation_counts_the_buckets_it_falls_in(db):
    for seconds in (0.2, 3.0, 0.0):
        with db.write() as session:
            metrics.observe(session, "lbaas_flow_duration_seconds", seconds, action="create")
    values = _values(db)
    assert values[("lbaas_flow_duration_seconds_bucket", "0.1")] == 1  # the 0.0
    assert values[("lbaas_flow_duration_seconds_bucket", "0.25")] == 2
    assert values[("lbaas_flow_duration_seconds_bucket", "5.0")] == 3
    assert values[("lbaas_flow_duration_seconds_bucket", "+Inf")] == 3
    assert values[("lbaas_flow_duration_seconds_sum", None)] == pytest.approx(3.2)
    assert values[("lbaas_flow_duration_seconds_count", None)] == 3


def test_an_undeclared_metric_is_refused_before_anything_is_written(db):
    with pytest.raises(ValueError, match="undeclared metric lbaas_nothing"), db.write() as session:
        metrics.add_all(session, [("lbaas_flows_total", 1.0, {}), ("lbaas_nothing", 1.0, {})])
    assert _values(db) == {}
