"""Amphora image benchmark: how long ``lbaas image build`` takes, how big the image is,
and whether two builds of the same recipe give the same bytes.

It builds the image ``--runs`` times (default 2) into a private store in a temporary
directory, exactly as ``lbaas image build`` does (lbaas.images.build: mmdebstrap with the
host's apt sources; packages are downloaded by every build, mmdebstrap keeps no cache),
and prints per build the wall time, the CPU time of mmdebstrap and its children, the
tarball's size and its SHA-256. Then the image's size unpacked, its package count and
versions, and, with ``--baseline``, the same figures of the plain
``mmdebstrap --variant=minbase --include=haproxy,keepalived,python3-minimal,iproute2``
for comparison. The temporary directory is removed at the end, also on error or Ctrl-C.

Run as root from the repository root: ``.venv/bin/python bench/image_bench.py``.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lbaas.images import build
from lbaas.images.store import Image, ImageStore

BASELINE_PACKAGES = "haproxy,keepalived,python3-minimal,iproute2"


@dataclass(frozen=True)
class Timed:
    wall_s: float
    cpu_s: float  # user + system of the finished children (mmdebstrap, dpkg, apt, ...)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed_build(store: ImageStore, recipe: build.Recipe) -> tuple[Image, Timed]:
    cpu, began = _children_cpu(), time.monotonic()
    image = build.build(store, recipe)
    return image, Timed(time.monotonic() - began, _children_cpu() - cpu)


def _baseline(workdir: Path, suite: str) -> tuple[int, int, Timed]:
    """The plain minbase build of the issue: its tarball's size, unpacked size, timing."""
    target = workdir / "baseline.tar"
    cpu, began = _children_cpu(), time.monotonic()
    subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase",
                    f"--include={BASELINE_PACKAGES}", suite, str(target),
                    *map(str, build.host_sources())], check=True)
    timed = Timed(time.monotonic() - began, _children_cpu() - cpu)
    size = target.stat().st_size
    unpacked = _unpacked_size(target)
    target.unlink()
    return size, unpacked, timed


def _unpacked_size(rootfs: Path) -> int:
    """Bytes of the regular files in the tarball (what it takes unpacked, less blocks)."""
    with tarfile.open(rootfs) as tar:
        return sum(member.size for member in tar.getmembers() if member.isfile())


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="builds of our image (default 2)")
    parser.add_argument("--baseline", action="store_true",
                        help="also build the plain minbase image, for comparison")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("image_bench: run as root (mmdebstrap's root mode)", file=sys.stderr)
        return 2
    recipe = build.Recipe.for_host()
    print(f"recipe {recipe.key[:16]} (suite {recipe.suite}, {', '.join(recipe.packages)}); "
          f"load average {_load_average()}")
    with tempfile.TemporaryDirectory(prefix="lbaas-image-bench-", dir="/var/tmp") as tmp:
        store = ImageStore(Path(tmp) / "images")
        digests = set()
        image = None
        for run in range(1, args.runs + 1):
            image, timed = _timed_build(store, recipe)
            digests.add(image.sha256)
            print(f"build {run}: {timed.wall_s:.1f} s wall, {timed.cpu_s:.1f} s CPU, "
                  f"{_mb(image.size)} tarball, sha256 {image.sha256[:16]} "
                  f"(load {_load_average()})")
        assert image is not None
        print(f"image {image.id}: {_mb(image.size)} tarball, "
              f"{_mb(_unpacked_size(image.rootfs))} of files unpacked, "
              f"{len(image.packages)} packages; "
              + ", ".join(f"{name} {version}" for name, version in image.versions.items()))
        if args.runs > 1:
            print("reproducible: " + ("yes, every build gave the same tarball"
                                      if len(digests) == 1 else
                                      f"NO, {len(digests)} different tarballs"))
        if args.baseline:
            size, unpacked, timed = _baseline(Path(tmp), recipe.suite)
            print(f"baseline (minbase, {BASELINE_PACKAGES}): {timed.wall_s:.1f} s wall, "
                  f"{timed.cpu_s:.1f} s CPU, {_mb(size)} tarball, {_mb(unpacked)} unpacked")
    return 0 if len(digests) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
