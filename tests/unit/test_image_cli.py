"""``lbaas image list / show / tag / untag / delete`` on a store of small test images,
and ``build``'s refusal of a bad tag before anything is built."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lbaas import constants
from lbaas.cli import app
from lbaas.db.models import Amphora
from lbaas.images.store import ImageStore
from tests.helpers import NOOP_DRIVERS
from tests.helpers.images import VERSIONS, add_image


@pytest.fixture
def store(services) -> ImageStore:
    return ImageStore.from_settings(services.settings)


@pytest.fixture
def image_cli(services):
    env = {**NOOP_DRIVERS, "LBAAS__DEFAULT__state_path": str(services.settings.DEFAULT.state_path),
           "COLUMNS": "250"}  # whole ids in tables

    def run(*args: str):
        return CliRunner().invoke(app, ["image", *args], env=env)
    return run


def test_list_shows_images_newest_first_as_a_table_or_json(image_cli, store):
    assert json.loads(image_cli("list", "-f", "json").output) == []
    old = add_image(store, ["prod"], "old")
    new = add_image(store, ["prod", "canary"], "new")
    result = image_cli("list", "-f", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [row["ID"] for row in rows] == [new.id, old.id]
    assert rows[0] == {"ID": new.id, "Tags": ["prod", "canary"], "Created": new.created_at,
                       "Size": new.size, **VERSIONS}
    table = image_cli("list")
    assert table.exit_code == 0 and old.id in table.output
    assert f"{old.size / 1e6:.1f} MB" in table.output and "2.6.12-1+deb12u4" in table.output


def test_show_prints_the_metadata_with_every_package_in_json(image_cli, store):
    image = add_image(store, ["prod"], "x")
    shown = json.loads(image_cli("show", image.id[:8], "-f", "json").output)
    assert shown["id"] == image.id and shown["packages"]["libc6"] == "2.36-9+deb12u10"
    assert shown["versions"] == VERSIONS and shown["agent_hash"] == image.agent_hash
    table = image_cli("show", image.id)
    assert table.exit_code == 0 and "4 installed (-f json lists them)" in table.output


def test_tag_and_untag_change_which_image_the_tag_selects(image_cli, store):
    old = add_image(store, ["prod"], "old")
    new = add_image(store, [], "new")
    result = image_cli("tag", new.id[:6], "prod")
    assert result.exit_code == 0 and result.output == f"{new.id}: tags prod\n"
    assert store.newest("prod").id == new.id
    result = image_cli("untag", new.id, "prod")
    assert result.exit_code == 0
    assert result.output == f"{new.id}: tags (none)\ntag prod now selects {old.id}\n"
    assert store.newest("prod").id == old.id
    result = image_cli("untag", old.id, "prod")
    assert result.exit_code == 0
    assert result.output == (f"{old.id}: tags (none)\nwarning: no image is tagged prod any "
                             "more: amphorae to be built with it fail until one is (lbaas "
                             "image build --tag prod)\n")


@pytest.mark.parametrize("args, message", [
    (("tag", "0000", "prod"), "no image 0000 in"),
    (("tag", "IMAGE", "two words"), "invalid tag 'two words'"),
    (("untag", "IMAGE", "never"), "is not tagged 'never'"),
    (("delete", "fff0"), "no image fff0 in"),
    (("build", "--tag", "bad;tag"), "invalid tag 'bad;tag'"),
])
def test_bad_calls_get_one_line_and_exit_1(image_cli, store, args, message):
    image = add_image(store, ["prod"], "x")
    result = image_cli(*(image.id if arg == "IMAGE" else arg for arg in args))
    assert result.exit_code == 1, result.output
    assert message in result.output and result.output.startswith("error: ")
    assert "Traceback" not in result.output
    assert [i.tags for i in store.images()] == [("prod",)]


def test_delete_is_refused_while_a_live_amphora_runs_the_image(image_cli, store, services):
    image = add_image(store, ["prod"], "x")
    with services.db.write() as session:
        session.add(Amphora(id="a0000000-0000-4000-8000-00000000000a", image_id=image.id,
                            status=constants.ALLOCATED))
    result = image_cli("delete", image.id)
    assert result.exit_code == 1
    assert result.output == (f"error: image {image.id} is used by 1 amphora(e) "
                             "(a0000000-0000-4000-8000-00000000000a); fail them over to "
                             "another image first\n")
    assert store.get(image.id).rootfs.is_file()

    with services.db.write() as session:
        session.get(Amphora, "a0000000-0000-4000-8000-00000000000a").status = constants.DELETED
    result = image_cli("delete", image.id[:10])
    assert result.exit_code == 0 and result.output.startswith(f"{image.id}: deleted\n")
    assert "warning: no image is tagged prod any more" in result.output
    assert store.images() == []


def test_build_needs_root_and_says_so(image_cli, store, monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    result = image_cli("build", "--tag", "prod")
    assert result.exit_code == 1
    assert result.output.endswith("error: building an image needs root (mmdebstrap's root "
                                  "mode, chroot)\n")
    assert store.images() == []
