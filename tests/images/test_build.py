"""A real image build (mmdebstrap, once per machine and recipe): the image's haproxy,
keepalived and tools run, the agent is inside and imports with the image's Python, the
metadata says what is installed, and the tarball is small and reproducible.

The build is cached between runs (tests.helpers.images.cached_build).
"""
from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lbaas.cli import app
from lbaas.images import build
from tests.helpers.images import Built, cached_build

pytestmark = pytest.mark.root  # mmdebstrap's root mode and chroot


@pytest.fixture(scope="module")
def built() -> Iterator[Built]:
    with cached_build() as cached:
        yield cached


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
