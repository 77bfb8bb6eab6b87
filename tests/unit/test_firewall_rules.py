"""The firewall's rules are a pure function of the settings (golden files)."""
from __future__ import annotations

from pathlib import Path

import pytest

from lbaas import firewall

GOLDEN = Path(__file__).parent / "golden" / "firewall"


@pytest.mark.parametrize(("name", "log_drops"), [("default", False), ("logging", True)])
def test_rules_match_golden_file(name, log_drops):
    spec = firewall.FirewallSpec(management_bridge="lbaas-mgmt", heartbeat_port=5555,
                                 log_drops=log_drops)
    assert firewall.render(spec) == (GOLDEN / f"{name}.rules").read_text()
