"""Configuration changes under load: no client request fails."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.api import create_member, wait_gone, wait_lb_active
from tests.helpers.dataplane import build

pytestmark = pytest.mark.root

LOAD = """
import http.client, json, sys, threading
host, stop = sys.argv[1], threading.Event()
counts = {"ok": 0, "failed": 0, "errors": []}
lock = threading.Lock()
def run():
    while not stop.is_set():
        try:
            connection = http.client.HTTPConnection(host, 80, timeout=5)
            connection.request("GET", "/")
            ok = connection.getresponse().status == 200
            connection.close()
            error = None
        except OSError as exc:
            ok, error = False, repr(exc)
        with lock:
            counts["ok" if ok else "failed"] += 1
            if error and len(counts["errors"]) < 5:
                counts["errors"].append(error)
threads = [threading.Thread(target=run) for _ in range(4)]
for thread in threads: thread.start()
sys.stdin.read()  # runs until the test closes our stdin
stop.set()
for thread in threads: thread.join()
print(json.dumps(counts))
"""


def _update(client, path: str, lb_id: str, **member) -> None:
    response = client.put(path, json={"member": member})
    assert response.status_code == 200, response.text
    wait_lb_active(client, lb_id)


def test_no_request_fails_while_100_member_updates_are_applied(dataplane, topology, backends):
    made = build(dataplane, topology)
    lb_id, pool_id = made["lb"]["id"], made["pool"]["id"]
    spare = backends.add(topology.members, "10.240.1.13", "backend-3")
    first, second = (f"/v2/lbaas/pools/{pool_id}/members/{m['id']}" for m in made["members"])
    load = subprocess.Popen(["ip", "netns", "exec", topology.client, sys.executable, "-c", LOAD,
                             made["lb"]["vip_address"]], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        for step in range(100):
            if step % 10 == 9:  # a new member and its removal: two reloads
                added = create_member(dataplane, pool_id, spare.address,
                                      subnet_id=topology.members.subnet_id)
                path = f"/v2/lbaas/pools/{pool_id}/members/{added['id']}"
                assert dataplane.delete(path).status_code == 204
                wait_gone(dataplane, path)
            elif step % 2:
                _update(dataplane, first, lb_id, admin_state_up=step % 4 != 1)
            else:
                _update(dataplane, second, lb_id, weight=1 + step % 5)
    finally:
        counts = json.loads(load.communicate("", timeout=60)[0])
    assert counts["failed"] == 0, counts
    assert counts["ok"] > 100
