"""The nftables rules of UDP listeners (golden files, checked by ``nft -c``), the weighted
slots, the members served, and the monitors' up/down counting."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lbaas.amphora.agent import udp, udp_rules
from lbaas.amphora.agent.udp_model import (
    Listener,
    Member,
    Monitor,
    Persistence,
    Pool,
    UdpService,
)
from lbaas.amphora.agent.udp_monitor import MemberHealth, expected

GOLDEN = Path(__file__).parent / "golden" / "nft"
LB = "88888888-1111-4111-8111-111111111111"
M1 = Member("11111111-1111-4111-8111-111111111111", "10.0.0.1", 53, 5, True, False, None, None)
M2 = Member("22222222-1111-4111-8111-111111111111", "10.0.0.2", 5353, 1, True, False, None, None)
M6 = Member("33333333-1111-4111-8111-111111111111", "fd00::3", 53, 1, True, False, None, None)
BACKUP = Member("44444444-1111-4111-8111-111111111111", "10.0.0.4", 53, 1, True, True, None, None)
OFF = Member("55555555-1111-4111-8111-111111111111", "10.0.0.5", 53, 1, False, False, None, None)
MONITOR = Monitor("66666666-1111-4111-8111-111111111111", "UDP-CONNECT", 5, 3, 2, 3)


def service(pool: Pool, connection_limit: int | None = None,
            vips: tuple[str, ...] = ("203.0.113.10",), cidrs: tuple[str, ...] = ()) -> UdpService:
    return UdpService(LB, (Listener("77777777-1111-4111-8111-111111111111", "UDP", 53, vips,
                                    connection_limit, pool, cidrs),))


CASES = {
    "round_robin_weights": service(Pool("99999999-1111-4111-8111-111111111111", "ROUND_ROBIN",
                                        None, None, (M1, M2))),
    "source_ip_persistence_dual_stack": service(
        Pool("99999999-1111-4111-8111-111111111111", "SOURCE_IP",
             Persistence(360, "255.255.255.0"), MONITOR, (M1, M2, M6)),
        connection_limit=1000, vips=("203.0.113.10", "2001:db8::10"),
        cidrs=("192.0.2.0/24", "198.51.100.0/24")),
    "no_pool": service(None),  # type: ignore[arg-type]
}


def rendered(name: str) -> str:
    made = CASES[name]
    served = {listener.id: udp_rules.served_members(listener.pool, {})
              for listener in made.listeners if listener.pool is not None}
    return udp_rules.commands(made, served, {"l_gone_new": "counter"})


@pytest.mark.parametrize("name", sorted(CASES))
def test_rules_match_the_golden_file(name):
    assert rendered(name) == (GOLDEN / f"{name}.nft").read_text()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="nft -c needs root")
@pytest.mark.parametrize("name", sorted(CASES))
def test_nft_accepts_the_rules(name, tmp_path):
    """``nft -c`` in a namespace of its own (the stale counter deleted exists there)."""
    path = tmp_path / "rules.nft"
    table = udp_rules.table_name(LB)
    path.write_text(f"add table inet {table}\nadd counter inet {table} l_gone_new\n"
                    + rendered(name))
    result = subprocess.run(["unshare", "--net", "nft", "-c", "-f", str(path)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_description_survives_json():
    made = CASES["source_ip_persistence_dual_stack"]
    assert UdpService.from_json(made.to_json()) == made
    with pytest.raises(ValueError):
        UdpService.from_json('{"load_balancer_id": "x"}')


def test_weighted_slots_interleave():
    assert udp_rules.slots([5, 1, 1]) == [0, 0, 1, 0, 2, 0, 0]
    assert udp_rules.slots([2, 2]) == [0, 1]
    assert udp_rules.slots([3, 1]) == [0, 0, 1, 0]


def test_served_members_leave_out_down_disabled_and_drained_and_use_backups_last():
    pool = Pool("p", "ROUND_ROBIN", None, MONITOR, (M1, M2, BACKUP, OFF,
                                                   Member("d", "10.0.0.6", 53, 0, True, False,
                                                          None, None)))
    assert udp_rules.served_members(pool, {}) == (M1, M2)
    assert udp_rules.served_members(pool, {M1.id: False}) == (M2,)
    assert udp_rules.served_members(pool, {M1.id: False, M2.id: False}) == (BACKUP,)


def test_heartbeat_statuses_are_upstreams():
    pool = Pool("p", "ROUND_ROBIN", None, MONITOR, (M1, M2, OFF))
    up = {M1.id: True, M2.id: False}
    assert [udp.member_status(member, pool, up) for member in pool.members] == [
        "UP", "DOWN", "MAINT"]
    assert udp.pool_status(pool, up) == "UP"
    assert udp.pool_status(pool, {M1.id: False, M2.id: False}) == "DOWN"
    unmonitored = Pool("p", "ROUND_ROBIN", None, None, (M1,))
    assert udp.member_status(M1, unmonitored, {}) == "no check"
    assert udp.pool_status(Pool("p", "ROUND_ROBIN", None, None, ()), {}) == "DOWN"


def test_a_member_goes_down_after_max_retries_down_and_back_after_max_retries():
    health = MemberHealth(rise=2, fall=3)
    assert [health.record(False) for _ in range(3)] == [False, False, True]
    assert not health.up
    assert [health.record(True), health.record(False), health.record(True),
            health.record(True)] == [False, False, False, True]
    assert health.up


def test_expected_codes():
    assert expected("200", 200) and not expected("200", 201)
    assert expected("200,202", 202) and expected("200-204", 204) and not expected("200-204", 301)
