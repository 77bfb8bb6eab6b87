"""The agent's heartbeat: haproxy's "show stat" -> upstream's version 3 message, sent signed."""
from __future__ import annotations

import csv
import io
import socket
from pathlib import Path

import pytest

from lbaas.amphora.agent.config import AgentConfig
from lbaas.amphora.agent.heartbeat import (
    HeartbeatSender,
    StatsCounters,
    build_message,
    parse_destination,
    parse_show_stat,
)
from lbaas.amphora.agent.status_message import unwrap

# Captured from haproxy 2.x: a frontend, a backend "<pool>:<listener>" with a server
# failing its check, one without check at weight 0 and one disabled.
SHOW_STAT = (Path(__file__).parent / "show_stat.csv").read_text()
LISTENER = "20000000-0000-4000-8000-000000000001"
BACKEND = f"30000000-0000-4000-8000-000000000001:{LISTENER}"
M1, M2, M3 = (f"40000000-0000-4000-8000-00000000000{i}" for i in (1, 2, 3))
KEY = "test-key"


def with_frontend_counters(**values: int) -> str:
    """SHOW_STAT with the frontend's counters (bin, bout, scur, stot, ereq) set."""
    rows = parse_show_stat(SHOW_STAT)
    for row in rows:
        if row["svname"] == "FRONTEND":
            row.update({key: str(value) for key, value in values.items()})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return "# " + out.getvalue()


def test_show_stat_gives_listener_pool_and_member_statuses(tmp_path):
    message = build_message("amp", 5, {"lb": SHOW_STAT}, StatsCounters(tmp_path / "c.json"))
    assert message["id"] == "amp" and message["seq"] == 5 and message["ver"] == 3
    assert message["listeners"][LISTENER]["status"] == "OPEN"
    assert message["pools"] == {BACKEND: {"status": "DOWN", "members": {
        M1: "DOWN", M2: "no check", M3: "MAINT"}}}


def test_counters_are_deltas_since_the_last_message_and_survive_a_restart(tmp_path):
    path = tmp_path / "stats_counters.json"
    counters = StatsCounters(path)
    first = build_message("amp", 1, {"lb": with_frontend_counters(bin=100, bout=1000, scur=3,
                                                                  stot=10, ereq=1)}, counters)
    assert first["listeners"][LISTENER]["stats"] == {"rx": 100, "tx": 1000, "conns": 3,
                                                     "totconns": 10, "ereq": 1}
    counters.save()
    restarted = StatsCounters(path)
    second = build_message("amp", 2, {"lb": with_frontend_counters(bin=150, bout=1500, scur=1,
                                                                   stot=12, ereq=1)}, restarted)
    assert second["listeners"][LISTENER]["stats"] == {"rx": 50, "tx": 500, "conns": 1,
                                                      "totconns": 2, "ereq": 0}


def test_a_counter_that_went_down_means_haproxy_restarted_and_counts_whole(tmp_path):
    counters = StatsCounters(tmp_path / "c.json")
    build_message("amp", 1, {"lb": with_frontend_counters(bin=500)}, counters)
    again = build_message("amp", 2, {"lb": with_frontend_counters(bin=20)}, counters)
    assert again["listeners"][LISTENER]["stats"]["rx"] == 20


@pytest.mark.parametrize("entry, expected", [
    ("172.29.232.1:5555", ("172.29.232.1", 5555)),
    ("[fd00::1]:5555", ("fd00::1", 5555)),
])
def test_destinations_are_ip_port(entry, expected):
    assert parse_destination(entry) == expected


@pytest.mark.parametrize("entry", ["172.29.232.1", ":5555", "host:port"])
def test_a_bad_destination_is_refused_with_the_entry(entry):
    with pytest.raises(ValueError, match="controller_ip_port_list"):
        parse_destination(entry)


def test_the_sender_sends_a_signed_heartbeat_to_every_controller(tmp_path):
    receivers = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    try:
        for sock in receivers:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(5)
        (tmp_path / "lb-1").mkdir()
        (tmp_path / "lb-1" / "haproxy.cfg").write_text("")
        config = AgentConfig(
            amphora_id="amp-1", base_path=tmp_path, bind_host="127.0.0.1", bind_port=1,
            agent_server_cert=tmp_path / "x", agent_server_ca=tmp_path / "y",
            controller_ip_port_list=tuple(f"127.0.0.1:{s.getsockname()[1]}" for s in receivers),
            heartbeat_interval=1, heartbeat_key=KEY)
        sender = HeartbeatSender(config, read_stats=lambda lb_id: SHOW_STAT)
        sender.send_once()
        sender.send_once()
        for sock in receivers:
            first, second = (unwrap(sock.recv(65535), KEY) for _ in range(2))
            assert first["id"] == "amp-1" and LISTENER in first["listeners"]
            assert second["seq"] == first["seq"] + 1
    finally:
        for sock in receivers:
            sock.close()


def test_the_agent_configuration_carries_the_heartbeat_options(tmp_path):
    config = AgentConfig(
        amphora_id="amp-1", base_path=tmp_path, bind_host="::", bind_port=9443,
        agent_server_cert=tmp_path / "c", agent_server_ca=tmp_path / "ca",
        controller_ip_port_list=("10.0.0.1:5555", "10.0.0.2:5555"), heartbeat_interval=0.5,
        heartbeat_key="k")
    config.write(tmp_path / "amphora-agent.conf")
    assert "[health_manager]" in (tmp_path / "amphora-agent.conf").read_text()
    assert AgentConfig.load(tmp_path / "amphora-agent.conf") == config

