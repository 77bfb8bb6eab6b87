"""The policy table: every route has an upstream rule; defaults and operator overrides."""
from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from lbaas import config, service
from lbaas.api import policy
from lbaas.api.app import create_app
from lbaas.api.common import ApiState


def member_of(project: str, *roles: str) -> dict[str, object]:
    return {"project_id": project, "roles": list(roles), "is_admin": False}


def test_every_route_of_the_app_has_a_policy_rule():
    app = create_app(ApiState(settings=config.Settings(), db=None, wakeup=None))  # type: ignore[arg-type]
    unmapped = [(method, route.path) for route in app.routes if isinstance(route, APIRoute)
                for method in route.methods
                if route.path not in policy.PUBLIC_PATHS
                and policy.route_key(method, route.path) not in policy.ROUTE_RULES]
    assert unmapped == []


def test_every_mapped_rule_is_registered_with_upstreams_name():
    enforcer = policy.load_enforcer(config.Settings())
    for action in policy.ROUTE_RULES.values():
        assert f"os_load-balancer_api:{action}" in enforcer.registered_rules


def test_route_keys_ignore_the_version_alias_and_parameter_names():
    assert policy.route_key("GET", "/v2.0/lbaas/pools/{pool_id}/members/{member_id}") == (
        "GET", "/lbaas/pools/{}/members/{}")
    assert policy.ROUTE_RULES[policy.route_key("PUT", "/v2/lbaas/loadbalancers/{lb_id}/failover")] == (
        "loadbalancer:put_failover")


def test_default_rules_are_upstreams():
    enforcer = policy.load_enforcer(config.Settings())
    rule = "os_load-balancer_api:loadbalancer:"
    assert enforcer.enforce(rule + "get_one", {"project_id": "p1"}, member_of("p1", "load-balancer_observer"))
    assert not enforcer.enforce(rule + "put", {"project_id": "p1"}, member_of("p1", "load-balancer_observer"))
    assert not enforcer.enforce(rule + "get_one", {"project_id": "p2"}, member_of("p1", "load-balancer_member"))
    assert enforcer.enforce(rule + "get_all-global", {}, member_of("p1", "load-balancer_global_observer"))
    assert not enforcer.enforce("os_load-balancer_api:amphora:get_all", {},
                                member_of("p1", "load-balancer_member"))
    assert enforcer.enforce("os_load-balancer_api:quota:put", {"project_id": "p2"},
                            member_of("p1", "load-balancer_quota_admin"))


def test_an_operator_policy_file_overrides_a_default(tmp_path: Path):
    rules = tmp_path / "policy.yaml"
    rules.write_text('"os_load-balancer_api:loadbalancer:get_all": "rule:load-balancer:admin"\n')
    settings = config.Settings()
    settings.oslo_policy.policy_file = rules
    enforcer = policy.load_enforcer(settings)
    member = member_of("p1", "load-balancer_member")
    assert not enforcer.enforce("os_load-balancer_api:loadbalancer:get_all", {"project_id": "p1"}, member)
    assert enforcer.enforce("os_load-balancer_api:loadbalancer:get_one", {"project_id": "p1"}, member)


def test_a_missing_policy_file_is_refused_at_start(tmp_path: Path):
    settings = config.load(environ={
        "LBAAS__api_settings__auth_strategy": "keystone",
        "LBAAS__keystone_authtoken__auth_url": "http://127.0.0.1:5000",
        "LBAAS__keystone_authtoken__username": "lbaas",
        "LBAAS__keystone_authtoken__password": "secret",
        "LBAAS__oslo_policy__policy_file": str(tmp_path / "missing.yaml")})
    with pytest.raises(config.ConfigError, match="policy_file .*missing.yaml does not exist"):
        service.check(settings)


def test_keystone_without_a_service_user_is_refused_at_start():
    settings = config.load(environ={"LBAAS__api_settings__auth_strategy": "keystone",
                                          "LBAAS__keystone_authtoken__auth_url": "http://127.0.0.1:5000"})
    with pytest.raises(config.ConfigError, match="auth_type = password needs"):
        service.check(settings)


def test_an_unknown_auth_strategy_is_refused():
    with pytest.raises(config.ConfigError, match="auth_strategy"):
        config.load(environ={"LBAAS__api_settings__auth_strategy": "testing"})
