"""Compute driver ``netns``: an amphora is a network namespace on this host.

Each amphora gets a namespace ``amphora-<id>``, a private 0700 directory holding its
configuration and certificates (its "config drive"), a management interface on the
management bridge, and the amphora agent started inside the namespace: the host's own
agent and binaries, or, for an amphora with an image, the image's in a container on the
namespace (lbaas.drivers.compute.container). Ports are plugged
as veth pairs: the host end joins the network's bridge, the other end is moved into the
namespace, where the agent configures it.

Everything here can be run again: ``build`` and ``attach_port`` make only what is missing
(a crash may have left a namespace without its interface, or an interface without its
agent), and ``delete`` finds what to remove by what exists: the namespace, the processes
in it, and any process still running from the amphora's directory (a namespace whose
name was removed lives on as long as a process holds it, with its addresses).
"""
from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lbaas import crashpoint
from lbaas.amphora.agent.config import AgentConfig
from lbaas.amphora.agent.logs import LogOffload
from lbaas.compute_flavors import Resources
from lbaas.drivers.certificates.base import HEARTBEAT_KEY
from lbaas.drivers.compute import container
from lbaas.drivers.compute.base import ComputeDriver, ComputeInstance
from lbaas.drivers.compute.launcher import LAUNCHERS, HostAgentLauncher, LauncherError
from lbaas.drivers.network.base import Port
from lbaas.images.store import ImageError, ImageStore

LOG = logging.getLogger(__name__)
NAMESPACE_PREFIX = "amphora-"
MANAGEMENT_IFNAME = "mgmt0"
AGENT_MODULE = "lbaas.amphora.agent"


class ComputeError(Exception):
    pass


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise ComputeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def namespace_of(amphora_id: str) -> str:
    return f"{NAMESPACE_PREFIX}{amphora_id}"


def host_ifname(port_id: str) -> str:
    """The host end of a port's veth, named as Neutron names taps (<= 15 characters)."""
    return f"tap{port_id[:11]}"


def port_ifname(port_id: str) -> str:
    """The amphora end of a (VIP or member) port's veth."""
    return f"eth-{port_id[:8]}"


def namespaces() -> set[str]:
    return {line.split()[0] for line in _ip("netns", "list").stdout.splitlines() if line.strip()}


def entering(compute_id: str, command: list[str], amphorae_path: Path) -> list[str]:
    """The command line that runs ``command`` inside amphora ``compute_id`` on this host: in
    its container (its namespaces and cgroups) when it runs from an image, else in its
    network namespace; ComputeError if it does not run here."""
    if not compute_id.startswith(NAMESPACE_PREFIX) or compute_id not in namespaces():
        raise ComputeError(f"no amphora namespace {compute_id} on this host")
    runc = container.Runc.beside(amphorae_path)
    if runc.state(compute_id) == "running":
        return runc.exec_argv(compute_id, command, tty=sys.stdin.isatty())
    return ["ip", "netns", "exec", compute_id, *command]


def _link_exists(name: str, namespace: str | None = None) -> bool:
    where = ["-n", namespace] if namespace else []
    return _ip(*where, "link", "show", "dev", name, check=False).returncode == 0


def _link(name: str) -> dict[str, Any] | None:
    """A host interface's details (``master``: its bridge), None if there is none. Asked
    over netlink, not read from /sys, which shows the namespace /sys was mounted in (a
    compute agent may run in another network namespace than its mount namespace's)."""
    shown = _ip("-j", "link", "show", "dev", name, check=False)
    links = json.loads(shown.stdout or "[]") if shown.returncode == 0 else []
    return links[0] if links else None


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _where(pid: int) -> list[str]:
    """The process's arguments and its working directory: an agent runs in its amphora's
    directory, named on its command line unless a zygote forked it (see launcher)."""
    try:
        cwd = [os.readlink(f"/proc/{pid}/cwd") + "/"]
    except OSError:
        cwd = []
    return _cmdline(pid) + cwd


