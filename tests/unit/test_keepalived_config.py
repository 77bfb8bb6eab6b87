"""keepalived.conf rendering: one golden file per case, each one a config keepalived accepts.

The expected files live in tests/unit/golden/keepalived/; after an intended change of the
template, rewrite them with ``LBAAS_UPDATE_GOLDEN=1 pytest tests/unit/test_keepalived_config.py``
and review the diff line by line.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lbaas import config
from lbaas.amphora import keepalived_config
from lbaas.amphora.keepalived_config import InvalidVrrpConfiguration, VrrpOptions, render
from lbaas.db import models

GOLDEN = Path(__file__).parent / "golden" / "keepalived"
LB_ID = "10000000-0000-4000-8000-000000000001"
MASTER_ID = "a0000000-0000-4000-8000-000000000001"
BACKUP_ID = "a0000000-0000-4000-8000-000000000002"
OPTIONS = VrrpOptions(check_script="/var/lib/lbaas/amphorae/a1/vrrp/check_script.sh",
                      auth_pass="ABCDEFG", vrrp=config.KeepalivedVrrp(vrrp_advert_int=1))


def pair(vip: str = "10.0.2.5", master_ip: str = "10.0.2.11", backup_ip: str = "10.0.2.12",
         **backup_fields) -> tuple[models.LoadBalancer, models.Amphora, models.Amphora]:
    lb = models.LoadBalancer(id=LB_ID, vip_address=vip, topology="ACTIVE_STANDBY")
    master = models.Amphora(id=MASTER_ID, status="ALLOCATED", role="MASTER", vrrp_priority=100,
                            vrrp_ip=master_ip, vrrp_interface="eth-aaaa1111", vrrp_id=1)
    backup = models.Amphora(id=BACKUP_ID, status="ALLOCATED", role="BACKUP", vrrp_priority=90,
                            vrrp_ip=backup_ip, vrrp_interface="eth-bbbb2222", vrrp_id=1,
                            **backup_fields)
    lb.amphorae = [master, backup]
    return lb, master, backup


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("LBAAS_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()
    if shutil.which("keepalived") and os.geteuid() == 0:
        assert_keepalived_accepts(text)


def assert_keepalived_accepts(text: str) -> None:
    """``keepalived --config-test`` in a private network namespace (removed with its
    process) holding the interfaces the configuration names (and a check script that
    exists)."""
    candidate = Path(f"/tmp/lbaas-golden-{os.getpid()}.conf")
    candidate.write_text(text.replace(OPTIONS.check_script, "/bin/true"))
    script = ("ip link add eth-aaaa1111 type veth peer name eth-bbbb2222 && "
              f"keepalived --config-test -f {candidate}")
    try:
        result = subprocess.run(["unshare", "--net", "sh", "-c", script],
                                capture_output=True, text=True)
    finally:
        candidate.unlink()
    assert result.returncode == 0, result.stderr


def test_master_with_sub_second_adverts_uses_vrrpv3_and_checks_peer_source():
    lb, master, _ = pair()
    options = dataclasses.replace(OPTIONS, vrrp=config.KeepalivedVrrp(vrrp_advert_int=0.2))
    assert_golden("master_advert_0.2.conf", render(lb, master, options))


def test_backup_with_whole_second_adverts_keeps_vrrpv2_pass_authentication():
    lb, _, backup = pair()
    assert_golden("backup_advert_1.conf", render(lb, backup, OPTIONS))


def test_ipv6_vip_uses_vrrpv3_and_a_128_bit_address():
    lb, master, _ = pair(vip="fd00::5", master_ip="fd00::11", backup_ip="fd00::12")
    assert_golden("master_ipv6.conf", render(lb, master, OPTIONS))


def test_deleted_amphora_is_no_peer_but_one_being_replaced_is():
    lb, master, backup = pair()
    backup.status = "PENDING_DELETE"
    assert keepalived_config.peers_of(lb, master) == ("10.0.2.12",)
    backup.status = "DELETED"
    assert keepalived_config.peers_of(lb, master) == ()


def test_intervals_and_counts_come_from_the_keepalived_vrrp_section():
    settings = config.load(environ={"LBAAS__keepalived_vrrp__vrrp_check_interval": "3",
                                    "LBAAS__keepalived_vrrp__vrrp_garp_refresh_count": "4"})
    lb, master, _ = pair()
    text = render(lb, master, dataclasses.replace(OPTIONS, vrrp=settings.keepalived_vrrp))
    assert "    interval 3\n" in text and "garp_master_refresh_repeat 4\n" in text
    assert "advert_int 0.05\n" in text  # the default


@pytest.mark.parametrize("advert_int, message", [
    (0.005, "multiple of 0.01 s"), (41.0 + 0.5, "between 0.01 and 40.95"), (300, "between 1 and 255"),
])
def test_advert_interval_keepalived_cannot_use_is_refused(advert_int, message):
    settings = config.load(environ={"LBAAS__keepalived_vrrp__vrrp_advert_int": str(advert_int)})
    with pytest.raises(InvalidVrrpConfiguration, match=message):
        keepalived_config.check_settings(settings.keepalived_vrrp)


def test_amphora_without_vrrp_interface_is_refused():
    lb, master, _ = pair()
    master.vrrp_interface = None
    with pytest.raises(InvalidVrrpConfiguration, match="no VRRP address, interface"):
        render(lb, master, OPTIONS)


def test_takeover_preempts_with_a_higher_priority():
    lb, _, backup = pair()
    text = render(lb, backup, OPTIONS, takeover=True)
    assert "    priority 150\n" in text and "nopreempt" not in text
    assert "nopreempt" in render(lb, backup, OPTIONS)
