"""The haproxy configuration of one load balancer, as a pure function of its DB objects.

``render(load_balancer, options)`` returns the text of ``haproxy.cfg``. It follows upstream
Octavia's combined-listeners layout, whose names the health manager relies on: one
``frontend <listener_id>`` per TCP-family listener, one ``backend <pool_id>:<listener_id>``
per pool a listener uses, one ``server <member_id>`` per member. ``build(...)`` is the
view-model step on its own: it decides what is served and with which values (defaults,
limits, filtered objects); the Jinja2 template ``templates/haproxy.cfg.j2`` only lays out
the lines.

What is left out, as upstream does:

* UDP and SCTP listeners (nftables in the amphora serves them: ``udp_config``);
* objects in ``PENDING_DELETE`` (the change being applied removes them);
* objects in ``ERROR``: a change that could not be applied leaves its objects ERROR, and
  from then on they are not served (a policy with a rule in ERROR does not apply), so one
  bad object cannot fail every later change of its load balancer. Updating such an object
  (``PENDING_UPDATE``) puts it back; a load balancer in ERROR is still served whole;
* a disabled load balancer or listener (no frontend, so its traffic stops), a disabled
  pool (no backend; its listener has no ``default_backend``), a disabled health monitor
  (no checks). A disabled member stays, marked ``disabled``.

What the amphora must provide: PING monitors run ``ping-wrapper.sh`` (shipped here) as
haproxy's user, which needs ``iputils-ping`` and unprivileged ICMP sockets in the amphora's
namespace (``net.ipv4.ping_group_range``); and when haproxy cannot raise its file descriptor
limit, ``RenderOptions.fd_limit`` keeps the global ``maxconn`` within it (haproxy refuses to
start otherwise: with the default 50000 per listener it needs 125000 descriptors).

L7 policies of an HTTP listener become frontend rules: one ``acl <rule_id>`` per enabled
rule, then per enabled policy with enabled rules ``http-request deny``, ``redirect
location``/``prefix`` or ``use_backend`` ``if`` its rules (ANDed, ``!`` for ``invert``).
They are laid out in the order haproxy evaluates them whatever their place (denies,
redirects, then ``use_backend``), each group by position, so the first matching policy in
upstream's order wins. A pool that only an L7 policy uses gets its backend too. FILE_TYPE
compares the extension of the path's last segment ("" when it has none), where upstream's
``path_end -m <match>`` would compare the whole path.

A PROMETHEUS listener is a frontend whose ``/metrics`` is haproxy's Prometheus exporter
(this load balancer's counters); any other path is denied.

A TERMINATED_HTTPS listener's ``bind`` terminates TLS with a ``crt-list`` (its default
certificate first, then its SNI certificates: haproxy picks one by the names each
certificate holds), its TLS versions (``no-<version>`` for the others), ciphers and ALPN
protocols, and with client authentication OPTIONAL/MANDATORY the client CA (``verify
optional``/``required``) and CRL. A pool with ``tls_enabled`` connects to its members over
TLS (``ssl``), verifying them against its CA (and CRL) if it has one, presenting its
client certificate if it has one; its health checks go over TLS too, verified the same.
Certificates and CAs are files: ``render_files`` returns them with the text, each named
after a hash of its content (in ``RenderOptions.certs_dir``), so a new certificate is a
new name, and so a changed configuration that haproxy reloads.

Values are checked with ``lbaas.validate``, the checks the API applies: one that fails
raises ``UnsupportedConfiguration`` naming the object, never a broken line.
"""
from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TypeVar

import jinja2

from lbaas import constants as c
from lbaas import validate
from lbaas.amphora import jinja
from lbaas.cert_manager.base import TlsCertificate
from lbaas.config import HaproxyAmphora
from lbaas.db import models

MAX_MAXCONN = 1_000_000
"""Upstream's cap on the global ``maxconn`` (``HAPROXY_MAX_MAXCONN``)."""
FDS_PER_CONNECTION = 2.5
"""File descriptors haproxy reserves per connection: both sides, plus a splice pipe (two
descriptors) for every fourth connection."""
RESERVED_FDS = 1000
"""Descriptors kept aside for listeners, health checks, peers and the stats socket."""
PEER_PORT = 1025
"""Port of the stick-table peers of an ACTIVE_STANDBY pair (``HAPROXY_BASE_PEER_PORT``)."""

FRONTEND_MODES = {c.HTTP: "http", c.TCP: "tcp", c.HTTPS: "tcp", c.PROMETHEUS: "http",
                  c.TERMINATED_HTTPS: "http"}
