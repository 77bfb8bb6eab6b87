"""Building an amphora image: ``mmdebstrap`` installs what an amphora runs from Debian
packages into a root filesystem tarball, the amphora agent goes in under
``/opt/lbaas-agent``, and the result joins the store with its versions recorded.

The build is reproducible: the same recipe on the same mirror content gives the same
tarball, byte for byte (``SOURCE_DATE_EPOCH`` fixes every file's time, mmdebstrap sorts
the tarball and leaves out logs; apt's lists and caches, the host's resolv.conf and
hostname are taken out), so the same inputs make the same image id. It stays small:
the ``essential`` variant (no apt, no package manager's caches: an image is rebuilt,
never upgraded in place), no documentation, manual pages or translations, and none of
perl's modules beyond perl-base (keepalived links libperl through net-snmp but never
loads a module; nothing else in an amphora runs perl).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tarfile
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from lbaas.amphora import agent
from lbaas.images.store import ROOTFS, Image, ImageError, ImageStore, check_tag

# What an amphora runs, and why each is there.
PACKAGES = (
    "haproxy",  # the load balancer
    "keepalived",  # VRRP between the amphorae of an ACTIVE_STANDBY pair
    "python3",  # the amphora agent (standard library only)
    "iproute2",  # the agent's `ip`: interfaces, addresses, routes
    "nftables",  # UDP listeners' rules (libnftables1, else the `nft` command)
    "conntrack",  # UDP: the flows of a member that left are forgotten
    "iputils-ping",  # PING health monitors, UDP members' ping checks
    "socat",  # keepalived's check script asks haproxy's stats socket
    "tini",  # PID 1 of the amphora's container: reaps haproxy and keepalived (they daemonize)
    "openssh-server",  # ssh into the amphora, when [controller_worker] amp_ssh_key_name is set
)
# The versions an image's metadata shows first (every package's is there too).
VERSIONED = ("haproxy", "keepalived", "python3")
AGENT_DIR = "/opt/lbaas-agent"
# Files' time in the image when SOURCE_DATE_EPOCH is not set: 2024-01-01T00:00:00Z.
DEFAULT_EPOCH = 1704067200
DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",  # licences stay with the binaries
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
)
CUSTOMIZE = (
    'rm -f "$1/etc/resolv.conf" "$1/etc/hostname"',
    'rm -rf "$1/usr/share/perl" "$1"/usr/lib/*-linux-gnu/perl',
    'rm -rf "$1/var/lib/apt" "$1/var/cache/apt"',  # no apt inside: its state is of no use
    'rm -f "$1"/etc/ssh/ssh_host_*',  # each amphora makes its own host key (and builds repeat)
)
# Bumped when the way an image is made changes, so that cached builds are redone.
RECIPE_FORMAT = 1


class BuildError(ImageError):
    """The build could not run or failed; the message says why."""


def agent_files() -> dict[str, bytes]:
    """The agent's package and the packages above it (path under AGENT_DIR -> content),
    with ping-wrapper.sh, which haproxy runs for PING health monitors."""
    package = Path(agent.__file__ or "").parent
    root = package.parents[2]
    paths = [root / "lbaas" / "__init__.py", root / "lbaas" / "amphora" / "__init__.py",
             root / "lbaas" / "amphora" / "ping-wrapper.sh", *sorted(package.glob("*.py"))]
    return {str(path.relative_to(root)): path.read_bytes() for path in paths}


def host_suite() -> str:
    """This host's Debian release (VERSION_CODENAME of /etc/os-release)."""
    for line in Path("/etc/os-release").read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME" and value.strip('"'):
            return value.strip('"')
    raise BuildError("/etc/os-release names no VERSION_CODENAME; give --suite")


