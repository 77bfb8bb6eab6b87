"""Heartbeats on loopback: valid ones update health, statuses and stats; bad ones change nothing."""
from __future__ import annotations

import time
import zlib
from typing import Any

import pytest
from sqlalchemy import select

from lbaas.amphora.agent.status_message import amphora_key
from lbaas.db.models import AmphoraHealth, ListenerStatistics, LoadBalancer, utcnow
from lbaas.health.update import SETTLE
from tests.helpers.api import create_lb, create_listener, create_member, create_pool
from tests.helpers.health import KEY, amphora_of


@pytest.fixture
def tree(client, services) -> dict[str, Any]:
    lb = create_lb(client)
    listener = create_listener(client, lb["id"])
    pool = create_pool(client, lb["id"], listener_id=listener["id"])
    members = [create_member(client, pool["id"], f"10.0.0.{i}")["id"] for i in (1, 2)]
    return {"lb": lb["id"], "listener": listener["id"], "pool": pool["id"], "members": members,
            "amphora": amphora_of(services, lb["id"])}


def heartbeat(tree: dict[str, Any], seq: int, members=("UP", "UP"), rx=0, conns=0,
              amphora: str | None = None) -> dict[str, Any]:
    return {"id": amphora or tree["amphora"], "seq": seq, "ver": 3,
            "listeners": {tree["listener"]: {"status": "OPEN", "stats": {
                "rx": rx, "tx": 2 * rx, "conns": conns, "totconns": rx // 100, "ereq": 0}}},
            "pools": {f"{tree['pool']}:{tree['listener']}": {
                "status": "UP", "members": dict(zip(tree["members"], members, strict=True))}}}


def statuses(client, tree) -> dict[str, str]:
    root = client.get(f"/v2/lbaas/loadbalancers/{tree['lb']}/status").json()["statuses"]
    lb = root["loadbalancer"]
    pool = lb["listeners"][0]["pools"][0]
    return {"lb": lb["operating_status"], "listener": lb["listeners"][0]["operating_status"],
            "pool": pool["operating_status"],
            **{member["id"]: member["operating_status"] for member in pool["members"]}}


def stats(client, tree) -> dict[str, int]:
    return client.get(f"/v2/lbaas/listeners/{tree['listener']}/stats").json()["stats"]


def health(services, amphora_id) -> tuple[Any, ...] | None:
    with services.db.read() as session:
        row = session.get(AmphoraHealth, amphora_id)
        return None if row is None else (row.last_update, row.sequence, row.busy)


def test_a_heartbeat_sets_operating_statuses_health_and_stats(client, services, tree, send):
    counted = send(heartbeat(tree, 10, members=("UP", "DOWN"), rx=1000, conns=4))
    assert counted["accepted"] == 1
    assert statuses(client, tree) == {"lb": "DEGRADED", "listener": "ONLINE", "pool": "DEGRADED",
                                      tree["members"][0]: "ONLINE", tree["members"][1]: "ERROR"}
    assert health(services, tree["amphora"])[1] == 10
    assert stats(client, tree) == {"bytes_in": 1000, "bytes_out": 2000, "active_connections": 4,
                                   "total_connections": 10, "request_errors": 0}
    send(heartbeat(tree, 11, rx=500, conns=1))
    assert statuses(client, tree)["lb"] == "ONLINE"
    assert statuses(client, tree)[tree["members"][1]] == "ONLINE"
    assert stats(client, tree) == {"bytes_in": 1500, "bytes_out": 3000, "active_connections": 1,
                                   "total_connections": 15, "request_errors": 0}


def _unchanged(client, services, tree, send, datagram, counter: str) -> None:
    before = (statuses(client, tree), stats(client, tree), health(services, tree["amphora"]))
    counted = send(datagram) if isinstance(datagram, bytes) else send(*datagram)
    assert counted[counter] >= 1, counted
    assert (statuses(client, tree), stats(client, tree), health(services, tree["amphora"])) == before


def test_forged_replayed_garbage_and_unknown_heartbeats_change_nothing(
        client, services, tree, send, health_manager):
    send(heartbeat(tree, 100, rx=1000))
    bad = heartbeat(tree, 101, members=("DOWN", "DOWN"), rx=99999)
    _unchanged(client, services, tree, send, (bad, "a-guessed-key"), "invalid_hmac")
    _unchanged(client, services, tree, send, b"\x00garbage" * 20, "invalid_hmac")
    _unchanged(client, services, tree, send, (heartbeat(tree, 100, rx=1000),), "duplicate")
    _unchanged(client, services, tree, send, (heartbeat(tree, 50, members=("DOWN", "DOWN")),),
               "replayed")
    _unchanged(client, services, tree, send,
               (heartbeat(tree, 200, amphora="00000000-0000-4000-8000-00000000dead"),),
               "unknown_amphora")
    for malformed in ({"seq": 300}, {"id": tree["amphora"], "seq": "300"},
                      {"id": tree["amphora"], "seq": 300, "listeners": []},
                      {"id": tree["amphora"], "seq": 300,
                       "listeners": {tree["listener"]: {"stats": {"rx": "lots"}}}}):
        _unchanged(client, services, tree, send, (malformed,), "malformed")
    from lbaas.amphora.agent.status_message import _digest
    signed_garbage = zlib.compress(b"{not json")
    signed_garbage += _digest(signed_garbage, b"health-test-key").hex().encode()
    _unchanged(client, services, tree, send, signed_garbage, "malformed")
    # The receiver still works after all that.
    send(heartbeat(tree, 101, members=("UP", "DOWN")))
    assert statuses(client, tree)[tree["members"][1]] == "ERROR"


def test_an_amphora_cannot_speak_for_another(client, services, tree, send):
    """Whoever controls one amphora has its key only: a heartbeat it signs for another
    amphora (a DOWN that would put that load balancer in ERROR) is forged, and so is one
    signed with the controller's secret, the key all amphorae used to share."""
    send(heartbeat(tree, 100, rx=1000))
    other = "00000000-0000-4000-8000-0000000000aa"
    forged = heartbeat(tree, 101, members=("DOWN", "DOWN"), rx=99999)
    _unchanged(client, services, tree, send, (forged, amphora_key(KEY, other)), "invalid_hmac")
    _unchanged(client, services, tree, send, (forged, KEY), "invalid_hmac")
    send(forged)  # signed with the amphora's own key: taken
    assert statuses(client, tree)[tree["members"][0]] == "ERROR"


def test_a_sequence_far_ahead_of_the_clock_is_dropped(client, services, tree, send):
    """One such heartbeat used to make every later genuine one look replayed."""
    now_ms = int(time.time() * 1000)
    send(heartbeat(tree, now_ms, rx=100))
    _unchanged(client, services, tree, send, (heartbeat(tree, 2**62, members=("DOWN", "DOWN")),),
               "sequence_ahead")
    counted = send(heartbeat(tree, now_ms + 1, rx=100))
    assert counted.get("replayed", 0) == 0
    assert health(services, tree["amphora"])[1] == now_ms + 1
    assert stats(client, tree)["bytes_in"] == 200


def test_a_heartbeat_already_handled_by_another_health_manager_is_not_counted_twice(
        client, services, tree, send, health_manager):
    send(heartbeat(tree, 10, rx=1000))
    health_manager.updater._newest.clear()  # as if another process had handled seq 11
    with services.db.write() as session:
        session.get(AmphoraHealth, tree["amphora"]).sequence = 11
    counted = send(heartbeat(tree, 11, rx=1000))
    assert counted["replayed"] == 1
    assert stats(client, tree)["bytes_in"] == 1000


def test_an_amphora_missing_a_listener_is_alive_and_the_listener_error(
        client, services, tree, send, caplog):
    """What the amphora serves differs from what the database expects: that is reported
    (the listener ERROR, the reason logged), not taken for a dead amphora to fail over."""
    send(heartbeat(tree, 1))
    settled(services, tree["lb"])
    alive_at = health(services, tree["amphora"])[0]
    silent = heartbeat(tree, 2)
    silent["listeners"] = {}
    with caplog.at_level("WARNING", logger="lbaas.health.update"):
        send(silent)
    last_update, sequence, _ = health(services, tree["amphora"])
    assert sequence == 2 and last_update > alive_at
    assert statuses(client, tree)["listener"] == "ERROR"
    assert (f"listener {tree['listener']} is ERROR: amphora {tree['amphora']} is alive but "
            "does not serve it (its heartbeat reports 0 listeners, the database expects 1)"
            ) in caplog.text


def test_a_heartbeat_right_after_a_change_may_lack_its_listeners(client, services, tree, send,
                                                                 caplog):
    """A heartbeat built before the flow's configuration reached the amphora, handled
    after the load balancer went ACTIVE: the listener it lacks is not applied yet, not in
    ERROR; once the change is older, a heartbeat still lacking it is believed."""
    send(heartbeat(tree, 1))
    with services.db.write() as session:  # the flow ends: the load balancer changed now
        session.get(LoadBalancer, tree["lb"]).updated_at = utcnow()
    silent = heartbeat(tree, 2)
    silent["listeners"] = {}
    with caplog.at_level("WARNING", logger="lbaas.health.update"):
        send(silent)
    assert statuses(client, tree)["listener"] == "ONLINE"
    assert "does not serve it" not in caplog.text
    settled(services, tree["lb"])
    silent["seq"] = 3
    send(silent)
    assert statuses(client, tree)["listener"] == "ERROR"


def settled(services, lb_id: str) -> None:
    """The load balancer's last change, older than any heartbeat in flight."""
    with services.db.write() as session:
        session.get(LoadBalancer, lb_id).updated_at = utcnow() - 2 * SETTLE


def test_statistics_are_kept_per_amphora(client, services, tree, send):
    send(heartbeat(tree, 1, rx=300))
    with services.db.read() as session:
        rows = session.scalars(select(ListenerStatistics)).all()
    assert [(r.listener_id, r.amphora_id, r.bytes_in) for r in rows] == [
        (tree["listener"], tree["amphora"], 300)]