class NetnsComputeDriver(ComputeDriver):
    def __init__(self, amphorae_path: Path, agent_port: int = 9443, host: str | None = None,
                 python: str = sys.executable, controller_ip_port_list: tuple[str, ...] = (),
                 heartbeat_interval: float = 10.0,
                 hosts: Callable[[], list[str]] | None = None,
                 log_offload: LogOffload | None = None,
                 images: ImageStore | None = None, agent_launcher: str = "exec") -> None:
        self.amphorae_path = amphorae_path
        self.images = images
        self.runc = container.Runc.beside(amphorae_path)
        # None: a new process per agent ("exec").
        self.launcher = LAUNCHERS[agent_launcher](amphorae_path, python) \
            if agent_launcher in LAUNCHERS else None
        self.agent_port = agent_port
        self.host = host
        self._hosts = hosts or (lambda: [host] if host else [])
        self.python = python
        self.controller_ip_port_list = controller_ip_port_list
        self.heartbeat_interval = heartbeat_interval
        self.log_offload = log_offload or LogOffload()

    def directory(self, amphora_id: str) -> Path:
        return self.amphorae_path / amphora_id

    def compute_id(self, amphora_id: str) -> str:
        return namespace_of(amphora_id)

    def hosts(self) -> list[str]:
        """``[compute] hosts``: labels of failure domains, all on this machine."""
        return self._hosts()

    def build(self, amphora_id: str, *, management_port: Port, files: dict[str, bytes],
              host: str | None = None, image_id: str | None = None,
              resources: Resources | None = None) -> ComputeInstance:
        namespace = namespace_of(amphora_id)
        directory = self.directory(amphora_id)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
        for name, content in files.items():
            path = directory / name
            path.write_bytes(content)
            path.chmod(0o600)
        if namespace not in namespaces():
            _ip("netns", "add", namespace)
        crashpoint.reached("netns:namespace-added")
        _ip("-n", namespace, "link", "set", "lo", "up")
        # PING health monitors: haproxy runs ping unprivileged (no file capabilities), so
        # the amphora's own namespace allows ICMP echo sockets to every group. Interfaces
        # announce their addresses (gratuitous ARP) when they come up, so the controller
        # and clients need not wait for an ARP retry to reach a new amphora or VIP. haproxy
        # binds the VIP even while keepalived holds it on the peer (ACTIVE_STANDBY BACKUP).
        subprocess.run(["ip", "netns", "exec", namespace, "sysctl", "-qw",
                        "net.ipv4.ping_group_range=0 2147483647",
                        "net.ipv4.conf.default.arp_notify=1",
                        "net.ipv4.conf.all.arp_notify=1", "net.ipv4.ip_nonlocal_bind=1",
                        "net.ipv6.ip_nonlocal_bind=1"], check=True)
        self._ensure_plugged(namespace, management_port, MANAGEMENT_IFNAME)
        prefix = management_port.subnet_cidr.split("/")[1] if management_port.subnet_cidr else "32"
        _ip("-n", namespace, "addr", "replace", f"{management_port.ip_address}/{prefix}",
            "dev", MANAGEMENT_IFNAME)
        _ip("-n", namespace, "link", "set", MANAGEMENT_IFNAME, "up")
        crashpoint.reached("netns:management-plugged")
        config = AgentConfig(
            amphora_id=amphora_id, base_path=directory,
            bind_host=management_port.ip_address, bind_port=self.agent_port,
            agent_server_cert=directory / "server.pem", agent_server_ca=directory / "client_ca.pem",
            # The amphora's own heartbeat key, derived by the controller (never its secret).
            heartbeat_key=files.get(HEARTBEAT_KEY, b"").decode(),
            log_file=directory / "agent.log", log_offload=self.log_offload,
            controller_ip_port_list=self.controller_ip_port_list,
            heartbeat_interval=self.heartbeat_interval)
        config.write(directory / "amphora-agent.conf")
        if image_id is not None:
            self._run_container(namespace, directory, image_id, resources)
        elif self._agent_running(namespace):
            pass
        elif self.launcher is not None:
            try:
                self.launcher.start(namespace, directory)
            except LauncherError as exc:
                raise ComputeError(str(exc)) from exc
        else:
            # `setsid -f` detaches the agent: it outlives a restart of this controller
            # process (an amphora keeps serving while the control plane restarts) and is
            # never our zombie. The agent logs to agent.log itself (rotated); only what
            # escapes its logging (a crash before it starts) lands here.
            with (directory / "agent-console.log").open("ab") as log:
                subprocess.run(
                    ["setsid", "-f", "ip", "netns", "exec", namespace, self.python, "-m",
                     AGENT_MODULE, "--config-file", str(directory / "amphora-agent.conf")],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=directory, check=True)
        return ComputeInstance(compute_id=namespace, lb_network_ip=management_port.ip_address,
                               host=host or self.host)

    def _run_container(self, namespace: str, directory: Path, image_id: str,
                       resources: Resources | None) -> None:
        """The agent in a container of image ``image_id`` (lbaas.drivers.compute.container),
        unless it runs already."""
        if self.images is None:
            raise ComputeError("this compute driver has no image store")
        try:
            rootfs = self.images.unpacked(self.images.get(image_id))
        except ImageError as exc:
            raise ComputeError(f"amphora image {image_id} cannot be used on this host: {exc}; "
                               "build it here from the same recipe (lbaas image build gives "
                               "the same id)") from exc
        if self._agent_running(namespace):
            return
        spec = container.spec(
            name=namespace, rootfs=rootfs, directory=directory,
            netns=Path("/run/netns") / namespace,
            args=["/usr/bin/tini", "--", "python3", "-m", AGENT_MODULE,
                  "--config-file", str(directory / "amphora-agent.conf")],
            limits=resources, nofile=resource.getrlimit(resource.RLIMIT_NOFILE)[1])
        try:
            self.runc.run(namespace, spec, directory / "agent-console.log")
        except container.ContainerError as exc:
            raise ComputeError(str(exc)) from exc

    def _agent_running(self, namespace: str) -> bool:
        return any(AGENT_MODULE in _cmdline(pid) for pid in self._namespace_pids(namespace))

    def delete(self, compute_id: str, host: str | None = None) -> None:
        """Stop every process of the amphora, delete its namespace (its veths go with it),
        remove its files."""
        if not compute_id.startswith(NAMESPACE_PREFIX):
            raise ComputeError(f"{compute_id} is not an amphora namespace")
        amphora_id = compute_id[len(NAMESPACE_PREFIX):]
        if isinstance(self.launcher, HostAgentLauncher):
            try:
                self.launcher.forget(self.directory(amphora_id))
            except LauncherError as exc:  # its sweep lets go of what is gone
                LOG.warning("%s", exc)
        self._kill(lambda: self._namespace_pids(compute_id) + self._pids_of(amphora_id))
        self.runc.delete(compute_id)  # its state and cgroups, if it ran from an image
        # The kernel dismantles a deleted namespace later, in the background: delete its
        # veths first, so that its ports are off the bridges when this returns.
        if compute_id in namespaces():
            for line in _ip("-n", compute_id, "-o", "link", "show").stdout.splitlines():
                name = line.split(":")[1].strip().split("@")[0]
                if name != "lo":
                    _ip("-n", compute_id, "link", "del", name, check=False)
        _ip("netns", "del", compute_id, check=False)
        shutil.rmtree(self.directory(amphora_id), ignore_errors=True)

    def instances(self, host: str | None = None) -> dict[str, bool]:
        """Amphorae of this deployment found on the host: a directory under ``base_path``
        (other deployments' namespaces have theirs elsewhere), or a process running from
        one; each runs if its namespace is there."""
        found = {path.name for path in self.amphorae_path.iterdir() if path.is_dir()} \
            if self.amphorae_path.is_dir() else set()
        present = namespaces()
        return {amphora_id: namespace_of(amphora_id) in present
                for amphora_id in found | self._running_amphorae()}

    def _running_amphorae(self) -> set[str]:
        """Amphora ids of the processes running from a directory under ``base_path``."""
        prefix = f"{self.amphorae_path}/"
        found = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                for argument in _where(int(entry.name)):
                    if argument.startswith(prefix):
                        found.add(argument[len(prefix):].split("/", 1)[0])
                        break
        return found

    def release(self) -> None:
        """Stop the zygote or the host agent once no amphora is left on this machine."""
        if self.launcher is not None and not self.instances():
            self.launcher.stop()

    def attach_port(self, compute_id: str, port: Port, host: str | None = None) -> str:
        ifname = port_ifname(port.id)
        self._ensure_plugged(compute_id, port, ifname)
        if port.mac_address:  # the pair is made with it, and made again if not whole
            return port.mac_address
        return _ip("-n", compute_id, "-br", "link", "show", ifname).stdout.split()[2]

    def detach_port(self, compute_id: str, port: Port, host: str | None = None) -> None:
        _ip("link", "del", host_ifname(port.id), check=False)

    def _ensure_plugged(self, namespace: str, port: Port, ifname: str) -> None:
        """The port's veth: the host end up on the port's bridge, the other end inside the
        namespace as ``ifname``; a pair that is already whole is left as it is. A new
        pair is made by one command (both ends' MTU, the MAC, the bridge, up): each `ip`
        run costs a few milliseconds of a create, more on a busy host."""
        if not port.bridge:
            raise ComputeError(f"port {port.id} has no bridge to plug into")
        host_end = host_ifname(port.id)
        link = _link(host_end)
        if link is not None and link.get("master") == port.bridge \
                and _link_exists(ifname, namespace):
            _ip("link", "set", host_end, "up")
            return
        if link is not None:
            _ip("link", "del", host_end, check=False)  # half made: its peer goes with it
        mtu = ["mtu", str(port.mtu)] if port.mtu else []
        add = ["link", "add", host_end, *mtu, "master", port.bridge, "up", "type", "veth",
               "peer", "name", ifname, *mtu,
               *(["address", port.mac_address] if port.mac_address else []), "netns", namespace]
        if _ip(*add, check=False).returncode != 0:
            _ip("-n", namespace, "link", "del", ifname, check=False)  # a stray of that name
            _ip(*add)

    @staticmethod
    def _namespace_pids(namespace: str) -> list[int]:
        found = _ip("netns", "pids", namespace, check=False).stdout.split()
        return [int(pid) for pid in found if pid.isdigit()]

    def _pids_of(self, amphora_id: str) -> list[int]:
        """Processes running from the amphora's directory, wherever their namespace is."""
        prefix = f"{self.directory(amphora_id)}/"
        return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()
                and any(argument.startswith(prefix) for argument in _where(int(entry.name)))]

    @staticmethod
    def _kill(pids: Callable[[], list[int]], timeout: float = 10.0) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout
            while pids() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not pids():
                return

    @classmethod
    def _kill_all(cls, namespace: str, timeout: float = 10.0) -> None:
        """Stop every process in ``namespace`` (SIGTERM, then SIGKILL)."""
        cls._kill(lambda: cls._namespace_pids(namespace), timeout)
