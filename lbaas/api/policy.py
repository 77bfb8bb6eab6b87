"""Upstream's access policy (``octavia/policies``), enforced with oslo.policy.

Every API route maps to one upstream rule name (``ROUTE_RULES``); :func:`authorize`
checks it once per request, before the handler runs, and answers upstream's 403 when
it fails. A handler that loads an object checks the same rule again against the
object's project (``RequestContext.authorize``), as upstream's controllers do: another
project's object answers 403. What a list covers beyond the caller's project
(``all_projects``: admins, global observers for reads, quota admins for quotas) goes into
the :class:`RequestContext`.

The defaults are upstream's: Keystone's default roles (``reader``, ``member``,
``admin``; ``octavia/policies/keystone_default_roles.py``), with the older
``load-balancer_*`` roles (``advanced_rbac.py``) as the deprecated alternatives that
``[oslo_policy] enforce_new_defaults = false`` still honours. ``[oslo_policy]
policy_file`` overrides any rule.
"""
from __future__ import annotations

import functools
import logging
import re
from pathlib import Path

from fastapi import Request
from oslo_config import cfg
from oslo_policy import opts as policy_opts
from oslo_policy import policy

from lbaas.api import faults
from lbaas.api.context import RequestContext
from lbaas.api.keystone import SCOPE_KEY, Identity
from lbaas.config import ConfigError, Settings

LOG = logging.getLogger(__name__)

PREFIX = "os_load-balancer_api"
ADMIN = "rule:load-balancer:admin"
READ = "rule:load-balancer:read"
READ_GLOBAL = "rule:load-balancer:read-global"
WRITE = "rule:load-balancer:write"
READ_QUOTA = "rule:load-balancer:read-quota"
READ_QUOTA_GLOBAL = "rule:load-balancer:read-quota-global"
WRITE_QUOTA = "rule:load-balancer:write-quota"
# Upstream registers its role rules for project-scoped tokens only; the route rules have
# no scope, so a system-scoped token is judged by its roles (and is never is_admin).
PROJECT_SCOPE = ["project"]


def _deprecated(name: str, check: str) -> policy.DeprecatedRule:
    """The load-balancer_* role rule ``name`` held before Keystone's default roles (Wallaby)."""
    return policy.DeprecatedRule(
        name, check, deprecated_since="W",
        deprecated_reason="The Octavia Advanced RBAC roles (load-balancer_*) give way to "
                          "Keystone's default roles (reader, member, admin).")


def _role_rule(name: str, check: str, deprecated: str | None = None) -> policy.RuleDefault:
    return policy.RuleDefault(name, check, scope_types=PROJECT_SCOPE,
                              deprecated_rule=_deprecated(name, deprecated) if deprecated else None)


# Who holds which kind of access: octavia/policies/keystone_default_roles.py, with
# advanced_rbac.py's rules as the deprecated alternatives.
ROLE_RULES = [
    _role_rule("project-member", "role:member and project_id:%(project_id)s"),
    _role_rule("project-reader", "role:reader and project_id:%(project_id)s"),
    _role_rule("context_is_admin", "role:admin", "role:admin or role:load-balancer_admin"),
    _role_rule("load-balancer:owner", "project_id:%(project_id)s"),
    # is_admin: the context_is_admin rule held for the caller (every noauth caller).
    _role_rule("load-balancer:admin", "is_admin:True or role:admin",
               "is_admin:True or role:admin or role:load-balancer_admin"),
    _role_rule("service", "role:service"),
    _role_rule("load-balancer:global_observer", "role:admin",
               "role:load-balancer_global_observer"),
    _role_rule("load-balancer:member_and_owner", "rule:project-member",
               "role:load-balancer_member and rule:load-balancer:owner"),
    _role_rule("load-balancer:observer_and_owner", "rule:project-reader",
               "role:load-balancer_observer and rule:load-balancer:owner"),
    _role_rule("load-balancer:quota-admin", "role:admin", "role:load-balancer_quota_admin"),
]

# The kinds of access the routes name: octavia/policies/base.py.
BASE_RULES = ROLE_RULES + [
    _role_rule("load-balancer:read",
               "rule:load-balancer:observer_and_owner or rule:load-balancer:global_observer"
               " or rule:load-balancer:member_and_owner or rule:load-balancer:admin"),
    _role_rule("load-balancer:read-global",
               "rule:load-balancer:global_observer or rule:load-balancer:admin"),
    _role_rule("load-balancer:write",
               "rule:load-balancer:member_and_owner or rule:load-balancer:admin"),
    _role_rule("load-balancer:read-quota",
               "rule:load-balancer:observer_and_owner or rule:load-balancer:global_observer"
               " or rule:load-balancer:member_and_owner or rule:load-balancer:quota-admin"
               " or rule:load-balancer:admin"),
    _role_rule("load-balancer:read-quota-global",
               "rule:load-balancer:global_observer or rule:load-balancer:quota-admin"
               " or rule:load-balancer:admin"),
    _role_rule("load-balancer:write-quota",
               "rule:load-balancer:quota-admin or rule:load-balancer:admin"),
]

