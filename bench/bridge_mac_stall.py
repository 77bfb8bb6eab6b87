"""Issue 5's agent-call stall, reproduced: a bridge port goes while a peer is answering.

Three private network namespaces (nothing touches the host's): a "controller" holding a
bridge with an address, and two "amphorae" on it, the first with the lower veth MAC. The
controller keeps one TCP connection to the second amphora and sends a request every
0.5 s; one answer is held for 1 s, and meanwhile the first amphora's veth is deleted.
A bridge left to Linux (``--unpinned``) then takes the second port's MAC; the answer goes
to the old MAC and arrives only after the amphora's ARP entry expires and a TCP
retransmission follows (tens of seconds, up to minutes). A bridge
made by ``Bridges.ensure`` keeps its fixed MAC and the answer takes 1 s.
Run as root from the repository root: ``.venv/bin/python bench/bridge_mac_stall.py``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lbaas.network.bridge import Bridges  # noqa: E402

SERVER = """
import socket, threading, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.9.0.12", 9443)); s.listen()
def serve(c):
    while (got := c.recv(100)):
        if got == b"SLOW": time.sleep(1)
        c.sendall(b"x" * 2000)
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"""
CLIENT = """
import socket, sys, time
c = socket.create_connection(("10.9.0.12", 9443)); c.settimeout(120)
for i in range(8):
    t = time.monotonic(); c.sendall(b"SLOW" if i == 4 else b"FAST"); got = 0
    while got < 2000: got += len(c.recv(4096))
    print(f"request {i}{' (answer held 1 s)' if i == 4 else ''}: {time.monotonic() - t:.3f} s", flush=True)
    time.sleep(0.5)
"""


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def bridge_mac(namespace: str) -> str:
    return ip("-n", namespace, "-br", "link", "show", "br0").split()[2]


def run(pinned: bool) -> None:
    tag = uuid.uuid4().hex[:6]
    controller, first, second = (f"lbb-st{role}-{tag}" for role in "cab")
    try:
        for namespace in (controller, first, second):
            ip("netns", "add", namespace)
        if pinned:
            Bridges(netns=controller).ensure("br0")
        else:
            ip("-n", controller, "link", "add", "br0", "type", "bridge")
            ip("-n", controller, "link", "set", "br0", "up")
        ip("-n", controller, "addr", "add", "10.9.0.1/24", "dev", "br0")
        for name, namespace, mac, address in (("va", first, "02:00:00:00:00:01", "10.9.0.11"),
                                              ("vb", second, "02:00:00:00:00:09", "10.9.0.12")):
            ip("-n", controller, "link", "add", name, "address", mac, "type", "veth",
               "peer", "name", "eth0", "netns", namespace)
            ip("-n", controller, "link", "set", name, "master", "br0", "up")
            ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", namespace, "link", "set", "eth0", "up")
        server = subprocess.Popen(["ip", "netns", "exec", second, sys.executable, "-c", SERVER])
        time.sleep(2)  # addresses settle (DAD is off for IPv4; the server binds)
        print(f"bridge MAC {'pinned by Bridges.ensure' if pinned else 'left to Linux'}: "
              f"{bridge_mac(controller)}", flush=True)
        client = subprocess.Popen(["ip", "netns", "exec", controller, sys.executable, "-c", CLIENT])
        time.sleep(2.3)  # request 4 is being answered (held 1 s)
        ip("-n", controller, "link", "del", "va")
        print(f"first amphora's veth deleted; bridge MAC now {bridge_mac(controller)}", flush=True)
        client.wait(timeout=150)
        server.kill()
        server.wait()
    finally:
        for namespace in (controller, first, second):
            for pid in subprocess.run(["ip", "netns", "pids", namespace], capture_output=True,
                                      text=True).stdout.split():
                subprocess.run(["kill", "-9", pid], check=False)
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unpinned", action="store_true",
                        help="a bridge left to Linux (as before the fix) instead of Bridges.ensure")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: it creates network namespaces", file=sys.stderr)
        return 1
    run(pinned=not args.unpinned)
    return 0


if __name__ == "__main__":
    sys.exit(main())
