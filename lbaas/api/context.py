"""Who is calling: the request context every handler receives."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from lbaas.api import faults
from lbaas.config import Settings


@dataclass(frozen=True)
class RequestContext:
    project_id: str | None
    is_admin: bool
    roles: tuple[str, ...] = ()
    # Whether this request may reach objects of every project (admins; global observers
    # for reads): set from the policy (lbaas.api.policy), always true under noauth.
    all_projects: bool = True
    # The route's policy rule against an object's project (lbaas.api.policy); None under
    # noauth, where every caller is admin.
    check: Callable[[str | None], bool] | None = None
    # The caller's Keystone token (auth_strategy = keystone): Barbican checks with it that
    # the caller may read the secrets a listener or pool names (lbaas.api.certificates).
    token: str | None = None
    # No token was given (a route Keystone's middleware lets through without one).
    anonymous: bool = False

    def owns(self, project_id: str | None) -> bool:
        """Whether this caller may see an object of ``project_id``."""
        return self.all_projects or project_id == self.project_id

    def authorize(self, project_id: str | None) -> None:
        """403 unless the route's rule lets this caller act on an object of ``project_id``.

        As upstream's controllers, which load the object first (404 if it does not
        exist) and then check the caller against the object's project.
        """
        if self.check is not None and not self.check(project_id):
            raise faults.PolicyForbidden()

    def target_project(self, requested: str | None) -> str | None:
        """The project a new object goes to: ``requested`` if given, else the caller's.

        Upstream's policy check on create: another project than the caller's is 403
        unless the route's rule holds for that project too.
        """
        if requested is None or requested == self.project_id:
            return self.project_id
        if not self.all_projects:
            self.authorize(requested)
        return requested


def noauth_context(request: Request, settings: Settings) -> RequestContext:
    """Upstream's noauth: every caller is admin; the project comes from the headers."""
    project_id = (request.headers.get("X-Project-Id") or request.headers.get("X-Tenant-Id")
                  or settings.api_settings.default_project_id)
    return RequestContext(project_id=project_id, is_admin=True)