def host_sources() -> list[Path]:
    """The apt sources this host uses (sources.list and sources.list.d's .list and
    .sources files), which the build fetches packages from."""
    apt = Path("/etc/apt")
    listed = apt / "sources.list"
    found = [listed] if listed.is_file() and any(
        line.strip() and not line.lstrip().startswith("#")
        for line in listed.read_text().splitlines()) else []
    found += sorted(path for pattern in ("*.list", "*.sources")
                    for path in (apt / "sources.list.d").glob(pattern))
    if not found:
        raise BuildError("this host has no apt sources in /etc/apt; give --mirror")
    return found


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What an image is made of: its inputs, hashed into ``key``."""

    suite: str
    packages: tuple[str, ...] = PACKAGES
    epoch: int = DEFAULT_EPOCH
    agent: dict[str, bytes] = dataclasses.field(default_factory=agent_files, compare=False)

    @classmethod
    def for_host(cls, suite: str | None = None) -> Recipe:
        epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
        return cls(suite=suite or host_suite(),
                   epoch=int(epoch) if epoch.isdigit() else DEFAULT_EPOCH)

    @cached_property
    def agent_hash(self) -> str:
        digest = hashlib.sha256()
        for path in sorted(self.agent):
            digest.update(f"{path}\0{len(self.agent[path])}\0".encode())
            digest.update(self.agent[path])
        return digest.hexdigest()

    def describe(self) -> dict[str, Any]:
        """The recipe as recorded in an image's metadata."""
        return {"format": RECIPE_FORMAT, "suite": self.suite, "packages": list(self.packages),
                "dpkg_options": list(DPKG_OPTIONS), "customize": list(CUSTOMIZE),
                "source_date_epoch": self.epoch, "agent_hash": self.agent_hash}

    @property
    def key(self) -> str:
        """A hash of every input: the same key, the same image (on the same mirror)."""
        text = json.dumps(self.describe(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def command(self, workdir: Path, sources: Sequence[Path]) -> list[str]:
        """The mmdebstrap call writing ``workdir``/rootfs.tar, the agent from ``workdir``/agent."""
        agent_copy = (f'mkdir -p "$1{AGENT_DIR}" && '
                      f'cp -R {shlex.quote(str(workdir / "agent"))}/. "$1{AGENT_DIR}/" && '
                      f'chroot "$1" python3 -m compileall -q --invalidation-mode checked-hash '
                      f'{AGENT_DIR}')
        return ["mmdebstrap", "--variant=essential",
                f"--include={','.join(self.packages)}",
                *(f"--dpkgopt={option}" for option in DPKG_OPTIONS),
                *(f"--customize-hook={hook}" for hook in (*CUSTOMIZE, agent_copy)),
                self.suite, str(workdir / ROOTFS), *map(str, sources)]


def build(store: ImageStore, recipe: Recipe, tags: Sequence[str] = (),
          sources: Sequence[Path] | None = None) -> Image:
    """Build an image from ``recipe`` with packages from ``sources`` (apt source files;
    default: the host's) and add it to ``store`` with ``tags``."""
    for tag in tags:
        check_tag(tag)
    if os.geteuid() != 0:
        raise BuildError("building an image needs root (mmdebstrap's root mode, chroot)")
    if shutil.which("mmdebstrap") is None:
        raise BuildError("mmdebstrap is not installed: apt-get install mmdebstrap "
                         "(scripts/bootstrap installs it)")
    chosen = list(sources) if sources else host_sources()
    store.remove_abandoned()
    workdir = store.staging()
    try:
        for relative, content in recipe.agent.items():
            target = workdir / "agent" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            target.chmod(0o755 if relative.endswith(".sh") else 0o644)
        environment = {**os.environ, "SOURCE_DATE_EPOCH": str(recipe.epoch)}
        result = subprocess.run(recipe.command(workdir, chosen), env=environment,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError(f"mmdebstrap failed (exit {result.returncode}): "
                             f"{_errors(result.stderr or result.stdout)}")
        shutil.rmtree(workdir / "agent")
        rootfs = workdir / ROOTFS
        packages = installed_packages(rootfs)
        missing = [name for name in VERSIONED if name not in packages]
        if missing:
            raise BuildError(f"the image lacks {', '.join(missing)}")
        digest = _sha256(rootfs)
        image = Image(id=digest[:32], sha256=digest, created_at="", size=rootfs.stat().st_size,
                      tags=tuple(dict.fromkeys(tags)),
                      versions={name: packages[name] for name in VERSIONED},
                      packages=packages, agent_hash=recipe.agent_hash,
                      recipe=recipe.describe(), path=workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return store.add(workdir, image)


def _errors(output: str) -> str:
    """mmdebstrap's and apt's error lines (``E: ...``) on one line, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line.removeprefix("E: ") for line in lines if line.startswith("E: ")]
    return "; ".join(errors[-3:] or lines[-1:]) or "no output"


def installed_packages(rootfs: Path) -> dict[str, str]:
    """Package -> version of what dpkg's status file in the tarball says is installed."""
    with tarfile.open(rootfs) as tar:
        member = tar.extractfile("./var/lib/dpkg/status")
        if member is None:
            raise BuildError(f"{rootfs} has no dpkg status file")
        text = member.read().decode()
    packages = {}
    for stanza in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines()
                      if ": " in line and not line.startswith(" "))
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            packages[fields["Package"]] = fields["Version"]
    return dict(sorted(packages.items()))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
