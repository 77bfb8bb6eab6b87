"""Who is calling: the request context every handler receives."""
from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from lbaas.config import Settings


@dataclass(frozen=True)
class RequestContext:
    project_id: str | None
    is_admin: bool

    def owns(self, project_id: str | None) -> bool:
        """Whether this caller may see an object of ``project_id``."""
        return self.is_admin or project_id == self.project_id


def noauth_context(request: Request, settings: Settings) -> RequestContext:
    """Upstream's noauth: every caller is admin; the project comes from the headers."""
    project_id = (request.headers.get("X-Project-Id") or request.headers.get("X-Tenant-Id")
                  or settings.api_settings.default_project_id)
    return RequestContext(project_id=project_id, is_admin=True)
