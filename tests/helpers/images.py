"""Small images for tests of the store and of image selection: a real tarball holding
one file, added to a store as a build adds its result (no mmdebstrap)."""
from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Sequence

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
