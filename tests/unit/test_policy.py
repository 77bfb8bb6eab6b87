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


def enforcer_for(enforce_new_defaults: bool = True):
    settings = config.Settings()
    settings.oslo_policy.enforce_new_defaults = enforce_new_defaults
    return policy.load_enforcer(settings)


def allows(enforcer, action: str, project: str | None, creds: dict[str, object]) -> bool:
    creds = {**creds, "is_admin": enforcer.enforce("context_is_admin", creds, creds)}
    target = {} if project is None else {"project_id": project}
    return bool(enforcer.enforce(f"os_load-balancer_api:{action}", target, creds))


@pytest.mark.parametrize("enforce_new_defaults", [True, False])
def test_keystones_default_roles_work_in_both_modes(enforce_new_defaults):
    enforcer = enforcer_for(enforce_new_defaults)
    reader, member = member_of("p1", "reader"), member_of("p1", "member", "reader")
    admin = member_of("p1", "admin", "member", "reader")
    assert allows(enforcer, "loadbalancer:get_all", "p1", reader)
    assert allows(enforcer, "loadbalancer:get_one", "p1", reader)
    assert not allows(enforcer, "loadbalancer:post", "p1", reader)
    assert allows(enforcer, "loadbalancer:post", "p1", member)
    assert allows(enforcer, "loadbalancer:delete", "p1", member)
    assert not allows(enforcer, "loadbalancer:get_one", "p2", member)
    assert not allows(enforcer, "loadbalancer:get_all-global", None, member)
    assert not allows(enforcer, "amphora:get_all", None, member)
    assert not allows(enforcer, "quota:put", "p1", member)
    assert allows(enforcer, "quota:get_one", "p1", reader)
    for action in ("loadbalancer:get_all-global", "loadbalancer:put_failover", "amphora:get_all",
                   "flavor-profile:post"):
        assert allows(enforcer, action, None, admin), action
    assert allows(enforcer, "loadbalancer:put", "p2", admin)
    assert allows(enforcer, "quota:put", "p2", admin)


def test_the_load_balancer_roles_count_only_without_the_new_defaults():
    observer, member = member_of("p1", "load-balancer_observer"), member_of("p1", "load-balancer_member")
    global_observer = member_of("p1", "load-balancer_global_observer")
    quota_admin, lb_admin = member_of("p1", "load-balancer_quota_admin"), member_of("p1", "load-balancer_admin")
    new, old = enforcer_for(True), enforcer_for(False)
    for creds, action, project in ((observer, "loadbalancer:get_one", "p1"),
                                   (member, "loadbalancer:put", "p1"),
                                   (global_observer, "loadbalancer:get_all-global", None),
                                   (quota_admin, "quota:put", "p2"),
                                   (lb_admin, "amphora:get_all", None)):
        assert allows(old, action, project, creds), (creds, action)
        assert not allows(new, action, project, creds), (creds, action)
    assert not allows(old, "loadbalancer:put", "p1", observer)
    assert not allows(old, "loadbalancer:get_one", "p2", member)
    assert not allows(old, "loadbalancer:put", "p2", global_observer)
    assert not allows(old, "amphora:get_all", None, member)


def test_a_system_scoped_token_is_judged_by_its_roles_and_is_never_is_admin():
    enforcer = enforcer_for()
    system_admin = {"project_id": None, "system_scope": "all", "roles": ["admin", "member", "reader"]}
    system_reader = {"project_id": None, "system_scope": "all", "roles": ["reader"]}
    assert not enforcer.enforce("context_is_admin", system_admin, system_admin)
    assert allows(enforcer, "loadbalancer:get_all-global", None, system_admin)
    assert allows(enforcer, "amphora:get_all", None, system_admin)
    assert not allows(enforcer, "loadbalancer:get_all", None, system_reader)
    assert not allows(enforcer, "loadbalancer:get_one", "p1", system_reader)


def test_an_operator_policy_file_overrides_a_default(tmp_path: Path):
    rules = tmp_path / "policy.yaml"
    rules.write_text('"os_load-balancer_api:loadbalancer:get_all": "rule:load-balancer:admin"\n')
    settings = config.Settings()
    settings.oslo_policy.policy_file = rules
    enforcer = policy.load_enforcer(settings)
    member = member_of("p1", "member", "reader")
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
