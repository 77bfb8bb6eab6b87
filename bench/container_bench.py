"""Container amphora benchmark: an amphora run from an image (runc, its own mount, PID,
UTS and IPC namespaces, cgroup limits) against the plain network-namespace amphora that
runs the host's binaries, side by side.

For each mode it sets up what ``dataplane_bench.py`` sets up (``lbaas up`` with the real
drivers, a member and a VIP network, two nginx backends, a client namespace); for the
container mode the image of ``--store`` (the newest one there, e.g. the tests' cached
build in /var/cache/lbaas-test-images/<key>/images, or one from ``lbaas image build``) is
linked into the service's store and tagged as ``[controller_worker] amp_image_tag``, with
``[compute] flavors = amphora:1024:1``. Then ``--runs`` times: POST a load balancer (HTTP
listener, pool, two members) and time the first ``200`` through its VIP; the last one is
kept and its amphora's memory measured (Pss of every process in its namespace: shared
pages split fairly, so the image's own libraries, which the host's processes do not
share, show). The first container create of a service also unpacks the image (timed
apart).

Everything it made is removed at the end, also on error or Ctrl-C. Run as root from the
repository root: ``.venv/bin/python bench/container_bench.py --store DIR``.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import time
from pathlib import Path

from api_bench import Target, percentile
from dataplane_bench import (
    BenchError,
    FirstRequest,
    Teardown,
    amphora_processes,
    bench_first_request,
    lb_body,
    load_average,
    only_amphora,
    run_benchmark,
    set_up,
)

from lbaas.images.store import ROOTFS, ImageStore

TAG = "bench"


@dataclasses.dataclass(frozen=True)
class Mode:
    name: str
    samples: list[FirstRequest]
    pss_mb: float
    rss_mb: float
    processes: int


def link_image(source: ImageStore, state_path: Path) -> float:
    """The newest image of ``source`` into the service's store, tagged TAG, unpacked;
    returns the seconds the unpacking took (what a host's first amphora of it pays)."""
    images = source.images()
    if not images:
        raise BenchError(f"no image in {source.root}; build one with lbaas image build")
    store = ImageStore(state_path / "images")
    staged = store.staging()
    try:
        os.link(images[0].rootfs, staged / ROOTFS)
    except OSError:  # another file system
        shutil.copyfile(images[0].rootfs, staged / ROOTFS)
    added = store.add(staged, dataclasses.replace(images[0], tags=(TAG,), path=staged))
    began = time.monotonic()
    store.unpacked(added)
    return time.monotonic() - began


def bench_mode(args: argparse.Namespace, workdir: Path, image: bool) -> Mode:
    extra = (f"[controller_worker]\namp_image_tag = {TAG}\n[compute]\nflavors = amphora:1024:1\n"
             if image else "")
    with Teardown() as stack:
        if image:
            unpack_s = link_image(ImageStore(args.store), workdir / "state")
            print(f"image linked into the store, unpacked in {unpack_s:.2f} s")
        env = set_up(stack, workdir, None, args.client_arp_retry_ms, extra)
        name = "container (image)" if image else "namespace (host binaries)"
        print(f"\n{name}: POST -> first 200, load average {load_average()}")
        _, samples = bench_first_request(
            env.api, env.client_ns, args.runs,
            lambda index, vip: lb_body(index, vip, env.vips, env.members, env.backends))
        time.sleep(2)  # haproxy and the agent settled
        processes = amphora_processes(only_amphora(env.service))
        for process in processes:
            print(f"  {process.role:<20} Pss {process.pss_kib / 1024:6.1f} MB   "
                  f"VmRSS {process.rss_kib / 1024:6.1f} MB")
        print("  cleaning up ...", flush=True)
    return Mode(name, samples, sum(p.pss_kib for p in processes) / 1024,
                sum(p.rss_kib for p in processes) / 1024, len(processes))


def run(args: argparse.Namespace, workdir: Path) -> list[Target]:
    modes = []
    for image in (False, True):
        (workdir / str(image)).mkdir()
        modes.append(bench_mode(args, workdir / str(image), image))
    print(f"\n{'':<34}{modes[0].name:>28}{modes[1].name:>22}")
    rows = [("POST -> first 200 p50", lambda m: f"{percentile([s.first_request_s for s in m.samples], 50):.3f} s"),
            ("POST -> first 200 max", lambda m: f"{max(s.first_request_s for s in m.samples):.3f} s"),
            ("amphora memory, Pss", lambda m: f"{m.pss_mb:.1f} MB"),
            ("amphora memory, VmRSS", lambda m: f"{m.rss_mb:.1f} MB"),
            ("processes", lambda m: str(m.processes))]
    for label, cell in rows:
        print(f"{label:<34}{cell(modes[0]):>28}{cell(modes[1]):>22}")
    container = percentile([s.first_request_s for s in modes[1].samples], 50)
    return [Target("container amphora POST -> first 200 p50", container, "s", "< 1 s",
                   container < 1.0),
            Target("container amphora memory (Pss)", modes[1].pss_mb, "MB", "< 40 MB",
                   modes[1].pss_mb < 40)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, required=True,
                        help="an image store directory holding the image to run")
    parser.add_argument("--runs", type=int, default=5, help="creates per mode (default 5)")
    parser.add_argument("--client-arp-retry-ms", type=int, default=10,
                        help="how often the client re-asks for an unanswered VIP's MAC")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(run, parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
