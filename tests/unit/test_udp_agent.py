"""The agent's UDP service without a kernel: what it asks nftables, what it reports, what
it keeps across an agent restart; and the agent importing only the standard library."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lbaas.amphora.agent import heartbeat, udp, udp_rules
from lbaas.amphora.agent.nft import NftError
from lbaas.amphora.agent.udp_model import Listener, Member, Pool, UdpService

LB = "88888888-1111-4111-8111-111111111111"
LISTENER = "77777777-1111-4111-8111-111111111111"
MEMBER = Member("11111111-1111-4111-8111-111111111111", "10.0.0.1", 53, 1, True, False, None, None)
SERVICE = UdpService(LB, (Listener(LISTENER, "UDP", 53, ("203.0.113.10",), None,
                                   Pool("p", "ROUND_ROBIN", None, None, (MEMBER,))),))


class FakeNft:
    """Records transactions; lists the counters it was told to add, with fixed values."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.refuse = False

    def run(self, commands: str) -> None:
        if self.refuse:
            raise NftError("Error: syntax error")
        self.runs.append(commands)

    def list(self, what: str) -> list[dict[str, Any]]:
        if not self.runs or "delete table" in self.runs[-1]:
            raise NftError("No such file or directory")
        names = [line.split()[-1] for line in self.runs[-1].splitlines()
                 if line.startswith("add counter")]
        return [{"counter": {"name": name, "packets": 7, "bytes": 700}} for name in names]


@pytest.fixture
def forwarding(tmp_path: Path) -> tuple[Path, ...]:
    """Stand-ins for /proc/sys/net/.../forwarding: a unit test never touches the host's."""
    paths = (tmp_path / "ip_forward", tmp_path / "forwarding6")
    for path in paths:
        path.write_text("0\n")
    return paths


def test_install_report_restore_and_remove(tmp_path, forwarding):
    nft = FakeNft()
    services = udp.UdpServices(tmp_path / "amphora", nft, forwarding)  # type: ignore[arg-type]
    services.install(LB, SERVICE.to_json())
    assert f"add table inet {udp_rules.table_name(LB)}" in nft.runs[-1]
    assert [path.read_text() for path in forwarding] == ["1\n", "1\n"]
    listeners, pools = services.report()
    assert listeners[LISTENER]["status"] == "OPEN"
    assert listeners[LISTENER]["row"] == {"bin": 700, "bout": 700, "stot": 7, "ereq": 7}
    assert listeners[LISTENER]["packets"] == {"rx": 7, "tx": 7}
    assert pools[f"p:{LISTENER}"]["members"] == {MEMBER.id: "no check"}
    assert pools[f"p:{LISTENER}"]["member_stats"][MEMBER.id]["rx_packets"] == 7

    restarted = udp.UdpServices(tmp_path / "amphora", FakeNft(), forwarding)  # type: ignore[arg-type]
    restarted.restore()
    assert restarted.installed() == [LB] and restarted.get(LB).service == SERVICE

    services.remove(LB)
    assert "delete table" in nft.runs[-1]
    assert services.installed() == []
    assert [path.read_text() for path in forwarding] == ["0\n", "0\n"]


def test_refused_rules_keep_the_old_service(tmp_path, forwarding):
    nft = FakeNft()
    services = udp.UdpServices(tmp_path, nft, forwarding)  # type: ignore[arg-type]
    services.install(LB, SERVICE.to_json())
    before = (tmp_path / LB / "udp.json").read_text()
    nft.refuse = True
    changed = UdpService(LB, (Listener(LISTENER, "UDP", 54, ("203.0.113.10",), None, None),))
    with pytest.raises(udp.InvalidConfig, match="nftables refused"):
        services.install(LB, changed.to_json())
    assert services.get(LB).service == SERVICE
    assert (tmp_path / LB / "udp.json").read_text() == before
    with pytest.raises(udp.InvalidConfig):
        services.install(LB, json.dumps({"load_balancer_id": LB}))


def test_a_load_balancer_without_udp_is_left_alone(tmp_path, forwarding):
    nft = FakeNft()
    udp.UdpServices(tmp_path, nft, forwarding).remove(LB)  # type: ignore[arg-type]
    assert nft.runs == []


def test_the_agent_imports_only_the_standard_library():
    """It runs in every amphora from the service's Python: ~25 MB, not the service's 110."""
    probe = ("import sys, lbaas.amphora.agent.__main__\n"
             "ours = ('lbaas.amphora.agent', 'lbaas.amphora', 'lbaas')\n"
             "print('\\n'.join(name for name in sys.modules if name.split('.')[0] not in "
             "sys.stdlib_module_names and name not in ours and not name.startswith(ours[0]) "
             "and not name.startswith('_')))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == []


def test_heartbeat_carries_udp_listeners_with_deltas(tmp_path):
    counters = heartbeat.StatsCounters(tmp_path / "counters.json")
    pools = {f"p:{LISTENER}": {"status": "UP", "members": {MEMBER.id: "UP"}}}

    def sent(row: dict[str, int]) -> dict[str, Any]:
        message: dict[str, Any] = {"listeners": {}, "pools": {}}
        listener = {"status": "OPEN", "conns": 2, "packets": {"rx": 5, "tx": 4}, "row": row}
        heartbeat.add_udp(message, {LISTENER: listener}, pools, counters)
        assert message["pools"] == pools
        return message["listeners"][LISTENER]

    first = sent({"bin": 100, "bout": 50, "stot": 3, "ereq": 0})
    assert first["status"] == "OPEN" and first["packets"] == {"rx": 5, "tx": 4}
    assert first["stats"] == {"rx": 100, "tx": 50, "totconns": 3, "ereq": 0, "conns": 2}
    assert sent({"bin": 150, "bout": 80, "stot": 4, "ereq": 1})["stats"] == {
        "rx": 50, "tx": 30, "totconns": 1, "ereq": 1, "conns": 2}
