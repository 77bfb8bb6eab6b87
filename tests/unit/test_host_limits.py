"""The limits a host of many amphorae needs are raised, never lowered."""
from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from lbaas import host_limits
from lbaas.host_limits import Floor


def _sysctl(root: Path, name: str, value: str) -> Path:
    path = root / Path(*name.split("."))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value)
    return path


def test_a_low_value_is_raised_and_a_higher_one_kept(tmp_path: Path) -> None:
    low = _sysctl(tmp_path, "net.ipv4.neigh.default.gc_thresh3", "1024\n")
    high = _sysctl(tmp_path, "net.ipv6.neigh.default.gc_thresh3", "65536\n")
    floors = (Floor("net.ipv4.neigh.default.gc_thresh3", 32768, "room"),
              Floor("net.ipv6.neigh.default.gc_thresh3", 32768, "room"),
              Floor("net.netfilter.nf_conntrack_max", 262144, "not loaded"))

    changed = host_limits.raise_sysctls(floors, tmp_path)

    assert changed == ["net.ipv4.neigh.default.gc_thresh3: 1024 -> 32768"]
    assert low.read_text() == "32768\n"
    assert high.read_text() == "65536\n"
    assert not (tmp_path / "net" / "netfilter").exists()
    assert host_limits.raise_sysctls(floors, tmp_path) == []  # twice changes nothing


def test_every_floor_names_a_sysctl_of_this_kernel() -> None:
    """Conntrack's appears once a module is loaded, IPv6's unless IPv6 is off."""
    optional = ("net.netfilter.", "net.ipv6.") if not Path("/proc/sys/net/ipv6").exists() \
        else ("net.netfilter.",)
    for floor in host_limits.FLOORS:
        assert (Path("/proc/sys") / floor.path).exists() or floor.name.startswith(optional), \
            floor.name


@pytest.mark.root
def test_the_kernel_value_is_raised_and_restored() -> None:
    """On the real /proc/sys: a floor above the current value raises it, one below leaves
    it; the value is put back afterwards."""
    name = "net.ipv4.neigh.default.gc_thresh1"
    path = Path("/proc/sys") / Path(*name.split("."))
    before = int(path.read_text())
    try:
        assert host_limits.raise_sysctls((Floor(name, before - 1, "lower"),)) == []
        assert int(path.read_text()) == before
        assert host_limits.raise_sysctls((Floor(name, before + 1, "higher"),)) == [
            f"{name}: {before} -> {before + 1}"]
        assert int(path.read_text()) == before + 1
    finally:
        path.write_text(f"{before}\n")


def test_the_soft_open_files_limit_is_raised_to_the_hard_one() -> None:
    """In a child process whose soft limit was lowered, so this one's stays as it is."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    code = ("import resource\n"
            "from lbaas.host_limits import raise_open_files\n"
            f"resource.setrlimit(resource.RLIMIT_NOFILE, (256, {hard}))\n"
            "print(*raise_open_files(), *resource.getrlimit(resource.RLIMIT_NOFILE))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["256", str(hard), str(hard), str(hard)]