# (method, path below /v2 with every {parameter} as {}) -> "<object>:<action>".
ROUTE_RULES: dict[tuple[str, str], str] = {}
# "<object>:<action>" -> its default check string.
ACTION_DEFAULTS: dict[str, str] = {}


def _route(method: str, path: str, action: str, check: str) -> None:
    ROUTE_RULES[(method, path)] = action
    ACTION_DEFAULTS[action] = check


def _collection(path: str, obj: str, *, read: str = READ, write: str = WRITE,
                global_list: bool = True) -> None:
    """The five routes of a collection: list, create, show, update, delete."""
    _route("GET", path, f"{obj}:get_all", read)
    if global_list:
        ACTION_DEFAULTS[f"{obj}:get_all-global"] = READ_GLOBAL if read == READ else read
    _route("POST", path, f"{obj}:post", write)
    _route("GET", f"{path}/{{}}", f"{obj}:get_one", read)
    _route("PUT", f"{path}/{{}}", f"{obj}:put", write)
    _route("DELETE", f"{path}/{{}}", f"{obj}:delete", write)


# octavia/policies/*.py, resource by resource.
_collection("/lbaas/loadbalancers", "loadbalancer")
_route("GET", "/lbaas/loadbalancers/{}/stats", "loadbalancer:get_stats", READ)
_route("GET", "/lbaas/loadbalancers/{}/status", "loadbalancer:get_status", READ)
_route("GET", "/lbaas/loadbalancers/{}/statuses", "loadbalancer:get_status", READ)
_route("PUT", "/lbaas/loadbalancers/{}/failover", "loadbalancer:put_failover", ADMIN)
_collection("/lbaas/listeners", "listener")
_route("GET", "/lbaas/listeners/{}/stats", "listener:get_stats", READ)
_collection("/lbaas/pools", "pool")
_collection("/lbaas/pools/{}/members", "member", global_list=False)
_route("PUT", "/lbaas/pools/{}/members", "member:put", WRITE)  # the batch update
_collection("/lbaas/healthmonitors", "healthmonitor")
_collection("/lbaas/l7policies", "l7policy")
_collection("/lbaas/l7policies/{}/rules", "l7rule", global_list=False)
_collection("/lbaas/flavors", "flavor", write=ADMIN, global_list=False)
_collection("/lbaas/flavorprofiles", "flavor-profile", read=ADMIN, write=ADMIN, global_list=False)
_collection("/lbaas/availabilityzones", "availability-zone", write=ADMIN, global_list=False)
_collection("/lbaas/availabilityzoneprofiles", "availability-zone-profile", read=ADMIN,
            write=ADMIN, global_list=False)
_route("GET", "/lbaas/providers", "provider:get_all", READ)
_route("GET", "/lbaas/providers/{}/flavor_capabilities", "provider-flavor:get_all", ADMIN)
_route("GET", "/lbaas/providers/{}/availability_zone_capabilities",
       "provider-availability-zone:get_all", ADMIN)
_route("GET", "/lbaas/quotas", "quota:get_all", READ_QUOTA)
ACTION_DEFAULTS["quota:get_all-global"] = READ_QUOTA_GLOBAL
_route("GET", "/lbaas/quotas/{}", "quota:get_one", READ_QUOTA)
_route("PUT", "/lbaas/quotas/{}", "quota:put", WRITE_QUOTA)
_route("DELETE", "/lbaas/quotas/{}", "quota:delete", WRITE_QUOTA)
_route("GET", "/lbaas/quotas/{}/default", "quota:get_defaults", READ_QUOTA)
_route("GET", "/octavia/amphorae", "amphora:get_all", ADMIN)
_route("GET", "/octavia/amphorae/{}", "amphora:get_one", ADMIN)
_route("DELETE", "/octavia/amphorae/{}", "amphora:delete", ADMIN)
_route("PUT", "/octavia/amphorae/{}/failover", "amphora:put_failover", ADMIN)
_route("PUT", "/octavia/amphorae/{}/config", "amphora:put_config", ADMIN)
_route("GET", "/octavia/amphorae/{}/stats", "amphora:get_stats", ADMIN)
# Ours: the read-only network registry in Neutron's shape (upstream asks Neutron).
_route("GET", "/networks", "network:get_all", READ)
_route("GET", "/networks/{}", "network:get_one", READ)
_route("GET", "/subnets", "subnet:get_all", READ)
_route("GET", "/subnets/{}", "subnet:get_one", READ)
# Ours: the control plane's Prometheus metrics (lbaas.api.monitoring).
_route("GET", "/metrics", "metrics:get_all", ADMIN)

RULE_DEFAULTS = [policy.RuleDefault(f"{PREFIX}:{action}", check)
                 for action, check in ACTION_DEFAULTS.items()]

