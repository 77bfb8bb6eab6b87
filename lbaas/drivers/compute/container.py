"""An amphora from an image: an OCI container that runc runs on the amphora's network
namespace.

The container's root is the image's root filesystem, unpacked once per image and shared
read-only by every amphora of the image; what an amphora writes goes to its own directory
(bind-mounted at the same path, so the agent's configuration reads the same inside and
out) and to small tmpfs mounts (/run, /tmp, /var/tmp), which the memory cgroup charges to
the amphora. It has its own mount, PID, UTS and IPC namespaces, joins the network
namespace the compute driver made, keeps only the capabilities haproxy, keepalived and the
agent need (no CAP_SYS_ADMIN: it cannot mount or leave its namespaces), and gets the
memory and CPU of its compute flavor through cgroups (v1 here: runc 1.1's cgroupfs
driver). ``tini`` is its PID 1: haproxy and keepalived daemonize, and someone must reap
them.

runc keeps its state under ``<amphorae directory>.containers/runc``, the bundles (each a
config.json pointing at the image) beside it: outside the amphora's directory, which the
container can write.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from lbaas.compute_flavors import Resources
from lbaas.images.build import AGENT_DIR

RUNTIME = "runc"
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# What the amphora's processes need, and nothing else: interfaces, routes, nftables,
# conntrack and sysctls of its own network namespace (NET_ADMIN), VRRP and gratuitous
# ARP (NET_RAW), haproxy binding ports below 1024 and dropping to its user (SETUID,
# SETGID), signalling its processes (KILL), root reading files it does not own
# (DAC_OVERRIDE, FOWNER, CHOWN), and sshd's privilege separation when ssh is on
# (SYS_CHROOT, AUDIT_WRITE). Its file limit is set from outside (the spec's rlimits).
CAPABILITIES = ("CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE", "CAP_SETUID",
                "CAP_SETGID", "CAP_KILL", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_CHOWN",
                "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE")
SCRATCH = ("/run", "/tmp", "/var/tmp")  # the writable layer besides the amphora's directory
SCRATCH_SIZE = "16m"
CPU_PERIOD_US = 100_000
PIDS_LIMIT = 1024
# Kernel files a container should not read or write (runc's defaults).
MASKED = ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
          "/sys/firmware")
READ_ONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sysrq-trigger")


class ContainerError(Exception):
    pass


def spec(*, name: str, rootfs: Path, directory: Path, netns: Path, args: list[str],
         limits: Resources | None, nofile: int) -> dict[str, Any]:
    """The OCI runtime configuration of amphora container ``name`` (``limits`` None: no
    memory or CPU limit)."""
    resources: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}],
                                 "pids": {"limit": PIDS_LIMIT}}
    if limits is not None:
        limit = limits.ram_mb * 1024 * 1024
        resources["memory"] = {"limit": limit, "swap": limit}  # memory+swap: no swap
        resources["cpu"] = {"quota": int(limits.vcpus * CPU_PERIOD_US), "period": CPU_PERIOD_US}
    capabilities = list(CAPABILITIES)
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        *({"destination": path, "type": "tmpfs", "source": "tmpfs",
           "options": ["nosuid", "nodev", "mode=1777", f"size={SCRATCH_SIZE}"]}
          for path in SCRATCH),
        {"destination": str(directory), "type": "bind", "source": str(directory),
         "options": ["rbind", "rw", "nosuid", "nodev"]},
    ]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False, "user": {"uid": 0, "gid": 0}, "args": args, "cwd": "/",
            "env": [f"PATH={PATH}", f"PYTHONPATH={AGENT_DIR}", "PYTHONDONTWRITEBYTECODE=1"],
            "capabilities": {kind: capabilities for kind in
                             ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs), "readonly": True},
        "hostname": name[:63],
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                           {"type": "mount"}, {"type": "network", "path": str(netns)}],
            "resources": resources,
            "cgroupsPath": f"/lbaas/{name}",
            "maskedPaths": list(MASKED),
            "readonlyPaths": list(READ_ONLY),
        },
    }


class Runc:
    """runc with its state under ``root``: runs, finds and removes amphora containers."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def beside(cls, amphorae_path: Path) -> Runc:
        return cls(amphorae_path.with_name(amphorae_path.name + ".containers"))

    def _runc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if shutil.which(RUNTIME) is None:
            raise ContainerError("runc is not installed (apt-get install runc; "
                                 "scripts/bootstrap installs it)")
        result = subprocess.run([RUNTIME, "--root", str(self.root / "runc"), *args],
                                capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise ContainerError(f"runc {args[0]}: {result.stderr.strip() or result.stdout.strip()}")
        return result

    def bundle(self, name: str) -> Path:
        return self.root / "bundles" / name

    def state(self, name: str) -> str | None:
        """``running``, ``stopped``, ``created``..., or None if runc knows no such container."""
        if not (self.root / "runc" / name).is_dir():
            return None
        result = self._runc("state", name, check=False)
        return str(json.loads(result.stdout)["status"]) if result.returncode == 0 else None

    def run(self, name: str, config: dict[str, Any], console: Path) -> None:
        """Start container ``name`` detached (``runc run -d``), its output to ``console``;
        one that runs is left alone, one that stopped is removed and started again."""
        state = self.state(name)
        if state == "running":
            return
        if state is not None:
            self.delete(name)
        bundle = self.bundle(name)
        bundle.mkdir(mode=0o700, parents=True, exist_ok=True)
        (bundle / "config.json").write_text(json.dumps(config, indent=1))
        with console.open("ab") as log:
            result = subprocess.run(
                [RUNTIME, "--root", str(self.root / "runc"), "run", "-d", "--bundle",
                 str(bundle), name], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        if result.returncode != 0:
            raise ContainerError(f"runc could not start {name} (exit {result.returncode}); "
                                 f"see {console}")

    def delete(self, name: str) -> None:
        """Stop the container and remove its state and cgroups; a removed one is no error."""
        if self.state(name) is not None:
            self._runc("delete", "--force", name, check=False)
        shutil.rmtree(self.bundle(name), ignore_errors=True)

    def exec_argv(self, name: str, command: list[str], tty: bool) -> list[str]:
        """The command line running ``command`` in container ``name``'s namespaces and
        cgroups, as root with the container's capabilities."""
        return [RUNTIME, "--root", str(self.root / "runc"), "exec", *(["-t"] if tty else []),
                "--env", f"PATH={PATH}", name, *command]
