"""Automatic failover: stale amphorae are replaced, a storm stops it until the operator resumes."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from lbaas import cli, config, service
from lbaas.db.models import Amphora, AmphoraHealth, Job, utcnow
from lbaas.health import failover
from lbaas.health.failover import FailoverChecker
from tests.helpers import wait_for
from tests.helpers.api import create_lb, wait_lb_active
from tests.helpers.health import amphora_of


def heard_of(services, amphora_id: str, seconds_ago: float) -> None:
    """Record a heartbeat from ``amphora_id`` ``seconds_ago``."""
    with services.db.write() as session:
        row = session.get(AmphoraHealth, amphora_id)
        if row is None:
            row = AmphoraHealth(amphora_id=amphora_id, sequence=1, busy=False)
            session.add(row)
        row.last_update = utcnow() - dt.timedelta(seconds=seconds_ago)


def amphora_status(services, amphora_id: str) -> str:
    with services.db.read() as session:
        return session.get(Amphora, amphora_id).status


def run_pass(services) -> failover.PassResult:
    with services.db.write() as session:
        return failover.check(session, services.settings)


def test_a_silent_amphora_is_replaced_and_forgotten(client, services):
    lb = create_lb(client)
    old = amphora_of(services, lb["id"])
    heard_of(services, old, seconds_ago=1)
    assert run_pass(services).started == []  # within heartbeat_timeout (2 s)
    heard_of(services, old, seconds_ago=5)
    assert run_pass(services).started == [old]
    wait_lb_active(client, lb["id"])
    assert amphora_status(services, old) == "DELETED"
    assert amphora_of(services, lb["id"]) != old
    assert run_pass(services).finished == [old]
    with services.db.read() as session:
        assert session.get(AmphoraHealth, old) is None


def test_two_health_managers_never_fail_over_one_amphora_twice(client, services):
    lb = create_lb(client)
    amphora_id = amphora_of(services, lb["id"])
    heard_of(services, amphora_id, seconds_ago=60)
    with services.db.write() as session:
        assert failover.start_failover(session, amphora_id)
        assert not failover.start_failover(session, amphora_id)  # busy: the other one lost
        assert [(job.action, job.payload) for job in session.scalars(select(Job))] == [
            ("failover_amphora", {"lb_id": lb["id"], "amphora_id": amphora_id})]
    wait_lb_active(client, lb["id"])


def test_a_failed_failover_leaves_the_amphora_error_and_not_busy(client, services, drivers):
    lb = create_lb(client)
    old = amphora_of(services, lb["id"])
    heard_of(services, old, seconds_ago=5)

    def broken(*args, **kwargs):
        raise RuntimeError("no room for a new amphora")
    drivers.compute.build = broken
    assert run_pass(services).started == [old]
    wait_for(lambda: client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"],
             "provisioning_status", "ERROR")
    assert run_pass(services).failed == [old]
    assert amphora_status(services, old) == "ERROR"
    assert run_pass(services).started == []  # not retried in a loop


def test_more_stale_amphorae_than_the_threshold_stops_failover_until_resumed(client, services):
    lbs = [create_lb(client) for _ in range(3)]  # failover_threshold is 2 in these tests
    amphorae = [amphora_of(services, lb["id"]) for lb in lbs]
    for amphora_id in amphorae:
        heard_of(services, amphora_id, seconds_ago=5)
    result = run_pass(services)
    assert result.started == [] and sorted(result.stopped) == sorted(amphorae)
    assert {amphora_status(services, a) for a in amphorae} == {"FAILOVER_STOPPED"}
    assert run_pass(services).started == []  # stays stopped
    with services.db.read() as session:
        assert session.scalars(select(Job)).all() == []
    # One came back (the management network is fixed); the others are really dead.
    heard_of(services, amphorae[0], seconds_ago=0)
    output = CliRunner().invoke(cli.app, ["amphora", "failover-resume", "--config-file",
                                          str(_config_file(services))])
    assert output.exit_code == 0, output.output
    assert f"{amphorae[0]}: heartbeats are back" in output.output
    assert f"{amphorae[1]}: failover started" in output.output
    for lb in lbs:
        wait_lb_active(client, lb["id"])
    assert amphora_status(services, amphorae[0]) == "ALLOCATED"
    assert {amphora_status(services, a) for a in amphorae[1:]} == {"DELETED"}


def test_resuming_an_amphora_that_is_not_stopped_is_an_error(client, services):
    lb = create_lb(client)
    output = CliRunner().invoke(cli.app, ["amphora", "failover-resume", "--config-file",
                                          str(_config_file(services)),
                                          amphora_of(services, lb["id"])])
    assert output.exit_code == 1
    assert "not FAILOVER_STOPPED" in output.output


def test_no_failover_during_the_grace_period_after_start(client, services):
    lb = create_lb(client)
    heard_of(services, amphora_of(services, lb["id"]), seconds_ago=60)
    settings = services.settings.model_copy(deep=True)
    settings.health_manager.failover_grace_period = 3600
    assert FailoverChecker(settings, services.db).run_once() is None
    settings.health_manager.failover_grace_period = 0
    assert len(FailoverChecker(settings, services.db).run_once().started) == 1


def _config_file(services):
    """The test's settings as a configuration file for the CLI."""
    path = services.settings.DEFAULT.state_path / "lbaas.conf"
    path.write_text(services.settings.to_ini().replace(
        "heartbeat_key = **********", "heartbeat_key = health-test-key"))
    return path


def test_amphorae_dying_a_moment_apart_still_count_as_one_storm(client, services):
    lbs = [create_lb(client) for _ in range(3)]  # failover_threshold 2, heartbeat_timeout 2 s
    amphorae = [amphora_of(services, lb["id"]) for lb in lbs]
    heard_of(services, amphorae[0], seconds_ago=5)  # stale
    for amphora_id in amphorae[1:]:
        heard_of(services, amphora_id, seconds_ago=1.5)  # silent, not yet stale
    result = run_pass(services)
    assert result.started == [] and result.stopped == [amphorae[0]]


@pytest.mark.parametrize("option, value, words", [
    ("heartbeat_timeout", "5", "heartbeat_timeout (5.0) must be longer"),
    ("failover_threshold", "-1", "failover_threshold must be 0 or more"),
    ("controller_ip_port_list", "10.0.0.1", "'10.0.0.1' is not ip:port"),
])
def test_heartbeat_settings_that_cannot_work_are_refused(tmp_path, option, value, words):
    settings = config.load(environ={"LBAAS__DEFAULT__state_path": str(tmp_path),
                                    "LBAAS__health_manager__heartbeat_interval": "10",
                                    f"LBAAS__health_manager__{option}": value})
    with pytest.raises(config.ConfigError, match=re.escape(words)):
        service.check(settings)
