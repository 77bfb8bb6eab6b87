"""`lbaas loadbalancer upgrade`: the load balancers off their tag's newest image are failed
over batch after batch, the others left alone; the first failure stops the rollout."""
from __future__ import annotations

from sqlalchemy import select
from typer.testing import CliRunner

from lbaas.cli import app
from lbaas.controller.tasks.amphora import live_amphorae
from lbaas.db.models import LoadBalancer
from lbaas.images.store import ImageStore
from tests.helpers import NOOP_DRIVERS
from tests.helpers.api import create_lb, make_flavor, make_profile
from tests.helpers.images import add_image


def upgrade_cli(services, *args: str) -> tuple[int, str]:
    """The command's exit status and output (its own lines and, as it runs in this process,
    possibly the worker thread's log lines)."""
    env = {**NOOP_DRIVERS, "LBAAS__DEFAULT__state_path": str(services.settings.DEFAULT.state_path),
           "LBAAS__controller_worker__amp_image_tag": "prod"}
    result = CliRunner().invoke(app, ["loadbalancer", "upgrade", *args], env=env)
    return result.exit_code, result.output


def images_of(services, lb_id: str) -> list[str | None]:
    with services.db.read() as session:
        return [amphora.image_id for amphora in live_amphorae(session, lb_id)]


def status_of(services, lb_id: str) -> str:
    with services.db.read() as session:
        return session.scalar(select(LoadBalancer.provisioning_status)
                              .where(LoadBalancer.id == lb_id))


def test_only_outdated_load_balancers_are_failed_over_batch_after_batch(client, services):
    services.settings.controller_worker.amp_image_tag = "prod"
    store = ImageStore.from_settings(services.settings)
    old = add_image(store, ["prod"], "old")
    gold = add_image(store, ["gold"], "gold")
    pair_flavor = make_flavor(client, make_profile(
        client, loadbalancer_topology="ACTIVE_STANDBY")["id"], name="pair")["id"]
    gold_flavor = make_flavor(client, make_profile(client, amp_image_tag="gold")["id"])["id"]
    singles = [create_lb(client, name=f"single-{index}")["id"] for index in range(2)]
    pair = create_lb(client, name="pair", flavor_id=pair_flavor)["id"]
    golden = create_lb(client, name="golden", flavor_id=gold_flavor)["id"]
    assert images_of(services, pair) == [old.id, old.id]
    assert "no load balancer is off its tag" in upgrade_cli(services, "--all")[1]

    new = add_image(store, ["prod"], "new")
    code, output = upgrade_cli(services, "--all", "--dry-run")
    assert code == 0, output
    # (Lines a worker thread of this test logs may land in the output too.)
    listed = [line.split()[0] for line in output.splitlines() if " -> " in line]
    assert listed == [*singles, pair]  # oldest first; the gold one is on its newest image
    assert f"{singles[0]} single-0: {old.id} -> {new.id}" in output

    code, output = upgrade_cli(services, "--all", "--batch", "2")
    assert code == 0, output
    assert "batch 1/2: failing over" in output and "batch 2/2: done" in output
    assert "upgraded 3 load balancer(s)" in output.splitlines()
    for lb_id in (*singles, pair):
        assert status_of(services, lb_id) == "ACTIVE"
    assert images_of(services, pair) == [new.id, new.id]
    assert [images_of(services, lb_id) for lb_id in singles] == [[new.id], [new.id]]
    assert images_of(services, golden) == [gold.id]
    assert "no load balancer is off its tag" in upgrade_cli(services, *singles)[1]


def test_a_failed_failover_stops_the_rollout_and_says_where(client, services, drivers):
    services.settings.controller_worker.amp_image_tag = "prod"
    store = ImageStore.from_settings(services.settings)
    old = add_image(store, ["prod"], "old")
    first, second = (create_lb(client, name=name)["id"] for name in ("first", "second"))
    add_image(store, ["prod"], "new")

    def broken(*args, **kwargs):
        raise RuntimeError("the compute host ran out of room")
    drivers.compute.build = broken  # type: ignore[method-assign]
    code, output = upgrade_cli(services, first, second)
    assert code == 1
    assert f"error: load balancer {first} (first) went ERROR during its failover; the " \
        "rollout stopped" in output
    assert (status_of(services, second), images_of(services, second)) == ("ACTIVE", [old.id])

    # An ERROR load balancer is not failed over by a later run: it says what to do.
    code, output = upgrade_cli(services, first)
    assert code == 1 and f"load balancer {first} (first) is ERROR, not ACTIVE: fail it over" in output


def test_the_command_says_what_it_needs(services):
    assert upgrade_cli(services) == (
        2, "error: name the load balancers to upgrade, or give --all (not both)\n")
    unknown = "00000000-0000-4000-8000-000000000000"
    assert upgrade_cli(services, unknown) == (1, f"error: no load balancer {unknown}\n")