"""haproxy mode per listener protocol; HTTPS is TLS passthrough, so tcp."""
NOT_SERVED_BY_HAPROXY = (c.UDP, c.SCTP)
BACKEND_MODES = {c.HTTP: "http", c.HTTPS: "tcp", c.TCP: "tcp"}
"""haproxy mode per pool protocol; PROXY and PROXYV2 pools take their listener's mode."""
PROXY_PROTOCOL_OPTIONS = {c.PROXY: "send-proxy", c.PROXYV2: "send-proxy-v2"}
BALANCE = {"ROUND_ROBIN": "roundrobin", "LEAST_CONNECTIONS": "leastconn", "SOURCE_IP": "source"}
FORWARDED_PROTO = {c.HTTP: "http", c.TERMINATED_HTTPS: "https"}
SSL_CHECKS = ("HTTPS", "TLS-HELLO")
NO_TLS_VERSION = {"SSLv3": "no-sslv3", "TLSv1": "no-tlsv10", "TLSv1.1": "no-tlsv11",
                  "TLSv1.2": "no-tlsv12", "TLSv1.3": "no-tlsv13"}
"""haproxy's bind/server option turning each TLS version off."""
CLIENT_VERIFY = {"OPTIONAL": "optional", "MANDATORY": "required"}
SSL_HEADERS = {
    "X-SSL-Client-Verify": "%[ssl_c_verify]",
    "X-SSL-Client-Has-Cert": "%[ssl_c_used]",
    "X-SSL-Client-DN": "%{+Q}[ssl_c_s_dn]",
    "X-SSL-Client-CN": "%{+Q}[ssl_c_s_dn(cn)]",
    "X-SSL-Issuer": "%{+Q}[ssl_c_i_dn]",
    "X-SSL-Client-SHA1": "%{+Q}[ssl_c_sha1,hex]",
    "X-SSL-Client-Not-Before": "%{+Q}[ssl_c_notbefore]",
    "X-SSL-Client-Not-After": "%{+Q}[ssl_c_notafter]",
}
"""The client-certificate headers a TERMINATED_HTTPS listener can insert (log-format)."""

_ESCAPED = re.compile(r"""([\\ #'"])""")
"""Characters haproxy's configuration parser reads as syntax unless a backslash precedes them."""
UNSERVED = (c.PENDING_DELETE, c.ERROR)
"""Objects in these states are not rendered (see the module's docstring)."""

ACL_MATCH = {
    c.L7RULE_COMPARE_TYPE_REGEX: "-m reg",
    c.L7RULE_COMPARE_TYPE_STARTS_WITH: "-m beg",
    c.L7RULE_COMPARE_TYPE_ENDS_WITH: "-m end",
    c.L7RULE_COMPARE_TYPE_CONTAINS: "-m sub",
    c.L7RULE_COMPARE_TYPE_EQUAL_TO: "-m str",
}
FILE_EXTENSION = "path,field(-1,/),regsub('^[^.]*$','.'),field(-1,.)"
"""The extension of the request path's last segment, "" when it has none."""
ACL_FETCHES = {
    c.L7RULE_TYPE_HOST_NAME: "req.hdr(host) -i",
    c.L7RULE_TYPE_PATH: "path",
    c.L7RULE_TYPE_FILE_TYPE: FILE_EXTENSION,
    c.L7RULE_TYPE_HEADER: "req.hdr({key})",
    c.L7RULE_TYPE_COOKIE: "req.cook({key})",
    c.L7RULE_TYPE_SSL_DN_FIELD: "ssl_c_s_dn({key})",
}
"""haproxy sample fetch per rule type compared with a match method (``{key}``: the rule's)."""
POLICY_ORDER = {
    c.L7POLICY_ACTION_REJECT: 0,
    c.L7POLICY_ACTION_REDIRECT_TO_URL: 1,
    c.L7POLICY_ACTION_REDIRECT_PREFIX: 1,
    c.L7POLICY_ACTION_REDIRECT_TO_POOL: 2,
}
"""haproxy runs http-request rules, then redirects, then use_backend, wherever they stand."""


T = TypeVar("T")


class UnsupportedConfiguration(ValueError):
    """The load balancer asks for something this renderer cannot express (yet)."""


