"""A real Keystone for the tests: its users, tokens and the lbaas configuration that uses it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.helpers.service import (
    Service,
    free_port,
    write_config,
)

ROOT = Path(__file__).resolve().parents[2]
KEYSTONE_VENV = ROOT / ".venv-keystone"


SERVER_SCRIPT = ROOT / "tests" / "rbac" / "keystone_server.py"
ADMIN_PASSWORD = "admin-secret"


PASSWORD = "user-secret"
DOMAIN = {"id": "default"}


# Keystone's default roles (bootstrap makes admin imply member imply reader), upstream's
# deprecated Advanced RBAC roles, and "guest", a role no rule names.
DEFAULT_ROLES = ("reader", "member", "admin")
LB_ROLES = ("load-balancer_observer", "load-balancer_global_observer", "load-balancer_member",
            "load-balancer_quota_admin", "load-balancer_admin")


ROLES = (*DEFAULT_ROLES, *LB_ROLES, "guest")
PROJECTS = ("alpha", "beta")


@dataclass
class Keystone:
    url: str  # the identity endpoint, .../v3
    admin_token: str
    project_ids: dict[str, str] = field(default_factory=dict)
    _tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    _role_ids: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        response = httpx.request(method, self.url + path, headers={"X-Auth-Token": self.admin_token},
                                 timeout=30, **kwargs)  # type: ignore[arg-type]
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response

    def create(self, kind: str, **body: object) -> str:
        """Create a Keystone object (``/v3/<kind>s``); its id."""
        return self.request("POST", f"/{kind}s", json={kind: body}).json()[kind]["id"]

    def role_id(self, name: str) -> str:
        if name not in self._role_ids:
            found = self.request("GET", "/roles", params={"name": name}).json()["roles"]
            self._role_ids[name] = found[0]["id"] if found else self.create("role", name=name)
        return self._role_ids[name]

    def add_user(self, name: str, project: str, roles: tuple[str, ...]) -> None:
        project_id = self.project_ids[project]
        user_id = self.create("user", name=name, password=PASSWORD, domain_id="default",
                              default_project_id=project_id)
        for role in roles:
            self.request("PUT", f"/projects/{project_id}/users/{user_id}/roles/{self.role_id(role)}")

    def token(self, user: str, project: str | None, password: str = PASSWORD) -> str:
        """A token for ``user`` scoped to ``project``, or to the system if None (issued
        once per session)."""
        if (user, project) not in self._tokens:
            self._tokens[user, project] = issue_token(self.url, user, project, password)
        return self._tokens[user, project]


def issue_token(url: str, user: str, project: str | None, password: str) -> str:
    scope = {"project": {"name": project, "domain": DOMAIN}} if project else {"system": {"all": True}}
    response = httpx.post(f"{url}/auth/tokens", timeout=30, json={"auth": {
        "identity": {"methods": ["password"], "password": {
            "user": {"name": user, "domain": DOMAIN, "password": password}}},
        "scope": scope}})
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"]


def user_name(project: str, role: str) -> str:
    """``alpha-member`` for Keystone's member role in alpha, ``alpha-load-balancer_member``
    for upstream's deprecated role."""
    return f"{project}-{role}"


def write_keystone_config(workdir: Path) -> Path:
    config = workdir / "keystone.conf"
    config.write_text(
        "[database]\n"
        f"connection = sqlite:///{workdir / 'keystone.sqlite'}\n"
        "[token]\n"
        "provider = fernet\n"
        "[fernet_tokens]\n"
        f"key_repository = {workdir / 'fernet-keys'}\n"
        "[fernet_receipts]\n"
        f"key_repository = {workdir / 'fernet-keys'}\n"
        # bcrypt's cheapest cost: test passwords need no protection, the session's time does.
        "[identity]\n"
        "password_hash_rounds = 4\n")
    return config


@dataclass(frozen=True)
class KeystoneService(Service):
    keystone: Keystone | None = None


def keystone_sections(keystone: Keystone) -> str:
    base = keystone.url.removesuffix("/v3")
    return ("[keystone_authtoken]\n"
            f"www_authenticate_uri = {base}\n"
            f"auth_url = {base}\n"
            "auth_type = password\n"
            "username = lbaas\n"
            f"password = {PASSWORD}\n"
            "project_name = service\n"
            "user_domain_name = Default\n"
            "project_domain_name = Default\n"
            "service_token_roles_required = true\n")


def keystone_service(keystone: Keystone, workdir: Path, extra: str = "") -> KeystoneService:
    """The configuration of ``lbaas up`` with auth_strategy = keystone (``extra`` appended)."""
    port = free_port()
    config = write_config(workdir, port)
    config.write_text(config.read_text().replace("[api_settings]\n", "[api_settings]\nauth_strategy = keystone\n")
                      + keystone_sections(keystone) + extra)
    return KeystoneService(url=f"http://127.0.0.1:{port}", workdir=workdir, config=config,
                           keystone=keystone)


FORBIDDEN = {"faultcode": "Client", "faultstring": "Policy does not allow this request to be performed.",
             "debuginfo": None}


def client(service: KeystoneService, token: str) -> httpx.Client:
    return httpx.Client(base_url=service.url, headers={"X-Auth-Token": token}, timeout=30)
