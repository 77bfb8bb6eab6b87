"""Which configuration changes the agent applies through haproxy's runtime API."""
from __future__ import annotations

from lbaas.amphora.agent.haproxy import runtime_changes, state_commands

SERVED = """global
    maxconn 100
backend pool:listener
    balance roundrobin
    server m1 10.0.0.1:80 weight 1 check inter 5s fall 3 rise 2
    server m2 10.0.0.2:80 weight 1 check inter 5s fall 3 rise 2
"""


def test_weight_and_admin_state_changes_need_no_reload():
    wanted = SERVED.replace("m1 10.0.0.1:80 weight 1 check", "m1 10.0.0.1:80 weight 7 check") \
                   .replace("m2 10.0.0.2:80 weight 1 check inter 5s fall 3 rise 2",
                            "m2 10.0.0.2:80 weight 1 disabled check inter 5s fall 3 rise 2")
    assert runtime_changes(SERVED, wanted) == [
        "set server pool:listener/m1 weight 7",
        "set server pool:listener/m2 state maint",
    ]
    assert runtime_changes(wanted, SERVED) == [
        "set server pool:listener/m1 weight 1",
        "set server pool:listener/m2 state ready",
    ]


def test_identical_configuration_needs_nothing():
    assert runtime_changes(SERVED, SERVED) == []


def test_new_member_needs_a_reload():
    wanted = SERVED + "    server m3 10.0.0.3:80 weight 1\n"
    assert runtime_changes(SERVED, wanted) is None


def test_changed_address_or_check_needs_a_reload():
    assert runtime_changes(SERVED, SERVED.replace("10.0.0.1:80", "10.0.0.9:80")) is None
    assert runtime_changes(SERVED, SERVED.replace("inter 5s fall 3 rise 2\n    server m2",
                                                  "inter 9s fall 3 rise 2\n    server m2")) is None


def test_other_lines_need_a_reload():
    assert runtime_changes(SERVED, SERVED.replace("maxconn 100", "maxconn 200")) is None
    assert runtime_changes(SERVED, SERVED.replace("roundrobin", "leastconn")) is None


def test_servers_that_stay_get_their_new_state_before_a_reload():
    wanted = (SERVED.replace("m1 10.0.0.1:80 weight 1 check", "m1 10.0.0.1:80 weight 1 disabled check")
              + "    server m3 10.0.0.3:80 weight 1\n")
    assert runtime_changes(SERVED, wanted) is None
    assert state_commands(SERVED, wanted) == ["set server pool:listener/m1 state maint"]