@dataclass(frozen=True)
class RenderOptions:
    """What the configuration depends on besides the load balancer's own data."""

    amphora_id: str
    stats_socket: str
    server_state_file: str
    pid_file: str
    ping_command: str
    """Executable haproxy runs for PING health monitors (``external-check command``)."""
    user: str = "nobody"
    group: str = "nogroup"
    timeout_client_data: int = 50000
    timeout_member_connect: int = 5000
    timeout_member_data: int = 50000
    timeout_tcp_inspect: int = 0
    default_connection_limit: int = 50000
    stick_size: str = "10k"
    fd_limit: int | None = None
    """Hard RLIMIT_NOFILE haproxy runs under, if it cannot raise it. haproxy refuses to
    start when its global maxconn needs more descriptors, so maxconn is capped to fit."""
    certs_dir: str = "certs"
    """Where the amphora keeps this load balancer's certificate files (``render_files``)."""
    log_socket: str | None = None
    """Where haproxy sends its logs (the amphora agent's socket); None: it logs nothing."""
    user_log_format: str | None = None
    """The flow log line of every listener (``[haproxy_amphora] user_log_format``, with
    ``{{ project_id }}`` and ``{{ lb_id }}``); None: no flow logs (``connection_logging``
    false), only haproxy's own notices."""
    user_log_facility: int = 0
    administrative_log_facility: int = 1

    @classmethod
    def from_settings(cls, settings: HaproxyAmphora, amphora_id: str, *, stats_socket: Path | str,
                      server_state_file: Path, pid_file: Path, certs_dir: Path | None = None,
                      fd_limit: int | None = None,
                      log_socket: str | None = None,
                      ping_command: str | None = None) -> RenderOptions:
        """Options with ``[haproxy_amphora]``'s timeouts and default connection limit.

        The paths are where the amphora agent keeps this load balancer's files; the PING
        command is the wrapper script the agent names, else the one of this package. Change the rest (user,
        group, stick size) with ``dataclasses.replace``.
        """
        return cls(
            amphora_id=amphora_id,
            stats_socket=str(stats_socket),
            server_state_file=str(server_state_file),
            pid_file=str(pid_file),
            ping_command=ping_command or str(resources.files(__package__) / "ping-wrapper.sh"),
            timeout_client_data=settings.timeout_client_data,
            timeout_member_connect=settings.timeout_member_connect,
            timeout_member_data=settings.timeout_member_data,
            timeout_tcp_inspect=settings.timeout_tcp_inspect,
            default_connection_limit=settings.default_connection_limit,
            fd_limit=fd_limit,
            certs_dir=str(certs_dir or pid_file.parent / "certs"),
            log_socket=log_socket,
            user_log_format=settings.user_log_format if settings.connection_logging else None,
        )

    @property
    def peer_name(self) -> str:
        return peer_name(self.amphora_id)


