"""``lbaas image ...``: build amphora images and manage the local image store.

``[controller_worker] amp_image_tag`` (or a flavor's ``amp_image_tag``) picks the newest
image with that tag for each new amphora; see lbaas.images.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from lbaas.cli import common
from lbaas.cli.common import ConfigFile, Format, OutputFormat, print_list, print_show
from lbaas.images import build as image_build
from lbaas.images import usage
from lbaas.images.store import Image, ImageError, ImageStore, NoImageForTag, check_tag

app = typer.Typer(help="Amphora images: build them, tag them, list and delete them.",
                  no_args_is_help=True)
console = Console(stderr=True)

COLUMNS = (("ID", "id"), ("Tags", "tags"), ("Created", "created_at"), ("Size", "size"),
           ("haproxy", "haproxy"), ("keepalived", "keepalived"), ("python3", "python3"))
Ref = Annotated[str, typer.Argument(help="Image id, or its first digits (4 or more).")]
Tag = Annotated[str, typer.Argument(help="The tag (as \\[controller_worker] amp_image_tag).")]

_reporting = functools.partial(common.reporting, ImageError)


def _store(config_file: Path | None) -> ImageStore:
    return ImageStore.from_settings(common.settings(config_file))


def _row(image: Image, fmt: OutputFormat) -> dict[str, Any]:
    """A list row: sizes in MB for people, in bytes for JSON."""
    size: int | str = image.size if fmt is OutputFormat.json else f"{image.size / 1e6:.1f} MB"
    return {"id": image.id, "tags": list(image.tags), "created_at": image.created_at,
            "size": size, **{name: image.versions.get(name) for name in image_build.VERSIONED}}


def _show(image: Image, fmt: OutputFormat) -> None:
    """The whole metadata as JSON; in a table, the packages as a count."""
    shown = image.metadata()
    if fmt is OutputFormat.table:
        shown["packages"] = f"{len(image.packages)} installed (-f json lists them)"
        shown["recipe"] = f"{image.recipe.get('suite')}: {', '.join(image.recipe.get('packages', []))}"
    print_show(shown, fmt)


def _now_selected(store: ImageStore, tags: Sequence[str]) -> None:
    """After a tag left an image: which image each tag selects now, or a warning."""
    for tag in tags:
        try:
            typer.echo(f"tag {tag} now selects {store.newest(tag).id}")
        except NoImageForTag:
            console.print(f"warning: no image is tagged {tag} any more: amphorae to be built "
                          f"with it fail until one is (lbaas image build --tag {tag})",
                          markup=False, highlight=False, soft_wrap=True)


@app.command("build")
def build(
    tags: Annotated[Optional[list[str]], typer.Option(
        "--tag", help="Tag the new image (repeatable); new amphorae run the newest image "
        "with the configured tag.")] = None,
    suite: Annotated[Optional[str], typer.Option(
        "--suite", help="Debian release (default: this host's).")] = None,
    mirrors: Annotated[Optional[list[Path]], typer.Option(
        "--mirror", exists=True, dir_okay=False, readable=True,
        help="An apt sources file (one-line or deb822) to take packages from "
        "(repeatable; default: this host's /etc/apt sources).")] = None,
    config_file: ConfigFile = None, fmt: Format = OutputFormat.table,
) -> None:
    """Build an amphora image from Debian packages (mmdebstrap, as root) and add it to
    the store under [DEFAULT] state_path."""
    store = _store(config_file)
    with _reporting():
        for tag in tags or []:
            check_tag(tag)
        recipe = image_build.Recipe.for_host(suite)
        console.print(f"building an amphora image from {recipe.suite} packages with "
                      "mmdebstrap (about a minute)", markup=False, highlight=False)
        image = image_build.build(store, recipe, tags or [], mirrors)
    _show(image, fmt)


@app.command("list")
def list_images(config_file: ConfigFile = None, fmt: Format = OutputFormat.table) -> None:
    """List the images, newest first, with their tags and main versions."""
    with _reporting():
        images = _store(config_file).images()
    print_list([_row(image, fmt) for image in images], COLUMNS, fmt)


@app.command("show")
def show(ref: Ref, config_file: ConfigFile = None, fmt: Format = OutputFormat.table) -> None:
    """Show an image's metadata: versions, recipe, agent hash (-f json: every package)."""
    with _reporting():
        _show(_store(config_file).get(ref), fmt)


@app.command("tag")
def tag(ref: Ref, tag: Tag, config_file: ConfigFile = None) -> None:
    """Add a tag to an image (other images keep it too: the newest with it is used)."""
    with _reporting():
        image = _store(config_file).tag(ref, tag)
    typer.echo(f"{image.id}: tags {', '.join(image.tags)}")


@app.command("untag")
def untag(ref: Ref, tag: Tag, config_file: ConfigFile = None) -> None:
    """Remove a tag from an image (the next newest image with it is used from now on)."""
    store = _store(config_file)
    with _reporting():
        image = store.untag(ref, tag)
    typer.echo(f"{image.id}: tags {', '.join(image.tags) or '(none)'}")
    _now_selected(store, [tag])


@app.command("delete")
def delete(ref: Ref, config_file: ConfigFile = None) -> None:
    """Delete an image; refused while an amphora (of any status but DELETED) uses it."""
    store = _store(config_file)
    db = common.database(config_file)
    with _reporting():
        image = store.delete(ref, lambda image_id: usage.amphorae_using(db, image_id))
    typer.echo(f"{image.id}: deleted")
    _now_selected(store, image.tags)
