"""Which image a new amphora runs: none by default; the newest image with
[controller_worker] amp_image_tag, or with its flavor's amp_image_tag; a build fails,
saying how to fix it, when the tag names no image. Spares follow the configured tag."""
from __future__ import annotations

import logging

import pytest

from lbaas import config, service
from lbaas.controller.flow import FlowContext
from lbaas.images.store import ImageStore
from tests.helpers import NOOP_DRIVERS, PROJECT, wait_for
from tests.helpers.api import SUBNET, create_lb, make_flavor, make_profile, wait_lb_active
from tests.helpers.housekeeping import fill_spare_pool, spare_amphorae
from tests.helpers.images import add_image

AMPHORAE = "/v2/octavia/amphorae"


@pytest.fixture
def store(services) -> ImageStore:
    return ImageStore.from_settings(services.settings)


@pytest.fixture
def context(services, drivers) -> FlowContext:
    return FlowContext(db=services.db, drivers=drivers, settings=services.settings)


def amphorae_of(client, lb_id: str) -> list[dict]:
    return client.get(AMPHORAE, params={"loadbalancer_id": lb_id}).json()["amphorae"]


def images_of(client, lb_id: str) -> list[str | None]:
    return [amphora["image_id"] for amphora in amphorae_of(client, lb_id)]


def test_without_a_tag_amphorae_run_the_hosts_binaries_and_need_no_image(client, store):
    add_image(store, ["prod"], "unused")
    lb = create_lb(client)
    assert images_of(client, lb["id"]) == [None]


def test_the_configured_tag_picks_its_newest_image_and_a_failover_a_newer_one(
        client, services, store):
    services.settings.controller_worker.amp_image_tag = "prod"
    old = add_image(store, ["prod"], "old")
    add_image(store, ["canary"], "other")
    lb = create_lb(client, name="tagged")
    assert images_of(client, lb["id"]) == [old.id]

    new = add_image(store, ["prod"], "new")
    [amphora] = amphorae_of(client, lb["id"])
    assert client.put(f"{AMPHORAE}/{amphora['id']}/failover").status_code == 202
    wait_lb_active(client, lb["id"])
    [replacement] = amphorae_of(client, lb["id"])
    assert replacement["id"] != amphora["id"] and replacement["image_id"] == new.id
    shown = client.get(f"{AMPHORAE}/{replacement['id']}").json()["amphora"]
    assert shown["image_id"] == new.id


def test_a_flavors_tag_overrides_the_configured_one(client, services, store):
    services.settings.controller_worker.amp_image_tag = "prod"
    add_image(store, ["prod"], "prod")
    gold = add_image(store, ["gold"], "gold")
    profile = make_profile(client, amp_image_tag="gold", loadbalancer_topology="ACTIVE_STANDBY")
    lb = create_lb(client, flavor_id=make_flavor(client, profile["id"])["id"])
    assert images_of(client, lb["id"]) == [gold.id, gold.id]


def test_a_tag_with_no_image_fails_the_build_and_says_how_to_fix_it(client, services, store,
                                                                     caplog):
    services.settings.controller_worker.amp_image_tag = "prod"
    add_image(store, ["canary"], "other")  # another tag's image is not a fallback
    caplog.set_level(logging.INFO)
    response = client.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "vip_subnet_id": SUBNET, "project_id": PROJECT}})
    lb_id = response.json()["loadbalancer"]["id"]
    wait_for(lambda: client.get(f"/v2/lbaas/loadbalancers/{lb_id}").json()["loadbalancer"],
             "provisioning_status", "ERROR")
    assert images_of(client, lb_id) == []
    reason = (f"no amphora image is tagged 'prod' in {store.root}; build one with: "
              "lbaas image build --tag prod")
    assert any(reason in record.getMessage() and lb_id in record.getMessage()
               for record in caplog.records), [r.getMessage() for r in caplog.records]


def test_spares_run_the_configured_image_and_an_outdated_spare_is_replaced(
        client, services, store, context):
    services.settings.controller_worker.amp_image_tag = "prod"
    services.settings.house_keeping.spare_amphora_pool_size = 1
    old = add_image(store, ["prod"], "old")
    fill_spare_pool(context)
    [spare] = spare_amphorae(context)
    assert spare.image_id == old.id

    # A load balancer of another image builds its own amphora and leaves the spare.
    gold = add_image(store, ["gold"], "gold")
    profile = make_profile(client, amp_image_tag="gold")
    lb = create_lb(client, flavor_id=make_flavor(client, profile["id"])["id"])
    assert images_of(client, lb["id"]) == [gold.id]
    assert [s.id for s in spare_amphorae(context)] == [spare.id]

    new = add_image(store, ["prod"], "new")
    fill_spare_pool(context)
    [replacement] = spare_amphorae(context)
    assert replacement.id != spare.id and replacement.image_id == new.id
    taker = create_lb(client, name="takes the spare")
    assert [amphora["id"] for amphora in amphorae_of(client, taker["id"])] == [replacement.id]


def test_spares_wait_for_an_image_when_the_tag_names_none(client, services, context, caplog):
    services.settings.controller_worker.amp_image_tag = "prod"
    services.settings.house_keeping.spare_amphora_pool_size = 2
    caplog.set_level(logging.WARNING)
    fill_spare_pool(context)
    assert spare_amphorae(context) == []
    assert any("spare pool: no spare amphora can be booted: no amphora image is tagged "
               "'prod'" in record.getMessage() for record in caplog.records)


def test_a_malformed_configured_tag_stops_the_service_with_one_line(tmp_path):
    settings = config.load(environ={"LBAAS__DEFAULT__state_path": str(tmp_path), **NOOP_DRIVERS,
                                    "LBAAS__controller_worker__amp_image_tag": "two words"})
    with pytest.raises(config.ConfigError, match=r"^\[controller_worker\] amp_image_tag: "
                                                 "invalid tag 'two words'"):
        service.open_services(settings)


def test_a_worker_starting_with_a_tag_that_names_no_image_warns(services, drivers, caplog):
    services.settings.controller_worker.amp_image_tag = "prod"
    caplog.set_level(logging.WARNING)
    with service.running_worker(services, drivers):
        pass
    assert any("[controller_worker] amp_image_tag: no amphora image is tagged 'prod'"
               in record.getMessage() for record in caplog.records)