def peer_name(amphora_id: str) -> str:
    """An amphora's haproxy peer name: a short hash of its id, in characters haproxy allows."""
    digest = hashlib.sha1(amphora_id.encode(), usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class TlsMaterial:
    """What the certificate manager returned for a load balancer's references."""

    certificates: Mapping[str, TlsCertificate] = field(default_factory=dict)
    """Certificate references (listeners' default and SNI, pools' client certificate)."""
    secrets: Mapping[str, bytes] = field(default_factory=dict)
    """CA bundle and revocation list references, as PEM."""


class _Files:
    """The certificate files a configuration names, each under a hash of its content."""

    def __init__(self, directory: str, material: TlsMaterial) -> None:
        self.directory = directory
        self.material = material
        self.contents: dict[str, bytes] = {}

    def add(self, content: bytes, suffix: str) -> str:
        name = hashlib.sha256(content).hexdigest()[:32] + suffix
        self.contents[name] = content
        return f"{self.directory}/{name}"

    def certificate(self, ref: str, what: str) -> str:
        tls = self.material.certificates.get(ref)
        if tls is None:
            raise UnsupportedConfiguration(f"{what} {ref} is not available")
        return self.add(tls.bundle(), ".pem")

    def secret(self, ref: str, what: str) -> str:
        payload = self.material.secrets.get(ref)
        if payload is None:
            raise UnsupportedConfiguration(f"{what} {ref} is not available")
        return self.add(payload, ".pem")


# --- view model -------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpCheck:
    method: str
    path: str
    version: str | None
    host: str | None
    expected_statuses: str
    """haproxy ``http-check expect status`` list, e.g. ``200,202-204``."""


@dataclass(frozen=True)
class HealthCheck:
    timeout: int
    """Seconds."""
    http: HttpCheck | None = None
    external_command: str | None = None


@dataclass(frozen=True)
class ServerCheck:
    delay: int
    fall: int
    rise: int
    ssl: tuple[str, ...]
    """``check-ssl`` and its options when checks go over TLS."""
    address: str | None
    port: int | None


@dataclass(frozen=True)
class Server:
    name: str
    address: str
    port: int
    weight: int
    check: ServerCheck | None
    cookie: str | None
    proxy_protocol: str | None
    backup: bool
    disabled: bool
    tls: tuple[str, ...] = ()
    """``ssl`` and its options when the pool re-encrypts towards members."""


@dataclass(frozen=True)
class Persistence:
    type: str
    cookie_name: str | None


@dataclass(frozen=True)
class Backend:
    name: str
    mode: str
    balance: str
    persistence: Persistence | None
    health_check: HealthCheck | None
    forward_for: bool
    forwarded_port: bool
    forwarded_proto: str | None
    fullconn: int
    timeout_connect: int
    timeout_server: int
    servers: tuple[Server, ...]
    ssl_headers: tuple[tuple[str, str], ...] = ()
    """Client-certificate headers (name, log-format value) of a TERMINATED_HTTPS listener."""


@dataclass(frozen=True)
class Acl:
    name: str
    criterion: str
    """Sample fetch, match method and escaped pattern, e.g. ``path -m beg /images``."""
    invert: bool


@dataclass(frozen=True)
class Policy:
    """An L7 policy as one haproxy rule guarded by the ACLs of its enabled rules."""

    acls: tuple[Acl, ...]
    action: str
    """``deny``, ``use_backend`` or the redirect kind: ``location`` or ``prefix``."""
    target: str | None
    """The backend name, redirect URL or prefix (escaped)."""
    redirect_code: int | None = None

    @property
    def condition(self) -> str:
        return " ".join(f"{'!' if acl.invert else ''}{acl.name}" for acl in self.acls)


@dataclass(frozen=True)
class Frontend:
    name: str
    maxconn: int
    binds: tuple[str, ...]
    mode: str
    allowed_cidrs: tuple[str, ...]
    policies: tuple[Policy, ...]
    default_backend: str | None
    timeout_client: int
    timeout_tcp_inspect: int
    backends: tuple[Backend, ...]
    prometheus: bool = False
    """Serve haproxy's Prometheus exporter on ``/metrics`` (a PROMETHEUS listener)."""
    tls: tuple[str, ...] = ()
    """The ``bind`` options terminating TLS (``ssl crt-list ...``)."""
    hsts: str | None = None
    """The Strict-Transport-Security header's value."""


@dataclass(frozen=True)
class Peer:
    name: str
    address: str
    port: int = PEER_PORT


@dataclass(frozen=True)
class HaproxyConfig:
    load_balancer_id: str
    options: RenderOptions
    maxconn: int
    external_check: bool
    peers_section: str | None
    peers: tuple[Peer, ...]
    frontends: tuple[Frontend, ...]
    # The flow log line of HTTP and of TCP frontends, quoted for haproxy; None: none.
    log_formats: dict[str, str] | None = None
    files: Mapping[str, bytes] = field(default_factory=dict)
    """Certificate files (name in ``options.certs_dir`` -> content) the text names."""


def render(load_balancer: models.LoadBalancer, options: RenderOptions,
           material: TlsMaterial | None = None) -> str:
    """The text of haproxy.cfg serving ``load_balancer`` on amphora ``options.amphora_id``."""
    return render_files(load_balancer, options, material)[0]


def render_files(load_balancer: models.LoadBalancer, options: RenderOptions,
                 material: TlsMaterial | None = None) -> tuple[str, Mapping[str, bytes]]:
    """haproxy.cfg and the certificate files it names (name -> content)."""
    config = build(load_balancer, options, material)
    return _template().render(config=config), config.files


def build(load_balancer: models.LoadBalancer, options: RenderOptions,
          material: TlsMaterial | None = None) -> HaproxyConfig:
    """The view model of ``render``: what is served, with every default resolved."""
    peers = _peers(load_balancer)
    peers_section = f"{load_balancer.id.replace('-', '')}_peers" if peers else None
    files = _Files(options.certs_dir, material or TlsMaterial())
    frontends = tuple(_frontend(load_balancer, listener, options, files)
                      for listener in _served_listeners(load_balancer))
    return HaproxyConfig(
        load_balancer_id=load_balancer.id,
        options=options,
        maxconn=_global_maxconn(frontends, options),
        external_check=any(
            backend.health_check and backend.health_check.external_command
            for frontend in frontends for backend in frontend.backends),
        peers_section=peers_section,
        peers=peers,
        frontends=frontends,
        files=files.contents,
        log_formats=_log_formats(load_balancer, options),
    )


# Log-format fields haproxy refuses outside HTTP mode (the request line, its parts,
# cookies, HTTP timers): a TCP frontend logs "-" in their place, as upstream does.
_HTTP_ONLY_FIELDS = re.compile(
    r"%(\{[^}]*\})?(HPO|HM|HP|HQ|HU|HV|CC|CS|TR|Tq|Ti|Ta|r)(?![A-Za-z])")


def _log_formats(load_balancer: models.LoadBalancer,
                 options: RenderOptions) -> dict[str, str] | None:
    """Upstream's flow log line with this load balancer's project and id, for HTTP and
    for TCP frontends, as quoted haproxy strings."""
    if options.log_socket is None or options.user_log_format is None:
        return None
    line = (options.user_log_format.replace("{{ project_id }}", load_balancer.project_id or "")
            .replace("{{ lb_id }}", load_balancer.id))
    return {mode: '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
            for mode, text in (("http", line), ("tcp", _HTTP_ONLY_FIELDS.sub("-", line)))}


def _global_maxconn(frontends: tuple[Frontend, ...], options: RenderOptions) -> int:
    """The sum of the listeners' limits, capped as upstream caps it and to the fd limit."""
    total = sum(frontend.maxconn for frontend in frontends) or options.default_connection_limit
    cap = MAX_MAXCONN
    if options.fd_limit is not None:
        cap = min(cap, max(1, int((options.fd_limit - RESERVED_FDS) / FDS_PER_CONNECTION)))
    return min(total, cap)


def _served(obj: models.StatusMixin) -> bool:
    """Neither being deleted by the change this configuration applies nor in ERROR."""
    return obj.provisioning_status not in UNSERVED


def _served_listeners(load_balancer: models.LoadBalancer) -> list[models.Listener]:
    if not load_balancer.enabled or load_balancer.provisioning_status == c.PENDING_DELETE:
        return []
    served = [listener for listener in load_balancer.listeners
              if listener.enabled and _served(listener)
              and listener.protocol not in NOT_SERVED_BY_HAPROXY]
    for listener in served:
        if listener.protocol not in FRONTEND_MODES:
            raise UnsupportedConfiguration(
                f"listener {listener.id}: protocol {listener.protocol} is not rendered yet")
    return served


def _peers(load_balancer: models.LoadBalancer) -> tuple[Peer, ...]:
    """Stick-table peers: the allocated amphorae of an ACTIVE_STANDBY load balancer."""
    if load_balancer.topology != c.TOPOLOGY_ACTIVE_STANDBY:
        return ()
    return tuple(
        Peer(peer_name(amphora.id), amphora.vrrp_ip)
        for amphora in sorted(load_balancer.amphorae, key=lambda amphora: amphora.id)
        if amphora.status == c.ALLOCATED and amphora.vrrp_ip)


def _listener_pools(listener: models.Listener) -> list[models.Pool]:
    """The pools a listener sends traffic to: its default pool, then its L7 redirect pools."""
    wanted = [listener.default_pool, *(
        policy.redirect_pool for policy in listener.l7policies
        if _served(policy) and policy.action == c.L7POLICY_ACTION_REDIRECT_TO_POOL)]
    pools: list[models.Pool] = []
    for pool in wanted:
        if pool is not None and pool.enabled and _served(pool) and pool not in pools:
            pools.append(pool)
    return pools


def _frontend(load_balancer: models.LoadBalancer, listener: models.Listener,
              options: RenderOptions, files: _Files) -> Frontend:
    mode = FRONTEND_MODES[listener.protocol]
    limit = _connection_limit(listener, options)
    pools = _listener_pools(listener)
    default_pool = listener.default_pool
    return Frontend(
        name=listener.id,
        maxconn=limit,
        binds=tuple(f"{address}:{listener.protocol_port}" for address in _vips(load_balancer)),
        mode=mode,
        allowed_cidrs=tuple(listener.allowed_cidrs or ()),
        policies=_policies(listener, pools),
        default_backend=(_backend_name(default_pool, listener)
                         if default_pool is not None and default_pool in pools else None),
        timeout_client=listener.timeout_client_data or options.timeout_client_data,
        timeout_tcp_inspect=listener.timeout_tcp_inspect or options.timeout_tcp_inspect,
        backends=tuple(_backend(listener, pool, mode, limit, options, files) for pool in pools),
        prometheus=listener.protocol == c.PROMETHEUS,
        tls=_listener_tls(listener, files) if listener.protocol == c.TERMINATED_HTTPS else (),
        hsts=_hsts(listener),
    )


def _listener_tls(listener: models.Listener, files: _Files) -> tuple[str, ...]:
    """``bind`` options: the certificates (default first), client authentication, protocols."""
    where = f"listener {listener.id}"
    refs = list(dict.fromkeys(
        ref for ref in (listener.tls_certificate_id, *(listener.sni_container_refs or ())) if ref))
    if not refs:
        raise UnsupportedConfiguration(f"{where}: TERMINATED_HTTPS needs a certificate")
    certificates = [files.certificate(ref, f"{where}: certificate") for ref in refs]
    words = ["ssl", "crt-list", files.add("".join(f"{path}\n" for path in certificates).encode(),
                                          ".crtlist")]
    verify = CLIENT_VERIFY.get(listener.client_authentication or "NONE")
    if verify and listener.client_ca_tls_certificate_id:
        words += ["ca-file", files.secret(listener.client_ca_tls_certificate_id,
                                          f"{where}: client CA"), "verify", verify]
        if listener.client_crl_container_id:
            words += ["crl-file", files.secret(listener.client_crl_container_id,
                                               f"{where}: client CRL")]
    return (*words, *_tls_protocols(listener.tls_ciphers, listener.tls_versions,
                                    listener.alpn_protocols, where))


def _tls_protocols(ciphers: str | None, versions: list[str] | None,
                   alpn_protocols: list[str] | None, where: str) -> tuple[str, ...]:
    """Ciphers (TLS 1.2 and older), the TLS versions turned off, and the ALPN protocols."""
    words: list[str] = []
    if ciphers:
        words += ["ciphers", checked(validate.tls_ciphers, ciphers, f"{where}: tls_ciphers")]
    if versions:
        unknown = [version for version in versions if version not in NO_TLS_VERSION]
        if unknown:
            raise UnsupportedConfiguration(f"{where}: TLS versions {unknown} are unknown")
        checked(validate.tls_versions, versions, f"{where}: tls_versions")
        words += [option for version, option in NO_TLS_VERSION.items() if version not in versions]
    if alpn_protocols:
        unknown = [name for name in alpn_protocols if name not in c.ALPN_PROTOCOLS]
        if unknown:
            raise UnsupportedConfiguration(f"{where}: ALPN protocols {unknown} are unknown")
        words += ["alpn", ",".join(alpn_protocols)]
    return tuple(words)


def _hsts(listener: models.Listener) -> str | None:
    if listener.protocol != c.TERMINATED_HTTPS or listener.hsts_max_age is None:
        return None
    value = f"max-age={int(listener.hsts_max_age)};"
    if listener.hsts_include_subdomains:
        value += " includeSubDomains;"
    if listener.hsts_preload:
        value += " preload;"
    return value


def _pool_tls(pool: models.Pool, files: _Files) -> tuple[str, ...]:
    """``server`` options re-encrypting towards the members, verified with the pool's CA."""
    if not pool.tls_enabled:
        return ()
    where = f"pool {pool.id}"
    words = ["ssl"]
    if pool.tls_certificate_id:
        words += ["crt", files.certificate(pool.tls_certificate_id, f"{where}: certificate")]
    if pool.ca_tls_certificate_id:
        words += ["ca-file", files.secret(pool.ca_tls_certificate_id, f"{where}: CA"),
                  "verify", "required"]
        if pool.crl_container_id:
            words += ["crl-file", files.secret(pool.crl_container_id, f"{where}: CRL")]
    else:
        words += ["verify", "none"]
    return (*words, *_tls_protocols(pool.tls_ciphers, pool.tls_versions, pool.alpn_protocols,
                                    where))


def _policies(listener: models.Listener, pools: list[models.Pool]) -> tuple[Policy, ...]:
    """The listener's enabled L7 policies that can apply, in haproxy's evaluation order."""
    served = [policy for policy in listener.l7policies if policy.enabled and _served(policy)]
    if served and listener.protocol not in c.L7POLICY_LISTENER_PROTOCOLS:
        raise UnsupportedConfiguration(
            f"listener {listener.id}: L7 policies need an HTTP listener, not {listener.protocol}")
    for policy in served:
        if policy.action not in POLICY_ORDER:
            raise UnsupportedConfiguration(f"L7 policy {policy.id}: action {policy.action} is unknown")
    ordered = sorted(served, key=lambda policy: (POLICY_ORDER[policy.action], policy.position))
    policies = (_policy(listener, policy, pools) for policy in ordered)
    return tuple(policy for policy in policies if policy is not None)


def _policy(listener: models.Listener, policy: models.L7Policy,
            pools: list[models.Pool]) -> Policy | None:
    """None when the policy cannot apply: no enabled rule, a rule in ERROR (the policy would
    match more than asked), or its pool is not served."""
    rules = [rule for rule in policy.rules if rule.provisioning_status != c.PENDING_DELETE]
    if any(rule.provisioning_status == c.ERROR for rule in rules):
        return None
    acls = tuple(_acl(rule) for rule in rules if rule.enabled)
    if not acls:
        return None
    where = f"L7 policy {policy.id}"
    if policy.action == c.L7POLICY_ACTION_REJECT:
        return Policy(acls, "deny", None)
    if policy.action == c.L7POLICY_ACTION_REDIRECT_TO_POOL:
        pool = policy.redirect_pool
        if pool is None or pool not in pools:
            return None
        return Policy(acls, "use_backend", _backend_name(pool, listener))
    code = policy.redirect_http_code
    if code is not None and code not in c.L7POLICY_REDIRECT_HTTP_CODES:
        raise UnsupportedConfiguration(f"{where}: redirect_http_code {code} is not a redirect")
    if policy.action == c.L7POLICY_ACTION_REDIRECT_TO_URL:
        return Policy(acls, "location", _redirect(policy.redirect_url, f"{where}: redirect_url"), code)
    return Policy(acls, "prefix", _redirect(policy.redirect_prefix, f"{where}: redirect_prefix"),
                  code)


def _acl(rule: models.L7Rule) -> Acl:
    where = f"L7 rule {rule.id}"
    problem = validate.l7rule_problem(rule.type, rule.compare_type, rule.key, rule.value)
    if problem:
        raise UnsupportedConfiguration(f"{where}: {problem}")
    if rule.type == c.L7RULE_TYPE_SSL_CONN_HAS_CERT:
        return Acl(rule.id, "ssl_c_used", rule.invert)
    if rule.type == c.L7RULE_TYPE_SSL_VERIFY_RESULT:
        return Acl(rule.id, f"ssl_c_verify eq {int(rule.value)}", rule.invert)
    fetch = ACL_FETCHES[rule.type]
    if "{key}" in fetch:
        fetch = fetch.format(key=_word(rule.key, f"{where}: key"))
    criterion = f"{fetch} {ACL_MATCH[rule.compare_type]} {_pattern(rule, where)}"
    return Acl(rule.id, criterion, rule.invert)


def _pattern(rule: models.L7Rule, where: str) -> str:
    """The value to compare with, as one word. A quoted header value (upstream's
    ``"..."`` form, which may hold spaces) compares its text without the quotes, as
    haproxy reads upstream's unescaped line."""
    value = rule.value
    if (rule.compare_type != c.L7RULE_COMPARE_TYPE_REGEX
            and validate.QUOTED_HEADER_VALUE.fullmatch(value)):
        value = value[1:-1]
        if not value:
            return '""'
    return _word(value, f"{where}: value")


def _vips(load_balancer: models.LoadBalancer) -> list[str]:
    if not load_balancer.vip_address:
        raise UnsupportedConfiguration(f"load balancer {load_balancer.id} has no VIP address")
    extra = [vip.ip_address for vip in load_balancer.additional_vips if vip.ip_address]
    return [load_balancer.vip_address, *extra]


def _connection_limit(listener: models.Listener, options: RenderOptions) -> int:
    """A listener's ``connection_limit``; -1 (or unset) means the configured default."""
    limit = listener.connection_limit
    return limit if limit is not None and limit > 0 else options.default_connection_limit


def _backend_name(pool: models.Pool, listener: models.Listener) -> str:
    return f"{pool.id}:{listener.id}"


def _backend(listener: models.Listener, pool: models.Pool, listener_mode: str, limit: int,
             options: RenderOptions, files: _Files) -> Backend:
    if pool.lb_algorithm not in BALANCE:
        raise UnsupportedConfiguration(
            f"pool {pool.id}: lb_algorithm {pool.lb_algorithm} is not supported by haproxy")
    mode = BACKEND_MODES.get(pool.protocol, listener_mode)
    headers = _inserted_headers(listener) if mode == "http" else set()
    monitor = pool.health_monitor
    health_monitor = (monitor if monitor is not None and monitor.enabled and _served(monitor)
                      else None)
    persistence = _persistence(pool)
    tls = _pool_tls(pool, files)
    return Backend(
        name=_backend_name(pool, listener),
        mode=mode,
        balance=BALANCE[pool.lb_algorithm],
        persistence=persistence,
        health_check=_health_check(health_monitor, options) if health_monitor else None,
        forward_for="X-Forwarded-For" in headers,
        forwarded_port="X-Forwarded-Port" in headers,
        forwarded_proto=(FORWARDED_PROTO.get(listener.protocol)
                         if "X-Forwarded-Proto" in headers else None),
        fullconn=limit,
        timeout_connect=listener.timeout_member_connect or options.timeout_member_connect,
        timeout_server=listener.timeout_member_data or options.timeout_member_data,
        servers=tuple(
            _server(member, pool, health_monitor, persistence, tls)
            for member in pool.members if _served(member)),
        ssl_headers=tuple((name, SSL_HEADERS[name]) for name in SSL_HEADERS if name in headers
                          and listener.protocol == c.TERMINATED_HTTPS),
    )


def _inserted_headers(listener: models.Listener) -> set[str]:
    """The ``insert_headers`` a listener turns on (values are the strings "true"/"false")."""
    return {name for name, value in (listener.insert_headers or {}).items()
            if str(value).lower() == "true"}


def _persistence(pool: models.Pool) -> Persistence | None:
    settings = pool.session_persistence
    if not settings:
        return None
    kind = settings.get("type")
    if kind not in c.SESSION_PERSISTENCE_TYPES:
        raise UnsupportedConfiguration(f"pool {pool.id}: session persistence {kind} is unknown")
    cookie_name = None
    if kind == "APP_COOKIE":
        what = f"pool {pool.id}: session persistence cookie_name"
        cookie_name = _word(checked(validate.cookie_name, settings.get("cookie_name"), what),
                            what)
    return Persistence(type=kind, cookie_name=cookie_name)


def _health_check(monitor: models.HealthMonitor, options: RenderOptions) -> HealthCheck:
    where = f"health monitor {monitor.id}"
    if monitor.type not in c.HEALTH_MONITORS_FOR_STREAM:
        raise UnsupportedConfiguration(f"{where}: type {monitor.type} cannot check a haproxy pool")
    checked(lambda value: validate.timer_seconds(value, "delay", validate.MIN_DELAY_SECONDS),
             monitor.delay, f"{where}: delay")
    checked(lambda value: validate.timer_seconds(value, "timeout"), monitor.timeout,
             f"{where}: timeout")
    if monitor.type in ("HTTP", "HTTPS"):
        return HealthCheck(timeout=monitor.timeout, http=_http_check(monitor))
    if monitor.type == "PING":
        return HealthCheck(timeout=monitor.timeout, external_command=options.ping_command)
    return HealthCheck(timeout=monitor.timeout)


def _http_check(monitor: models.HealthMonitor) -> HttpCheck:
    """The HTTP request of an HTTP(S) monitor, with upstream's defaults for unset fields."""
    where = f"health monitor {monitor.id}"
    codes = checked(validate.expected_codes, monitor.expected_codes or "200",
                     f"{where}: expected_codes")
    return HttpCheck(
        method=monitor.http_method or "GET",
        path=checked(validate.url_path, monitor.url_path or "/", f"{where}: url_path"),
        version=f"{monitor.http_version:.1f}" if monitor.http_version else None,
        host=(checked(validate.domain_name, monitor.domain_name, f"{where}: domain_name")
              if monitor.domain_name else None),
        expected_statuses=codes.replace(" ", ""),
    )


def _check_ssl(monitor: models.HealthMonitor, tls: tuple[str, ...]) -> tuple[str, ...]:
    """Checks of a TLS pool go over TLS, verified as its traffic (HTTP checks ask for
    HTTP/1.1 whatever ALPN the pool offers); HTTPS and TLS-HELLO checks of other pools
    complete a handshake without verifying."""
    if tls:
        return ("check-ssl", "check-alpn", "http/1.1") if monitor.type in ("HTTP", "HTTPS") else ("check-ssl",)
    return ("check-ssl", "verify", "none") if monitor.type in SSL_CHECKS else ()


def _server(member: models.Member, pool: models.Pool, monitor: models.HealthMonitor | None,
            persistence: Persistence | None, tls: tuple[str, ...]) -> Server:
    check = None
    if monitor is not None:
        check = ServerCheck(
            delay=monitor.delay, fall=monitor.fall_threshold, rise=monitor.rise_threshold,
            ssl=_check_ssl(monitor, tls), address=_bare_address(member.monitor_address),
            port=member.monitor_port)
    where = f"member {member.id}"
    if member.monitor_address:
        checked(validate.server_address, member.monitor_address, f"{where}: monitor_address")
    return Server(
        name=member.id,
        address=checked(validate.server_address, member.ip_address, f"{where}: address"),
        port=member.protocol_port,
        weight=member.weight,
        check=check,
        cookie=member.id if persistence and persistence.type == "HTTP_COOKIE" else None,
        proxy_protocol=PROXY_PROTOCOL_OPTIONS.get(pool.protocol),
        backup=bool(member.backup),
        disabled=not member.enabled,
        tls=tls,
    )


def _bare_address(address: str | None) -> str | None:
    """An address without a port: IPv6 in brackets (``addr 2001:db8::10`` would read
    ``:10`` as a port)."""
    return f"[{address}]" if address and ":" in address else address


def _word(value: str | None, what: str) -> str:
    """``value`` as one haproxy configuration word: backslashes before its syntax characters."""
    if not value or validate.CONTROL_CHARACTERS.search(value):
        raise UnsupportedConfiguration(f"{what} {value!r} cannot be written to haproxy.cfg")
    return _ESCAPED.sub(r"\\\1", value)


def _redirect(value: str | None, what: str) -> str:
    """A redirect target, written as given (a frontend's ``redirect`` takes it literally,
    unlike ``http-request redirect``'s log-format)."""
    return _word(checked(validate.redirect_url, value, what), what)


def checked(check: Callable[[T], T], value: T | None, what: str,
            refusal: str = "cannot be written to haproxy.cfg") -> T:
    """``value`` if ``check`` (one of ``lbaas.validate``'s) accepts it, else an error naming
    it (``udp_config`` shares it, with its own ``refusal``)."""
    if value is None:
        raise UnsupportedConfiguration(f"{what} is missing")
    try:
        return check(value)
    except validate.InvalidValue as exc:
        raise UnsupportedConfiguration(f"{what} {value!r} {refusal}: {exc}") from exc


def _template() -> jinja2.Template:
    return jinja.template("haproxy.cfg.j2")

