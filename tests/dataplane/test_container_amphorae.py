"""Amphorae run from an image (the cached build of this tree's recipe) as containers: they
serve, see nothing of the host, cannot write their image, stay within the memory and CPU
of their compute flavor, and an ACTIVE_STANDBY pair moves to a new image without losing a
request."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from lbaas.controller import upgrade
from lbaas.controller.tasks.amphora import live_amphorae
from lbaas.db import keypairs
from lbaas.db.models import Amphora
from lbaas.drivers.compute import container
from lbaas.images.store import Image, ImageStore
from tests.helpers.api import create_lb
from tests.helpers.dataplane import balanced, build, monitor, traffic, wait_until
from tests.helpers.images import Built, add_built, cached_build

pytestmark = pytest.mark.root
RAM_MB = 96


@pytest.fixture(scope="module")
def built() -> Iterator[Built]:
    with cached_build() as cached:
        yield cached
    # runc leaves the "lbaas" parent of its containers' cgroups behind, empty; the only
    # tests that run containers are these, so none is being made now.
    for parent in Path("/sys/fs/cgroup").glob("*/lbaas"):
        with contextlib.suppress(OSError):
            parent.rmdir()


@pytest.fixture
def image(services, built) -> Image:
    """The image in this deployment's store, tagged as the one new amphorae run, with a
    small compute flavor."""
    added = add_built(ImageStore.from_settings(services.settings), built, ["amphora"])
    services.settings.controller_worker.amp_image_tag = "amphora"
    services.settings.compute.flavors = [f"amphora:{RAM_MB}:0.5"]
    return added


def _amphora(services, lb_id: str) -> Amphora:
    with services.db.read() as session:
        return session.scalars(select(Amphora).where(Amphora.load_balancer_id == lb_id)).one()


def _inside(services, amphora: Amphora, script: str) -> subprocess.CompletedProcess[str]:
    """``script`` (Python) run in the amphora by `lbaas amphora shell`."""
    lbaas = Path(sys.executable).parent / "lbaas"
    env = {**os.environ, "LBAAS__DEFAULT__state_path": str(services.settings.DEFAULT.state_path),
           "LBAAS__haproxy_amphora__base_path": str(services.settings.haproxy_amphora.base_path)}
    return subprocess.run([str(lbaas), "amphora", "shell", amphora.id, "--", "python3", "-c",
                           script], capture_output=True, text=True, env=env, timeout=60)


def _stat_rows(output: str) -> list[list[str]]:
    return [line.split(",") for line in output.splitlines() if line.count(",") > 17]


PROCESSES = ("import os\n"
             "for pid in sorted(int(p) for p in os.listdir('/proc') if p.isdigit()):\n"
             "    name = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\\0')[0]\n"
             "    print(pid, os.path.basename(name).decode())\n")


def test_an_amphora_from_an_image_serves_and_sees_nothing_of_the_host(
        dataplane, topology, services, image):
    made = build(dataplane, topology)
    monitor(dataplane, made, "PING")  # haproxy runs the image's ping wrapper
    assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}
    amphora = _amphora(services, made["lb"]["id"])
    assert (amphora.image_id, amphora.compute_flavor) == (image.id, "amphora")
    shown = dataplane.get(f"/v2/octavia/amphorae/{amphora.id}").json()["amphora"]
    assert (shown["image_id"], shown["compute_flavor"]) == (image.id, "amphora")
    # haproxy's PING checks pass: both members UP in its runtime view.
    directory = services.settings.haproxy_amphora.base_path / amphora.id / made["lb"]["id"]
    stats = ("import os, socket\n"
             "s = socket.socket(socket.AF_UNIX)\n"
             f"os.chdir({str(directory)!r})\n"
             "s.connect('haproxy.sock')\n"
             "s.sendall(b'show stat\\n')\n"
             "print(s.makefile().read())\n")
    members = {member["id"] for member in made["members"]}
    wait_until(lambda: [row[17] for row in _stat_rows(_inside(services, amphora, stats).stdout)
                        if row[1] in members] == ["UP", "UP"])

    # Its own processes only: tini as PID 1, the agent, haproxy (none of the host's).
    seen = _inside(services, amphora, PROCESSES)
    assert seen.returncode == 0, seen.stderr
    names = dict(line.split(" ", 1) for line in seen.stdout.splitlines())
    assert names["1"] == "tini"
    assert "haproxy" in names.values() and "python3" in names.values()
    assert len(names) < 10, names
    assert not {"pytest", "lbaas", "runc", "sshd", "systemd"} & set(names.values())

    # The host's files are not there; the image is read-only; its own directory is not.
    probe = _inside(services, amphora, (
        "import os, sys\n"
        f"print(os.path.exists({str(services.settings.DEFAULT.state_path / 'lbaas.sqlite')!r}),"
        f" os.path.exists({str(Path(__file__))!r}), os.path.exists('/opt/lbaas-agent'))\n"
        "for path in ('/etc/passwd', '/etc/x'):\n"
        "    try:\n"
        "        open(path, 'ab')\n"
        "    except OSError as exc:\n"
        "        print(exc.strerror)\n"
        f"open({str(services.settings.haproxy_amphora.base_path / amphora.id / 'x')!r}, 'w')\n"
        "print('own directory writable')\n"))
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.splitlines() == ["False False True", "Read-only file system",
                                         "Read-only file system", "own directory writable"]


def test_an_amphora_stays_within_its_compute_flavor(dataplane, topology, services, image):
    made = build(dataplane, topology)
    amphora = _amphora(services, made["lb"]["id"])
    cgroup = Path("/sys/fs/cgroup/memory/lbaas", amphora.compute_id or "")
    assert int((cgroup / "memory.limit_in_bytes").read_text()) == RAM_MB * 1024 * 1024
    assert int(Path("/sys/fs/cgroup/cpu/lbaas", amphora.compute_id or "",
                    "cpu.cfs_quota_us").read_text()) == container.CPU_PERIOD_US // 2

    # A process taking more than the flavor's memory is killed; the amphora serves on.
    greedy = _inside(services, amphora, f"b = bytearray({2 * RAM_MB} * 1024 * 1024)\n"
                                        "print('allocated')")
    assert greedy.returncode == 137 and "allocated" not in greedy.stdout
    assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}

    # Deleting the load balancer removes the container and its cgroups.
    assert dataplane.delete(f"/v2/lbaas/loadbalancers/{made['lb']['id']}?cascade=true") \
        .status_code == 204
    runc = container.Runc.beside(services.settings.haproxy_amphora.base_path)
    wait_until(lambda: runc.state(amphora.compute_id or "") is None and not cgroup.exists())



def test_an_active_standby_pair_moves_to_a_new_image_without_losing_a_request(
        dataplane, topology, services, built, image):
    services.settings.controller_worker.loadbalancer_topology = "ACTIVE_STANDBY"
    made = build(dataplane, topology)
    lb_id = made["lb"]["id"]
    newer = add_built(ImageStore.from_settings(services.settings), built, ["amphora"],
                      image_id="f" * 32)
    with traffic(topology, made["lb"]["vip_address"]) as counts:
        targets = upgrade.outdated(services.settings, services.db)
        assert [(t.lb_id, t.images, t.wanted) for t in targets] == [
            (lb_id, (image.id, image.id), newer.id)]
        progress: list[str] = []
        upgrade.upgrade(services.settings, services.db, targets, batch=1,
                        notify=services.wakeup.notify, progress=progress.append, timeout=120)
    print("upgrade under load:", counts)
    assert counts["failed"] == 0, counts
    assert counts["ok"] > 50, counts
    with services.db.read() as session:
        assert [a.image_id for a in live_amphorae(session, lb_id)] == [newer.id, newer.id]
    assert balanced(topology, made["url"]) == {"backend-1": 5, "backend-2": 5}
    assert upgrade.outdated(services.settings, services.db) == []


def _ssh(address: str, key: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ssh", "-i", str(key), "-o", "BatchMode=yes", "-o",
                           "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                           "-o", "ConnectTimeout=5", f"root@{address}", command],
                          capture_output=True, text=True, timeout=60)


def _port_22(address: str) -> str:
    with socket.socket() as probe:
        probe.settimeout(3)
        try:
            probe.connect((address, 22))
        except ConnectionRefusedError:
            return "refused"
        except OSError as exc:
            return repr(exc)
    return "open"


def test_ssh_into_an_amphora_with_the_registered_key_only_when_asked(
        dataplane, topology, services, image, tmp_path):
    plain = _amphora(services, create_lb(dataplane, vip_subnet_id=topology.vips.subnet_id)["id"])
    assert _port_22(plain.lb_network_ip or "") == "refused"

    private, public = keypairs.generate()
    keypairs.create(services.db, "ops", public)
    services.settings.controller_worker.amp_ssh_key_name = "ops"
    amphora = _amphora(services, create_lb(
        dataplane, vip_subnet_id=topology.vips.subnet_id, name="with ssh")["id"])
    key = tmp_path / "id_ops"
    key.write_text(private)
    key.chmod(0o600)
    inside = _ssh(amphora.lb_network_ip or "", key, "cat /proc/1/comm; id -u")
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout.split() == ["tini", "0"]  # root, inside the amphora's container

    stranger = tmp_path / "id_other"
    stranger.write_text(keypairs.generate()[0])
    stranger.chmod(0o600)
    refused = _ssh(amphora.lb_network_ip or "", stranger, "true")
    assert refused.returncode == 255 and "Permission denied" in refused.stderr
