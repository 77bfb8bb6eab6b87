"""A real image build (mmdebstrap, once per machine and recipe): the image's haproxy,
keepalived and tools run, the agent is inside and imports with the image's Python, the
metadata says what is installed, and the tarball is small and reproducible.

The build is cached under /var/cache/lbaas-test-images/<recipe key>/ (or
$LBAAS_TEST_IMAGE_CACHE): the key hashes every input (packages, options, the agent's
source), so changing any of them builds again; the builds of the three recipes used
last are kept.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbaas.cli import app
from lbaas.images import build
from lbaas.images.store import Image, ImageStore

pytestmark = pytest.mark.root  # mmdebstrap's root mode and chroot

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


@pytest.fixture(scope="module")
def built() -> Iterator[Built]:
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


def _upstream(version: str) -> str:
    """``1:2.2.7-1+b2`` -> ``2.2.7``: a Debian version's upstream part."""
    return version.split(":", 1)[-1].rsplit("-", 1)[0]


@pytest.mark.timeout(900)  # the first build on a machine: about a minute and a half
def test_the_images_haproxy_and_keepalived_run(built):
    haproxy = built.run("haproxy", "-v")
    assert haproxy.startswith(f"HAProxy version {built.image.versions['haproxy']} ")
    assert f"Keepalived v{_upstream(built.image.versions['keepalived'])} " \
        in built.run("keepalived", "-v")


def test_the_agent_is_inside_and_imports_with_the_images_python(built):
    agent = Path(built.root, build.AGENT_DIR.lstrip("/"))
    inside = {str(path.relative_to(agent)): path.read_bytes() for path in agent.rglob("*")
              if path.is_file() and "__pycache__" not in path.parts}
    assert inside == built.recipe.agent
    assert list(agent.glob("lbaas/amphora/agent/__pycache__/server.cpython-*.pyc"))
    probe = ("import lbaas.amphora.agent.__main__, lbaas.amphora.agent.server; "
             "from lbaas.amphora.agent import nft; print(nft.Nft().backend)")
    assert built.run("python3", "-S", "-c", probe, PYTHONPATH=build.AGENT_DIR,
                     PYTHONDONTWRITEBYTECODE="1").split() == ["libnftables"]


def test_the_image_has_the_commands_the_agent_and_haproxy_call(built):
    for command in ("ip", "nft", "conntrack", "ping", "socat", "setsid"):
        assert built.run("sh", "-c", f"command -v {command}").strip(), command


def test_the_metadata_records_what_is_installed(built):
    image = built.image
    installed = dict(line.split() for line in built.run(
        "dpkg-query", "-W", "-f", "${Package} ${Version}\\n", *build.VERSIONED).splitlines())
    assert image.versions == installed
    assert image.packages["haproxy"] == installed["haproxy"] and len(image.packages) > 50
    assert image.agent_hash == built.recipe.agent_hash
    digest = hashlib.sha256(image.rootfs.read_bytes()).hexdigest()
    assert (image.sha256, image.id) == (digest, digest[:32])
    assert image.size == image.rootfs.stat().st_size
    assert image.recipe == built.recipe.describe()


def test_the_tarball_is_small_and_reproducible(built):
    with tarfile.open(built.image.rootfs) as tar:
        members = tar.getmembers()
    names = [member.name for member in members
             if member.name != "./dev" and not member.name.startswith("./dev/")]
    # mmdebstrap's order: /dev first, then depth first with each directory sorted by name
    assert names == sorted(names, key=lambda name: name.split("/"))
    assert max(member.mtime for member in members) == built.recipe.epoch  # clamped to it
    # Owners are the image's system users; the agent, copied in from the host, is root's.
    assert max(max(member.uid, member.gid) for member in members) < 1000
    assert {(member.uid, member.gid) for member in members
            if member.name.startswith(f".{build.AGENT_DIR}/")} == {(0, 0)}
    files = {member.name for member in members if member.isfile()}
    assert not files & {"./etc/resolv.conf", "./etc/hostname", "./usr/bin/apt"}
    assert not [name for name in files if name.startswith(
        ("./usr/share/man/", "./var/lib/apt/", "./var/cache/apt/", "./usr/share/perl/"))
        and name != "./var/lib/apt/lists/lock"]  # mmdebstrap's cleanup leaves it, empty
    docs = [name for name in files if name.startswith("./usr/share/doc/")]
    assert docs and all(name.endswith("/copyright") for name in docs)
    assert built.image.size < 180e6  # 135 MB when written; minbase with docs: 224 MB


def test_a_failed_build_says_why_in_one_line_and_leaves_nothing(tmp_path):
    sources = tmp_path / "nowhere.list"
    sources.write_text("deb file:///nonexistent-lbaas-mirror bookworm main\n")
    result = CliRunner().invoke(app, ["image", "build", "--tag", "prod", "--mirror",
                                      str(sources)],
                                env={"LBAAS__DEFAULT__state_path": str(tmp_path)})
    assert result.exit_code == 1
    [error] = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert error.startswith("error: mmdebstrap failed (exit ")
    assert "'file:/nonexistent-lbaas-mirror bookworm Release' does not have a Release file" \
        in error
    assert list((tmp_path / "images").iterdir()) == []
