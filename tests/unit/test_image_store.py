"""The local image store: what an image records, how a tag selects the newest image
carrying it, and deletes refused while an amphora uses the image."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from lbaas.images.store import ImageError, ImageInUse, ImageNotFound, ImageStore, NoImageForTag
from tests.helpers.images import VERSIONS, add_image


@pytest.fixture
def store(tmp_path) -> ImageStore:
    return ImageStore(tmp_path / "images")


def test_an_added_image_records_its_id_time_tags_versions_and_size(store):
    image = add_image(store, ["prod"], "one")
    assert len(image.id) == 32 and image.sha256.startswith(image.id)
    assert image.rootfs.is_file() and image.size == image.rootfs.stat().st_size
    saved = json.loads((store.root / image.id / "metadata.json").read_text())
    assert saved["id"] == image.id and saved["tags"] == ["prod"]
    assert saved["versions"] == VERSIONS and saved["size"] == image.size
    assert saved["created_at"].endswith("+00:00")
    assert store.images() == [image]
    assert [path.name for path in store.root.iterdir() if not path.name.startswith(".")] \
        == [image.id]


def test_the_same_content_twice_is_one_image_with_both_tags(store):
    first = add_image(store, ["a"], "same")
    second = add_image(store, ["b"], "same")
    assert second.id == first.id and second.created_at == first.created_at
    assert [image.tags for image in store.images()] == [("a", "b")]


def test_a_tag_selects_the_newest_image_carrying_it(store):
    old = add_image(store, ["prod"], "old")
    add_image(store, ["canary"], "other")
    assert store.newest("prod").id == old.id
    new = add_image(store, ["prod"], "new")
    assert store.newest("prod").id == new.id  # a newer build takes the tag over
    store.untag(new.id, "prod")
    assert store.newest("prod").id == old.id  # untagging it goes back
    store.tag(new.id, "prod")
    assert store.newest("prod").id == new.id
    assert [image.id for image in store.images()][0] == new.id  # newest first


def test_a_tag_that_names_no_image_says_how_to_build_one(store):
    add_image(store, ["prod"], "x")
    with pytest.raises(NoImageForTag) as raised:
        store.newest("staging")
    assert "no amphora image is tagged 'staging'" in str(raised.value)
    assert "lbaas image build --tag staging" in str(raised.value)


def test_images_are_found_by_id_or_its_first_digits(store):
    image = add_image(store, [], "x")
    assert store.get(image.id).id == image.id
    assert store.get(image.id[:6].upper()).id == image.id
    with pytest.raises(ImageNotFound):
        store.get(image.id[:3])  # too short to be taken for a prefix
    with pytest.raises(ImageNotFound):
        store.get("f" * 32 if not image.id.startswith("f") else "e" * 32)


def test_an_ambiguous_prefix_is_refused(store):
    add_image(store, [], "1", image_id="abcd1" + "0" * 27)
    second = add_image(store, [], "2", image_id="abcd2" + "0" * 27)
    with pytest.raises(ImageError, match="abcd is the start of 2 image ids; give more of it"):
        store.get("abcd")
    assert store.get("abcd2").id == second.id


def test_tags_are_checked_and_untagging_a_missing_tag_is_an_error(store):
    image = add_image(store, [], "x")
    for bad in ("", "two words", "-leading", "x" * 256, "semi;colon"):
        with pytest.raises(ImageError, match="invalid tag"):
            store.tag(image.id, bad)
    with pytest.raises(ImageError, match="is not tagged 'prod'"):
        store.untag(image.id, "prod")
    assert store.tag(image.id, "prod").tags == ("prod",)
    assert store.tag(image.id, "prod").tags == ("prod",)  # twice: still once


def test_delete_is_refused_while_an_amphora_uses_the_image(store):
    image = add_image(store, ["prod"], "x")
    asked = []

    def users(image_id: str) -> list[str]:
        asked.append(image_id)
        return ["amphora-1", "amphora-2"]
    with pytest.raises(ImageInUse) as raised:
        store.delete(image.id[:8], users)
    assert asked == [image.id]
    assert str(raised.value) == (f"image {image.id} is used by 2 amphora(e) (amphora-1, "
                                 "amphora-2); fail them over to another image first")
    assert store.get(image.id).rootfs.is_file()
    assert store.delete(image.id, lambda _: []).id == image.id
    assert store.images() == [] and not (store.root / image.id).exists()


def test_what_a_crashed_build_or_delete_left_is_removed(store):
    add_image(store, [], "x")
    dead = subprocess.Popen(["true"])
    dead.wait()
    abandoned = store.root / f".build-{dead.pid}-abc"
    running = store.root / f".build-{os.getpid()}-def"
    half_deleted = store.root / ".delete-0123"
    for path in (abandoned, running, half_deleted):
        path.mkdir()
    store.remove_abandoned()
    assert not abandoned.exists() and not half_deleted.exists() and running.exists()
    assert len(store.images()) == 1


def test_an_unreadable_metadata_file_is_named_not_a_traceback(store):
    image = add_image(store, ["prod"], "x")
    (image.path / "metadata.json").write_text("{not json")
    with pytest.raises(ImageError, match=f"{image.path}/metadata.json cannot be read"):
        store.images()