# Read when [oslo_policy] policy_file is unset, if it exists (upstream: policy.yaml in
# /etc/octavia).
DEFAULT_POLICY_FILE = Path("/etc/lbaas/policy.yaml")
# Routes that answer without a policy check: the version documents, the health check.
PUBLIC_PATHS = frozenset({"/", "/v2", "/v2.0", "/healthcheck"})

_VERSION = re.compile(r"^/v2(\.0)?(?=/)")
_PARAMETER = re.compile(r"\{[^}]*\}")


def route_key(method: str, path: str) -> tuple[str, str]:
    """``("GET", "/v2.0/lbaas/pools/{pool_id}")`` -> ``("GET", "/lbaas/pools/{}")``."""
    return method, _PARAMETER.sub("{}", _VERSION.sub("", path))


def check_file(settings: Settings) -> None:
    """Refuse a configured policy file that is not there."""
    policy_file = settings.oslo_policy.policy_file
    if policy_file is not None and not policy_file.is_file():
        raise ConfigError(f"[oslo_policy] policy_file {policy_file} does not exist")


def load_enforcer(settings: Settings) -> policy.Enforcer:
    """An enforcer with upstream's defaults and the operator's file (if any) on top.

    ``[oslo_policy] enforce_new_defaults`` (true, as oslo.policy's default) decides whether
    the deprecated load-balancer_* role rules still count. oslo.policy rereads the file
    when it changes, so an edit applies without a restart.
    """
    check_file(settings)
    options = settings.oslo_policy
    conf = cfg.ConfigOpts()
    conf(args=[], project="lbaas", default_config_files=[], default_config_dirs=[])
    policy_opts.set_defaults(conf, enforce_new_defaults=options.enforce_new_defaults)
    enforcer = policy.Enforcer(conf, policy_file=str(options.policy_file or DEFAULT_POLICY_FILE))
    # oslo.policy would warn about every deprecated rule on every load; say it once here.
    enforcer.suppress_deprecation_warnings = True
    enforcer.register_defaults(BASE_RULES + RULE_DEFAULTS)
    enforcer.load_rules()
    if not options.enforce_new_defaults:
        LOG.warning("[oslo_policy] enforce_new_defaults = false: the deprecated load-balancer_* "
                    "roles still grant access; move users to Keystone's reader, member and "
                    "admin roles and turn it back on")
    return enforcer


def _credentials(enforcer: policy.Enforcer, identity: Identity) -> dict[str, object]:
    """What oslo.policy checks: the token's user, scope and roles, and ``is_admin``."""
    creds: dict[str, object] = {
        "user_id": identity.user_id, "project_id": identity.project_id,
        "domain_id": identity.domain_id, "system_scope": identity.system_scope,
        "roles": list(identity.roles)}
    # As upstream's context: context_is_admin holds for project-scoped tokens only.
    creds["is_admin"] = enforcer.enforce("context_is_admin", creds, creds)
    return creds


def _allows(enforcer: policy.Enforcer, rule: str, project_id: str | None,
            creds: dict[str, object]) -> bool:
    target = {} if project_id is None else {"project_id": project_id}
    return bool(enforcer.enforce(f"{PREFIX}:{rule}", target, creds))


def authorize(request: Request, enforcer: policy.Enforcer) -> RequestContext:
    """The caller's context if the route's rule allows this request, else 403.

    As upstream's controllers: the rule is checked against the project the request is
    about (a quota's project, a ``project_id`` filter, else the caller's own); a list
    covers every project when the ``get_all-global`` rule passes. The context checks the
    rule again against each object the handler loads (``RequestContext.authorize``).
    """
    route = request.scope.get("route")
    identity: Identity | None = request.scope.get(SCOPE_KEY)
    if identity is None:  # a route Keystone's middleware answers without a token
        return RequestContext(project_id=None, is_admin=False, all_projects=False,
                              anonymous=True)
    if route is not None and route.path in PUBLIC_PATHS:
        return RequestContext(project_id=identity.project_id, all_projects=False,
                              is_admin=bool(_credentials(enforcer, identity)["is_admin"]))
    action = ROUTE_RULES.get(route_key(request.method, route.path)) if route else None
    if action is None:
        LOG.error("no policy rule for %s %s; refusing", request.method, request.url.path)
        raise faults.PolicyForbidden()
    creds = _credentials(enforcer, identity)
    target_project = (request.path_params.get("project_id")
                      or request.query_params.get("project_id") or identity.project_id)
    wide_action = f"{action}-global" if f"{action}-global" in ACTION_DEFAULTS else action
    all_projects = _allows(enforcer, wide_action, None, creds)
    if not (all_projects or _allows(enforcer, action, target_project, creds)):
        raise faults.PolicyForbidden()
    return RequestContext(project_id=identity.project_id, is_admin=bool(creds["is_admin"]),
                          roles=identity.roles, all_projects=all_projects,
                          check=functools.partial(_allows, enforcer, action, creds=creds),
                          token=request.headers.get("X-Auth-Token"))
