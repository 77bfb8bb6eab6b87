"""Images for tests: small ones for the store and image selection (a real tarball holding
one file, added as a build adds its result, no mmdebstrap), and a real build of this
tree's recipe, cached between runs, for the tests that run amphorae from it."""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lbaas.images import build
from lbaas.images.store import ROOTFS, Image, ImageStore

VERSIONS = {"haproxy": "2.6.12-1+deb12u4", "keepalived": "1:2.2.7-1+b2",
            "python3": "3.11.2-1+b1"}


def add_image(store: ImageStore, tags: Sequence[str] = (), content: str = "",
              image_id: str | None = None) -> Image:
    """An image whose root filesystem holds /etc/marker with ``content`` (different
    contents: different images); ``image_id`` instead of the start of its hash."""
    staged = store.staging()
    data = content.encode()
    with tarfile.open(staged / ROOTFS, "w") as tar:
        member = tarfile.TarInfo("./etc/marker")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    digest = hashlib.sha256((staged / ROOTFS).read_bytes()).hexdigest()
    image = Image(id=image_id or digest[:32], sha256=digest, created_at="",
                  size=(staged / ROOTFS).stat().st_size, tags=tuple(tags),
                  versions=dict(VERSIONS), packages={**VERSIONS, "libc6": "2.36-9+deb12u10"},
                  agent_hash="0" * 64, recipe={"suite": "bookworm", "packages": ["haproxy"]},
                  path=staged)
    return store.add(staged, image)


CACHE = Path(os.environ.get("LBAAS_TEST_IMAGE_CACHE", "/var/cache/lbaas-test-images"))
KEPT = 3  # recipes whose builds stay cached
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Built:
    recipe: build.Recipe
    image: Image
    root: Path  # the root filesystem unpacked (shared by test runs: only read)

    def run(self, *command: str, **env: str) -> str:
        """``command`` chrooted into the image, with a clean environment; its output."""
        result = subprocess.run(["chroot", str(self.root), "/usr/bin/env", "-i", f"PATH={PATH}",
                                 *(f"{key}={value}" for key, value in env.items()), *command],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout + result.stderr


@contextlib.contextmanager
def cached_build() -> Iterator[Built]:
    """A real image of this tree's recipe: built once per machine and recipe, under
    CACHE/<recipe key>/ (the key hashes every input: packages, options, the agent's
    source, so changing any of them builds again); the three recipes used last are kept."""
    recipe = build.Recipe.for_host()
    entry = CACHE / recipe.key
    entry.mkdir(parents=True, exist_ok=True)
    with open(entry / ".lock", "a") as lock:
        # Exclusive while building or unpacking (a run of the same recipe waits), shared
        # while the tests read it (a run cleaning the cache leaves it alone).
        fcntl.flock(lock, fcntl.LOCK_EX)
        store = ImageStore(entry / "images")
        if not store.images():
            build.build(store, recipe)
        [image] = store.images()
        root, unpacked = entry / "root", entry / "root.unpacked"
        if not unpacked.exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            subprocess.run(["tar", "-xf", str(image.rootfs), "-C", str(root)], check=True)
            unpacked.touch()
        os.utime(entry)
        fcntl.flock(lock, fcntl.LOCK_SH)
        _remove_unused(keep=entry)
        yield Built(recipe, image, root)


def _remove_unused(keep: Path) -> None:
    """Keep the builds of the few recipes used last (worktrees with different agents),
    and any that a run is using now."""
    entries = sorted((entry for entry in CACHE.iterdir() if entry.is_dir() and entry != keep),
                     key=lambda entry: entry.stat().st_mtime, reverse=True)
    for entry in entries[KEPT - 1:]:
        with open(entry / ".lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            shutil.rmtree(entry, ignore_errors=True)


def add_built(store: ImageStore, built: Built, tags: Sequence[str],
              image_id: str | None = None) -> Image:
    """The cached build added to ``store`` with ``tags`` (its tarball linked, not copied,
    where the file systems allow); ``image_id``: as another image (a "new build")."""
    staged = store.staging()
    try:
        os.link(built.image.rootfs, staged / ROOTFS)
    except OSError:
        shutil.copyfile(built.image.rootfs, staged / ROOTFS)
    return store.add(staged, dataclasses.replace(built.image, id=image_id or built.image.id,
                                                 tags=tuple(tags), path=staged))
