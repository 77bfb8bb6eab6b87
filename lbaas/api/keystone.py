"""Keystone token validation for the ASGI app, done by keystonemiddleware's ``auth_token``.

``auth_token`` is WSGI middleware. :class:`KeystoneAuth` runs it, in a worker thread
(it may call Keystone), around a tiny WSGI app that only records the identity headers
``auth_token`` sets. A request it lets through reaches our app with that identity in
``scope["lbaas.identity"]`` (the client's own ``X-Roles`` etc. are never trusted); a
request it refuses gets ``auth_token``'s own answer (401 with ``WWW-Authenticate``).
Tokens are cached by ``auth_token`` itself (in memory, or memcached if configured).
"""
from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from keystonemiddleware import auth_token
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lbaas.config import ConfigError, KeystoneAuthtoken

LOG = logging.getLogger(__name__)
UNAVAILABLE = json.dumps({"error": {"code": 503, "title": "Service Unavailable", "message":
                                    "The authentication service is not available."}}).encode()
# As upstream's SkippingAuthProtocol: version discovery needs no token.
NOAUTH_PATHS = frozenset({"/"})
# Answered without a token too, but a token given is checked: an admin's /healthcheck
# has details, and /metrics needs one from outside metrics_allowed_cidrs.
TOKEN_OPTIONAL_PATHS = frozenset({"/healthcheck", "/metrics"})
SCOPE_KEY = "lbaas.identity"


@dataclass(frozen=True)
class Identity:
    """What ``auth_token`` established about the caller."""

    user_id: str | None
    project_id: str | None
    roles: tuple[str, ...]
    # A domain-scoped token's domain; "all" for a system-scoped token.
    domain_id: str | None = None
    system_scope: str | None = None


def _identity(environ: dict[str, Any]) -> Identity:
    roles = environ.get("HTTP_X_ROLES") or ""
    return Identity(user_id=environ.get("HTTP_X_USER_ID"),
                    project_id=environ.get("HTTP_X_PROJECT_ID"),
                    roles=tuple(role.strip() for role in roles.split(",") if role.strip()),
                    domain_id=environ.get("HTTP_X_DOMAIN_ID"),
                    system_scope=environ.get("HTTP_OPENSTACK_SYSTEM_SCOPE"))


def _environ(scope: Scope) -> dict[str, Any]:
    """A WSGI environ with the request's line and headers (``auth_token`` reads no body)."""
    server = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"], "SCRIPT_NAME": "", "PATH_INFO": scope["path"],
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]), "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.url_scheme": scope.get("scheme", "http"), "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(), "wsgi.version": (1, 0), "wsgi.multithread": True,
        "wsgi.multiprocess": False, "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[name] = value
        else:
            key = f"HTTP_{name}"
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def _record_identity(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The WSGI app ``auth_token`` wraps: reached only by requests it accepted."""
    environ[SCOPE_KEY] = _identity(environ)
    start_response("204 No Content", [])
    return []


def check_options(options: KeystoneAuthtoken) -> None:
    """Refuse a ``[keystone_authtoken]`` section that cannot validate any token."""
    if not (options.www_authenticate_uri or options.auth_url):
        raise ConfigError("[api_settings] auth_strategy = keystone needs [keystone_authtoken] "
                          "www_authenticate_uri and auth_url (the Keystone to check tokens with)")
    if options.auth_type == "password" and not (options.auth_url and options.username
                                                 and options.password):
        raise ConfigError("[keystone_authtoken] auth_type = password needs auth_url, username "
                          "and password (the service user that validates tokens)")


class KeystoneAuth:
    """ASGI middleware: every HTTP request but version discovery (and the token-optional
    /healthcheck and /metrics) needs a valid token."""

    def __init__(self, app: ASGIApp, options: KeystoneAuthtoken) -> None:
        check_options(options)
        self.app = app
        # Given a dict, auth_token warns about every option of its auth plugin (which
        # it then reads all the same): silence that one misleading warning.
        config_log = logging.getLogger("keystonemiddleware._common.config")
        level = config_log.level
        config_log.setLevel(logging.ERROR)
        try:
            self.protocol = auth_token.AuthProtocol(_record_identity, options.middleware_options())
        finally:
            config_log.setLevel(level)

    def _validate(self, scope: Scope) -> tuple[Identity | None, str, list[tuple[str, str]], bytes]:
        """Run ``auth_token`` on the request: (identity or None, status, headers, body)."""
        environ = _environ(scope)
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            answer["status"], answer["headers"] = status, headers

        try:
            body = b"".join(self.protocol(environ, start_response))
        except Exception:  # e.g. no usable Keystone endpoint in the service user's catalog
            LOG.exception("keystonemiddleware could not validate a token")
            return None, "503 Service Unavailable", [("Content-Type", "application/json")], UNAVAILABLE
        return environ.get(SCOPE_KEY), answer["status"], answer["headers"], body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in NOAUTH_PATHS or (
                scope["path"] in TOKEN_OPTIONAL_PATHS
                and not any(name == b"x-auth-token" for name, _ in scope["headers"])):
            await self.app(scope, receive, send)
            return
        identity, status, headers, body = await to_thread.run_sync(self._validate, scope)
        if identity is not None:
            await self.app({**scope, SCOPE_KEY: identity}, receive, send)
            return
        start: Message = {
            "type": "http.response.start", "status": int(status.split()[0]),
            "headers": [(name.lower().encode("latin-1"), value.encode("latin-1"))
                        for name, value in headers if name.lower() != "content-length"]
            + [(b"content-length", str(len(body)).encode())]}
        await send(start)
        await send({"type": "http.response.body", "body": body})
