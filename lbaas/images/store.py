"""The local image store: one directory per image under ``<state_path>/images/``.

``<id>/rootfs.tar`` is the image's root filesystem, ``<id>/metadata.json`` what is known
of it (tags, versions, size, when it was added), and ``<id>/rootfs/`` the tarball unpacked
once an amphora runs it. An image's id is the start of its
tarball's SHA-256, so building the same inputs twice gives the same image, not two.
Several images may carry one tag, as in Glance: the newest of them is the one a tag
selects, so a new build tagged like the running one becomes the image of new amphorae,
and untagging it goes back to the previous one.

Every change takes ``.lock`` (an advisory lock on a file next to the images), so two
commands tagging or deleting at once never lose each other's change; readers need no
lock, as an image's directory appears, and its metadata is replaced, in one rename.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lbaas import filelock
from lbaas.config import Settings

ROOTFS = "rootfs.tar"
UNPACKED = "rootfs"  # the tarball unpacked, for the amphorae (lbaas.drivers.compute.container)
METADATA = "metadata.json"
ID_LENGTH = 32  # hex digits of the SHA-256: fits the amphora table's image_id (36)
TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,254}$")


class ImageError(Exception):
    """An image operation that cannot be done; the message says why and what to do."""


class ImageNotFound(ImageError):
    pass


class ImageInUse(ImageError):
    pass


class NoImageForTag(ImageError):
    pass


@dataclasses.dataclass(frozen=True)
class Image:
    """An image of the store, as its metadata describes it."""

    id: str
    sha256: str
    created_at: str  # ISO 8601, UTC: sorts as it reads
    size: int  # bytes of rootfs.tar
    tags: tuple[str, ...]
    # The packages an amphora relies on (haproxy, keepalived, python3) and every installed
    # package, each name -> Debian version; the agent's content hash (lbaas.images.build).
    versions: dict[str, str]
    packages: dict[str, str]
    agent_hash: str
    recipe: dict[str, Any]
    path: Path  # the image's directory

    @property
    def rootfs(self) -> Path:
        return self.path / ROOTFS

    def metadata(self) -> dict[str, Any]:
        """What metadata.json holds (and ``lbaas image show -f json`` prints)."""
        fields = dataclasses.asdict(self)
        del fields["path"]
        fields["tags"] = list(self.tags)
        return fields

    @classmethod
    def load(cls, path: Path) -> Image:
        try:
            data = json.loads((path / METADATA).read_text())
            return cls(**{**data, "tags": tuple(data["tags"]), "path": path})
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ImageError(f"{path / METADATA} cannot be read ({exc}); remove {path} "
                             "or restore the file") from exc


def check_tag(tag: str) -> str:
    if not TAG.match(tag):
        raise ImageError(f"invalid tag {tag!r}: up to 255 letters, digits and . _ : @ + -, "
                         "starting with a letter or digit")
    return tag


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


class ImageStore:
    """The images under ``root``; the directory is made on the first change."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageStore:
        return cls(settings.DEFAULT.state_path / "images")

    def images(self) -> list[Image]:
        """Every image, newest first."""
        if not self.root.is_dir():
            return []
        found = [Image.load(path) for path in self.root.iterdir()
                 if not path.name.startswith(".") and (path / METADATA).is_file()]
        return sorted(found, key=lambda image: (image.created_at, image.id), reverse=True)

    def get(self, ref: str) -> Image:
        """The image whose id is ``ref`` or starts with it (at least 4 digits)."""
        ref = ref.lower()
        matches = [image for image in self.images()
                   if image.id == ref or (len(ref) >= 4 and image.id.startswith(ref))]
        if not matches:
            raise ImageNotFound(f"no image {ref} in {self.root} (lbaas image list shows them)")
        if len(matches) > 1:
            raise ImageError(f"{ref} is the start of {len(matches)} image ids; give more of it")
        return matches[0]

    def newest(self, tag: str) -> Image:
        """The newest image tagged ``tag``: the one new amphorae run."""
        for image in self.images():
            if tag in image.tags:
                return image
        raise NoImageForTag(f"no amphora image is tagged {tag!r} in {self.root}; build one "
                            f"with: lbaas image build --tag {tag}")

    def unpacked(self, image: Image) -> Path:
        """The image's root filesystem as a directory (``<id>/rootfs``), unpacked on first
        use and shared read-only by the amphorae that run it; a half-unpacked one (a crash)
        is never used: it becomes ``rootfs`` in one rename once complete."""
        target = image.path / UNPACKED
        if target.is_dir():
            return target
        with self._locked():
            if target.is_dir():
                return target
            partial = image.path / f".{UNPACKED}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(mode=0o755)
            result = subprocess.run(["tar", "--extract", "--numeric-owner", "--file",
                                     str(image.rootfs), "--directory", str(partial)],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                shutil.rmtree(partial, ignore_errors=True)
                raise ImageError(f"image {image.id} cannot be unpacked: "
                                 f"{result.stderr.strip()[-300:]}")
            partial.rename(target)
        return target

    def staging(self) -> Path:
        """A private directory, in the store's file system, to build a new image in."""
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".build-{os.getpid()}-", dir=self.root))

    def remove_abandoned(self) -> None:
        """Remove what a crash left: staging directories of builds whose process is gone,
        and images a delete had taken out of the store but not removed yet."""
        if not self.root.is_dir():
            return
        for path in self.root.glob(".build-*"):
            pid = path.name.split("-")[1]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                shutil.rmtree(path, ignore_errors=True)
        for path in self.root.glob(".delete-*"):
            shutil.rmtree(path, ignore_errors=True)

    def add(self, staged: Path, image: Image) -> Image:
        """Move a staged image (``staged`` holding rootfs.tar) into the store; an image
        with the same content that is there already keeps its place and gains the tags."""
        with self._locked():
            target = self.root / image.id
            if (target / METADATA).is_file():
                shutil.rmtree(staged)
                return self._retag(target, add=image.tags)
            placed = dataclasses.replace(image, path=target, created_at=now())
            _write_metadata(staged, placed)
            staged.rename(target)
            return placed

    def tag(self, ref: str, tag: str) -> Image:
        check_tag(tag)
        with self._locked():
            return self._retag(self.get(ref).path, add=(tag,))

    def untag(self, ref: str, tag: str) -> Image:
        with self._locked():
            image = self.get(ref)
            if tag not in image.tags:
                raise ImageError(f"image {image.id} is not tagged {tag!r}")
            return self._retag(image.path, remove=(tag,))

    def delete(self, ref: str, users: Callable[[str], Sequence[str]]) -> Image:
        """Remove an image that no amphora uses (``users``: an image id -> the amphorae
        that use it, asked while the store is locked)."""
        with self._locked():
            image = self.get(ref)
            used_by = users(image.id)
            if used_by:
                shown = ", ".join(sorted(used_by)[:3]) + (", ..." if len(used_by) > 3 else "")
                raise ImageInUse(f"image {image.id} is used by {len(used_by)} amphora(e) "
                                 f"({shown}); fail them over to another image first")
            # Out of the store in one rename, then removed at leisure.
            doomed = self.root / f".delete-{image.id}"
            image.path.rename(doomed)
            shutil.rmtree(doomed)
            return image

    def _retag(self, path: Path, add: Sequence[str] = (), remove: Sequence[str] = ()) -> Image:
        image = Image.load(path)
        tags = [tag for tag in image.tags if tag not in remove]
        tags += [tag for tag in add if tag not in tags]
        changed = dataclasses.replace(image, tags=tuple(tags))
        _write_metadata(path, changed)
        return changed

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return filelock.held(self.root / ".lock")


def _write_metadata(directory: Path, image: Image) -> None:
    """metadata.json replaced in one rename: a reader sees the old one or the new one."""
    partial = directory / f".{METADATA}.tmp"
    partial.write_text(json.dumps(image.metadata(), indent=2, sort_keys=True) + "\n")
    partial.replace(directory / METADATA)
