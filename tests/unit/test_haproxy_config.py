"""haproxy.cfg rendering: one golden file per feature, each one a config haproxy accepts.

The expected files live in tests/unit/golden/haproxy/; after an intended change of the
template, rewrite them with ``LBAAS_UPDATE_GOLDEN=1 pytest tests/unit/test_haproxy_config.py``
and review the diff line by line.
"""
from __future__ import annotations

import contextlib
import dataclasses
import http.client
import http.server
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lbaas import config
from lbaas.amphora import haproxy_config
from lbaas.amphora.haproxy_config import RenderOptions, UnsupportedConfiguration, render
from lbaas.cert_manager.base import TlsCertificate
from lbaas.db import models
from tests.helpers.haproxy_models import (
    AMPHORA_DIR,
    AMPHORA_ID,
    OPTIONS,
    STATUS,
    free_port,
    listener,
    load_balancer,
    member,
    monitor,
    pool,
    uid,
)
from tests.tls_material import Authority

GOLDEN = Path(__file__).parent / "golden" / "haproxy"
PEER_AMPHORA_ID = "a0000000-0000-4000-8000-000000000002"


# --- in-memory model trees with fixed ids ---------------------------------------------------













def rule(number: int, kind: str = "PATH", compare_type: str = "STARTS_WITH", value: str = "/b",
         **fields: Any) -> models.L7Rule:
    values = {"provisioning_status": "ACTIVE", "enabled": True, "invert": False, "key": None}
    return models.L7Rule(id=uid(7, number), type=kind, compare_type=compare_type, value=value,
                         **{**values, **fields})


def policy(number: int, action: str, *rules: models.L7Rule, position: int | None = None,
           **fields: Any) -> models.L7Policy:
    """An L7 policy at ``position`` (default: its number)."""
    values = {"redirect_pool": None, "redirect_url": None, "redirect_prefix": None,
              "redirect_http_code": None}
    return models.L7Policy(id=uid(6, number), action=action, rules=list(rules),
                           position=position or number, **{**STATUS, **values, **fields})


def l7_lb(*policies: models.L7Policy) -> models.LoadBalancer:
    """An HTTP listener with a default pool and ``policies``."""
    return load_balancer(listener(default_pool=pool(), l7policies=list(policies)))




def http_lb(**pool_fields: Any) -> models.LoadBalancer:
    """An HTTP listener on port 80 whose default pool has two members."""
    return load_balancer(listener(default_pool=pool(**pool_fields)))


def tcp_lb(**pool_fields: Any) -> models.LoadBalancer:
    return load_balancer(listener("TCP", 5432, pool("TCP", **pool_fields)))


def active_standby_lb() -> models.LoadBalancer:
    lb = http_lb(session_persistence={"type": "SOURCE_IP"})
    lb.topology = "ACTIVE_STANDBY"
    lb.amphorae = [
        models.Amphora(id=AMPHORA_ID, status="ALLOCATED", vrrp_ip="192.0.2.21"),
        models.Amphora(id=PEER_AMPHORA_ID, status="ALLOCATED", vrrp_ip="192.0.2.22"),
        models.Amphora(id=uid(9), status="DELETED", vrrp_ip="192.0.2.23"),
    ]
    return lb


def listeners_in_every_state() -> models.LoadBalancer:
    return load_balancer(
        listener(default_pool=pool()),
        listener(port=81, number=2, enabled=False, default_pool=pool(number=2)),
        listener(port=82, number=3, provisioning_status="PENDING_DELETE"),
        listener("UDP", 53, number=4, default_pool=pool("UDP", number=4)),
        listener("TCP", 83, number=5, default_pool=pool(
            "TCP", number=5, enabled=False)))


def ipv6_lb() -> models.LoadBalancer:
    lb = load_balancer(
        listener(default_pool=pool(members=(member(1, "2001:db8:1::11"), member(2, "10.0.1.12")))),
        vip_address="2001:db8::10")
    lb.additional_vips = [models.AdditionalVip(subnet_id=uid(8), ip_address="192.0.2.10")]
    return lb


TLS_FIELDS = {"tls_ciphers": None, "tls_versions": None, "alpn_protocols": None,
              "client_authentication": "NONE", "client_ca_tls_certificate_id": None,
              "client_crl_container_id": None, "hsts_max_age": None,
              "hsts_include_subdomains": False, "hsts_preload": False, "sni_container_refs": []}


def terminated_https(**fields: Any) -> models.Listener:
    """A TERMINATED_HTTPS listener on 443 (default certificate ``default``) with a pool."""
    values = {**TLS_FIELDS, "tls_certificate_id": "default", **fields}
    return listener("TERMINATED_HTTPS", 443, pool(), **values)


def tls_pool(**fields: Any) -> models.Pool:
    values = {"tls_enabled": True, "tls_certificate_id": None, "ca_tls_certificate_id": None,
              "crl_container_id": None, "tls_ciphers": None, "tls_versions": None,
              "alpn_protocols": None}
    return pool(**{**values, **fields})


TLS_REFS = ("default", "sni-a", "sni-b", "client")
"""Certificate references of the TLS cases; "ca" and "crl" are secrets."""
PLACEHOLDER_MATERIAL = haproxy_config.TlsMaterial(
    certificates={ref: TlsCertificate(f"{ref} certificate\n".encode(), f"{ref} key\n".encode())
                  for ref in TLS_REFS},
    secrets={"ca": b"ca bundle\n", "crl": b"revocation list\n"})
"""Stand-ins with stable contents (so stable file names) for the golden files; haproxy -c
checks the same configurations rendered with real certificates (``real_material``)."""

CASES: dict[str, Callable[[], models.LoadBalancer]] = {
    "terminated_https_default_certificate": lambda: load_balancer(terminated_https()),
    "terminated_https_sni_client_auth_hsts_headers": lambda: load_balancer(terminated_https(
        sni_container_refs=["sni-a", "sni-b", "default"], client_authentication="MANDATORY",
        client_ca_tls_certificate_id="ca", client_crl_container_id="crl",
        tls_versions=["TLSv1.2", "TLSv1.3"], tls_ciphers="ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384",
        alpn_protocols=["h2", "http/1.1"], hsts_max_age=31536000, hsts_include_subdomains=True,
        hsts_preload=True, insert_headers={
            "X-Forwarded-Proto": "true", "X-SSL-Client-Verify": "true",
            "X-SSL-Client-Has-Cert": "true", "X-SSL-Client-DN": "true", "X-SSL-Client-CN": "true",
            "X-SSL-Issuer": "true", "X-SSL-Client-SHA1": "true",
            "X-SSL-Client-Not-Before": "true", "X-SSL-Client-Not-After": "false"})),
    "terminated_https_sni_only_optional_client_auth_l7": lambda: load_balancer(terminated_https(
        tls_certificate_id=None, sni_container_refs=["sni-a", "sni-b"],
        client_authentication="OPTIONAL", client_ca_tls_certificate_id="ca",
        l7policies=[policy(1, "REJECT", rule(1, "SSL_CONN_HAS_CERT", "EQUAL_TO", "true",
                                             invert=True))])),
    "pool_tls_verified_with_client_certificate": lambda: load_balancer(listener(
        default_pool=tls_pool(tls_certificate_id="client", ca_tls_certificate_id="ca",
                              crl_container_id="crl", tls_versions=["TLSv1.3"],
                              alpn_protocols=["h2", "http/1.1"],
                              health_monitor=monitor("HTTPS", url_path="/health")))),
    "pool_tls_unverified_tls_hello": lambda: load_balancer(listener(
        "TCP", 8443, tls_pool(protocol="TCP", health_monitor=monitor("TLS-HELLO"),
                              tls_ciphers="ECDHE-RSA-AES128-GCM-SHA256"))),

    "http_listener_round_robin": http_lb,
    "tcp_listener_least_connections": lambda: tcp_lb(lb_algorithm="LEAST_CONNECTIONS"),
    "https_passthrough_source_ip": lambda: load_balancer(
        listener("HTTPS", 443, pool("HTTPS", lb_algorithm="SOURCE_IP"))),
    "proxy_protocol_pools": lambda: load_balancer(
        listener("TCP", 25, pool("PROXY")),
        listener("HTTP", 80, pool("PROXYV2", number=2), number=2)),
    "http_pool_behind_tcp_listener": lambda: load_balancer(listener("TCP", 8080, pool("HTTP"))),
    "persistence_source_ip": lambda: http_lb(session_persistence={"type": "SOURCE_IP"}),
    "persistence_http_cookie": lambda: http_lb(session_persistence={"type": "HTTP_COOKIE"}),
    "persistence_app_cookie": lambda: http_lb(
        session_persistence={"type": "APP_COOKIE", "cookie_name": "JSESSIONID"}),
    "monitor_http": lambda: http_lb(health_monitor=monitor(
        "HTTP", http_method="HEAD", url_path="/healthz?full=1", expected_codes="200, 202",
        http_version=1.1, domain_name="app.example.com", delay=10, timeout=4,
        rise_threshold=3, fall_threshold=2)),
    "monitor_http_defaults": lambda: http_lb(health_monitor=monitor(
        "HTTP", http_method=None, url_path=None, expected_codes=None)),
    "monitor_https": lambda: load_balancer(listener("HTTPS", 443, pool(
        "HTTPS", health_monitor=monitor("HTTPS", url_path="/status", http_version=1.0)))),
    "monitor_tcp_with_monitor_address": lambda: tcp_lb(
        health_monitor=monitor("TCP"),
        members=(member(1, monitor_address="10.0.2.11", monitor_port=9000),
                 member(2, monitor_port=9000), member(3, monitor_address="2001:db8:2::13"))),
    "monitor_tls_hello": lambda: load_balancer(listener("HTTPS", 443, pool(
        "HTTPS", health_monitor=monitor("TLS-HELLO")))),
    "monitor_ping": lambda: tcp_lb(health_monitor=monitor("PING")),
    "monitor_disabled_or_deleted": lambda: load_balancer(
        listener(default_pool=pool(health_monitor=monitor(enabled=False))),
        listener(port=81, number=2, default_pool=pool(
            number=2, health_monitor=monitor(provisioning_status="PENDING_DELETE")))),
    "member_weight_backup_and_admin_state": lambda: http_lb(members=(
        member(1, weight=10), member(2, weight=0), member(3, backup=True),
        member(4, enabled=False), member(5, provisioning_status="PENDING_DELETE"))),
    "connection_limits_and_timeouts": lambda: load_balancer(
        listener(default_pool=pool(), connection_limit=2000, timeout_client_data=1000,
                 timeout_member_connect=2000, timeout_member_data=3000,
                 timeout_tcp_inspect=400),
        listener("TCP", 5432, pool("TCP", number=2), number=2, connection_limit=None,
                 timeout_client_data=None, timeout_member_connect=None,
                 timeout_member_data=None, timeout_tcp_inspect=None)),
    "insert_headers": lambda: load_balancer(listener(default_pool=pool(), insert_headers={
        "X-Forwarded-For": "true", "X-Forwarded-Port": "True", "X-Forwarded-Proto": "true",
        "X-Real-IP": "false"})),
    "allowed_cidrs": lambda: load_balancer(listener(
        default_pool=pool(), allowed_cidrs=["198.51.100.0/24", "203.0.113.7/32",
                                            "2001:db8:a::/48"])),
    "listeners_in_every_state": listeners_in_every_state,
    "disabled_load_balancer": lambda: load_balancer(
        listener(default_pool=pool()), enabled=False),
    "active_standby_peers": active_standby_lb,
    "l7_redirect_to_pool": lambda: l7_lb(
        policy(1, "REDIRECT_TO_POOL", rule(1), redirect_pool=pool(number=2, members=(
            member(3, "10.0.2.13"),))),
        policy(2, "REDIRECT_TO_POOL", rule(2, "HOST_NAME", "EQUAL_TO", "static.example.com"),
               redirect_pool=pool(number=3, lb_algorithm="LEAST_CONNECTIONS", members=()))),
    "l7_actions_in_haproxy_order": lambda: l7_lb(
        policy(1, "REDIRECT_TO_POOL", rule(1), redirect_pool=pool(number=2)),
        policy(2, "REDIRECT_PREFIX", rule(2, value="/old"),
               redirect_prefix="https://new.example.com"),
        policy(3, "REDIRECT_TO_URL", rule(3, value="/moved"), redirect_http_code=301,
               redirect_url="https://example.com/a%20b?q=1#top"),
        policy(4, "REJECT", rule(4, "HEADER", "EQUAL_TO", '"bad bot"', key="User-Agent")),
        policy(5, "REDIRECT_TO_URL", rule(5, value="/gone"), redirect_http_code=308,
               redirect_url="https://example.com/", position=1)),
    "l7_rule_types_anded": lambda: l7_lb(policy(
        1, "REJECT",
        rule(1, "HOST_NAME", "ENDS_WITH", ".example.com"),
        rule(2, "PATH", "STARTS_WITH", "/admin"),
        rule(3, "FILE_TYPE", "EQUAL_TO", "php"),
        rule(4, "HEADER", "CONTAINS", "curl", key="User-Agent"),
        rule(5, "COOKIE", "EQUAL_TO", "yes", key="debug"),
        rule(6, "SSL_CONN_HAS_CERT", "EQUAL_TO", "true"),
        rule(7, "SSL_VERIFY_RESULT", "EQUAL_TO", "0"),
        rule(8, "SSL_DN_FIELD", "STARTS_WITH", "ops", key="OU"))),
    "l7_compare_types_invert_and_escaping": lambda: l7_lb(policy(
        1, "REJECT",
        rule(1, "PATH", "REGEX", r"^/v\d+/(a|b) c$"),
        rule(2, "PATH", "STARTS_WITH", "/api", invert=True),
        rule(3, "PATH", "ENDS_WITH", "#'\""),
        rule(4, "PATH", "CONTAINS", "$HOME", invert=True),
        rule(5, "FILE_TYPE", "REGEX", "^(jpe?g|png)$"),
        rule(6, "PATH", "EQUAL_TO", "/exact"))),
    "l7_disabled_or_deleted": lambda: l7_lb(
        policy(1, "REJECT", rule(1), enabled=False),
        policy(2, "REJECT", rule(2, enabled=False),
               rule(3, provisioning_status="PENDING_DELETE")),
        policy(3, "REJECT", rule(4, value="/kept"), rule(5, enabled=False),
               rule(6, provisioning_status="PENDING_DELETE")),
        policy(4, "REJECT", rule(7), provisioning_status="PENDING_DELETE"),
        policy(5, "REDIRECT_TO_POOL", rule(8), redirect_pool=pool(number=2, enabled=False)),
        policy(6, "REDIRECT_TO_POOL", rule(9), redirect_pool=pool(
            number=3, provisioning_status="PENDING_DELETE"))),
    "ipv6_and_additional_vip": ipv6_lb,
    "objects_in_error_left_out": lambda: load_balancer(
        listener(default_pool=pool(members=(
            member(1), member(2, provisioning_status="ERROR"))), l7policies=[
            policy(1, "REJECT", rule(1), provisioning_status="ERROR"),
            policy(2, "REJECT", rule(2, value="/kept"), rule(3, provisioning_status="ERROR")),
            policy(3, "REJECT", rule(4, value="/served")),
            policy(4, "REDIRECT_TO_POOL", rule(5, value="/broken"), redirect_pool=pool(
                number=3, provisioning_status="ERROR"))]),
        listener(port=81, number=2, provisioning_status="ERROR", default_pool=pool(number=2)),
        listener("TCP", 82, number=3, default_pool=pool(
            "TCP", number=4, health_monitor=monitor("TCP", provisioning_status="ERROR"))),
        provisioning_status="ERROR"),
    "prometheus_listener": lambda: load_balancer(
        listener(default_pool=pool()),
        listener("PROMETHEUS", 9100, number=2, allowed_cidrs=["198.51.100.0/24"])),
    "l7_keys_and_quoted_values": lambda: l7_lb(policy(
        1, "REJECT",
        rule(1, "HEADER", "EQUAL_TO", '"two words"', key="X-Tag#1"),
        rule(2, "COOKIE", "EQUAL_TO", "a,b", key="~sess|id"),
        rule(3, "HEADER", "EQUAL_TO", '""', key="X-Empty"))),
    "persistence_app_cookie_escaped": lambda: http_lb(
        session_persistence={"type": "APP_COOKIE", "cookie_name": "#sid$"}),
    "access_logs": lambda: load_balancer(
        listener(default_pool=pool()), listener("TCP", 5432, pool("TCP", number=2), number=2),
        project_id="p1"),
    "access_logs_connection_logging_off": lambda: load_balancer(
        listener(default_pool=pool()), project_id="p1"),
}
# Cases rendered with other options than OPTIONS: flow logs to the agent's socket, with
# upstream's format (one with a quote to escape), or haproxy's notices only.
LOGGING = dataclasses.replace(
    OPTIONS, log_socket=f"{AMPHORA_DIR}/log.sock",
    user_log_format=config.HaproxyAmphora().user_log_format + ' "%[dst]" %HU')
CASE_OPTIONS = {"access_logs": LOGGING,
                "access_logs_connection_logging_off": dataclasses.replace(
                    LOGGING, user_log_format=None)}


def golden_path(case: str) -> Path:
    return GOLDEN / f"{case}.cfg"


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_configuration_matches_golden_file(case: str):
    text = render(CASES[case](), CASE_OPTIONS.get(case, OPTIONS), PLACEHOLDER_MATERIAL)
    path = golden_path(case)
    if os.environ.get("LBAAS_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"no golden file {path}; run with LBAAS_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text()


def test_every_golden_file_belongs_to_a_case():
    assert sorted(path.stem for path in GOLDEN.glob("*.cfg")) == sorted(CASES)


# haproxy -c warns about a missing server-state file: it only exists once haproxy ran.
ACCEPTED_WARNING = "Can't open global server state file"


def haproxy_binary() -> str:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    assert Path(haproxy).exists(), "haproxy is not installed (apt-get install haproxy)"
    return haproxy


@pytest.fixture(scope="module")
def real_material() -> haproxy_config.TlsMaterial:
    ca = Authority()
    revoked = ca.issue("revoked", client=True)
    ca.revoke(revoked)
    return haproxy_config.TlsMaterial(
        certificates={ref: ca.issue(f"{ref}.example.com", (f"{ref}.example.com",)).tls
                      for ref in TLS_REFS},
        secrets={"ca": ca.cert_pem, "crl": ca.crl_pem()})


@pytest.mark.parametrize("case", sorted(CASES))
def test_haproxy_accepts_golden_file(case: str, tmp_path: Path, real_material):
    """The golden file itself, or for TLS cases the same configuration with real
    certificates written where it names them (the golden files name stand-ins)."""
    path = golden_path(case)
    options = dataclasses.replace(OPTIONS, certs_dir=str(tmp_path))
    text, files = haproxy_config.render_files(CASES[case](), options, real_material)
    if files:
        for name, content in files.items():
            (tmp_path / name).write_bytes(content)
        path = tmp_path / "haproxy.cfg"
        path.write_text(text)
    result = subprocess.run([haproxy_binary(), "-c", "-f", str(path)],
                            capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    warnings = [line for line in output.splitlines()
                if "[WARNING]" in line and ACCEPTED_WARNING not in line]
    assert warnings == [], output


# --- what the view model decides ----------------------------------------------------------

def test_global_maxconn_is_the_sum_of_listener_limits_capped_as_upstream():
    lb = load_balancer(listener(connection_limit=100), listener(port=81, number=2))
    assert haproxy_config.build(lb, OPTIONS).maxconn == 100 + 50000
    many = load_balancer(*(listener(port=80 + n, number=n, connection_limit=400_000)
                           for n in range(1, 4)))
    assert haproxy_config.build(many, OPTIONS).maxconn == 1_000_000


def test_global_maxconn_fits_the_file_descriptors_haproxy_may_open():
    lb = load_balancer(listener(), listener(port=81, number=2))
    options = dataclasses.replace(OPTIONS, fd_limit=20000)
    assert haproxy_config.build(lb, options).maxconn == (20000 - 1000) * 2 // 5
    assert haproxy_config.build(lb, dataclasses.replace(OPTIONS, fd_limit=10**7)).maxconn \
        == 100000


def test_load_balancer_without_served_listeners_still_has_a_bounded_maxconn():
    config = haproxy_config.build(load_balancer(enabled=False), OPTIONS)
    assert config.frontends == ()
    assert config.maxconn == OPTIONS.default_connection_limit


def test_frontend_backend_and_server_names_are_the_ids_the_health_manager_expects():
    config = haproxy_config.build(http_lb(), OPTIONS)
    [frontend] = config.frontends
    [backend] = frontend.backends
    assert frontend.name == uid(2)
    assert backend.name == f"{uid(3)}:{uid(2)}" == frontend.default_backend
    assert [server.name for server in backend.servers] == [uid(4, 1), uid(4, 2)]


def test_peer_name_is_stable_and_uses_characters_haproxy_allows():
    name = haproxy_config.peer_name(AMPHORA_ID)
    assert name == haproxy_config.peer_name(AMPHORA_ID) == OPTIONS.peer_name
    assert name != haproxy_config.peer_name(PEER_AMPHORA_ID)
    assert set(name) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def options_from_settings(settings: config.HaproxyAmphora, directory: Path) -> RenderOptions:
    return RenderOptions.from_settings(
        settings, AMPHORA_ID, stats_socket=directory / "lb.sock",
        server_state_file=directory / "servers-state", pid_file=directory / "haproxy.pid")


def test_options_from_settings_take_haproxy_amphora_timeouts_and_limit(tmp_path: Path):
    settings = config.load(environ={"LBAAS__haproxy_amphora__timeout_client_data": "7000",
                                    "LBAAS__haproxy_amphora__default_connection_limit": "300"})
    options = options_from_settings(settings.haproxy_amphora, tmp_path)
    assert options.stats_socket == str(tmp_path / "lb.sock")
    assert options.server_state_file == str(tmp_path / "servers-state")
    assert (options.timeout_client_data, options.default_connection_limit) == (7000, 300)
    lb = load_balancer(listener(default_pool=pool(), timeout_client_data=None))
    frontend = haproxy_config.build(lb, options).frontends[0]
    assert (frontend.timeout_client, frontend.maxconn) == (7000, 300)


def test_ping_wrapper_is_shipped_executable_and_reports_a_reachable_member_as_up(
        tmp_path: Path):
    ping = options_from_settings(config.HaproxyAmphora(), tmp_path).ping_command
    assert os.access(ping, os.X_OK)
    result = subprocess.run([ping, "192.0.2.10", "80", "127.0.0.1", "8080"], timeout=30)
    assert result.returncode == 0


# --- what the renderer refuses rather than serve something else ------------------------------

def test_tls_listener_whose_certificate_was_not_fetched_is_an_error_not_a_silent_gap():
    with pytest.raises(UnsupportedConfiguration, match=f"listener {uid(2)}: certificate default"):
        render(load_balancer(terminated_https()), OPTIONS)


def test_certificate_files_are_named_by_content_so_a_new_certificate_reloads():
    lb = load_balancer(terminated_https())
    before = haproxy_config.render_files(lb, OPTIONS, PLACEHOLDER_MATERIAL)
    other = dataclasses.replace(PLACEHOLDER_MATERIAL, certificates={
        **PLACEHOLDER_MATERIAL.certificates, "default": TlsCertificate(b"new\n", b"key\n")})
    after = haproxy_config.render_files(lb, OPTIONS, other)
    assert before[0] != after[0]
    assert set(after[1]).isdisjoint(before[1])  # a new certificate file and crt-list


def test_unknown_cipher_is_refused():
    lb = load_balancer(terminated_https(tls_ciphers="NO-SUCH-CIPHER"))
    with pytest.raises(UnsupportedConfiguration, match="tls_ciphers"):
        render(lb, OPTIONS, PLACEHOLDER_MATERIAL)


def test_source_ip_port_algorithm_is_refused_as_upstreams_amphora_driver_does():
    with pytest.raises(UnsupportedConfiguration, match="SOURCE_IP_PORT"):
        render(http_lb(lb_algorithm="SOURCE_IP_PORT"), OPTIONS)


@pytest.mark.parametrize("cookie_name", ["a)b", "two words", "x'y", ""])
def test_app_cookie_name_that_would_break_the_config_is_refused(cookie_name: str):
    lb = http_lb(session_persistence={"type": "APP_COOKIE", "cookie_name": cookie_name})
    with pytest.raises(UnsupportedConfiguration, match="cookie_name"):
        render(lb, OPTIONS)


@pytest.mark.parametrize(("field", "value"), [
    ("url_path", "/a b"), ("url_path", "/x\nserver evil 1.2.3.4:80"),
    ("domain_name", "a b"), ("expected_codes", "2xx"),
])
def test_monitor_value_that_would_break_the_config_is_refused(field: str, value: str):
    lb = http_lb(health_monitor=monitor("HTTP", **{field: value}))
    with pytest.raises(UnsupportedConfiguration, match=field):
        render(lb, OPTIONS)


def test_udp_monitor_on_a_haproxy_pool_is_refused():
    with pytest.raises(UnsupportedConfiguration, match="UDP-CONNECT"):
        render(tcp_lb(health_monitor=monitor("UDP-CONNECT")), OPTIONS)


@pytest.mark.parametrize("protocol", ["TCP", "HTTPS"])
def test_l7_policy_on_a_listener_that_is_not_http_is_refused(protocol: str):
    lb = load_balancer(listener(protocol, 443, pool(protocol), l7policies=[
        policy(1, "REJECT", rule(1))]))
    with pytest.raises(UnsupportedConfiguration, match=f"listener {uid(2)}: L7 policies"):
        render(lb, OPTIONS)


@pytest.mark.parametrize(("bad_rule", "field"), [
    (rule(1, value="/a\nserver evil 1.2.3.4:80"), "value"),
    (rule(1, value=""), "value"),
    (rule(1, "HEADER", key="X(y)"), "key"),
    (rule(1, "COOKIE", key=None), "key"),
    (rule(1, "SSL_VERIFY_RESULT", "EQUAL_TO", "0 || 1"), "value"),
    (rule(1, "URL"), "type"),
    (rule(1, compare_type="LIKE"), "comparison type"),
])
def test_l7_rule_that_would_break_the_config_is_refused(bad_rule: models.L7Rule, field: str):
    with pytest.raises(UnsupportedConfiguration, match=f"L7 rule {uid(7)}: .*{field}"):
        render(l7_lb(policy(1, "REJECT", bad_rule)), OPTIONS)


@pytest.mark.parametrize(("fields", "field"), [
    ({"action": "REDIRECT_TO_URL", "redirect_url": "http://x/\r\nLocation: y"}, "redirect_url"),
    ({"action": "REDIRECT_PREFIX", "redirect_prefix": None}, "redirect_prefix"),
    ({"action": "REDIRECT_TO_URL", "redirect_url": "http://x/", "redirect_http_code": 200},
     "redirect_http_code"),
    ({"action": "DROP"}, "action"),
])
def test_l7_policy_that_would_break_the_config_is_refused(fields: dict[str, Any], field: str):
    action = fields.pop("action")
    with pytest.raises(UnsupportedConfiguration, match=f"L7 policy {uid(6)}: {field}"):
        render(l7_lb(policy(1, action, rule(1), **fields)), OPTIONS)


def test_l7_policies_follow_haproxy_evaluation_order_then_position():
    """REJECT, then redirects to URL or prefix, then pools; ties by position, as upstream."""
    lb = l7_lb(
        policy(1, "REDIRECT_TO_POOL", rule(1), redirect_pool=pool(number=2), position=1),
        policy(2, "REDIRECT_PREFIX", rule(2), redirect_prefix="http://b", position=4),
        policy(3, "REJECT", rule(3), position=5),
        policy(4, "REDIRECT_TO_URL", rule(4), redirect_url="http://a", position=3),
        policy(5, "REJECT", rule(5), position=2))
    [frontend] = haproxy_config.build(lb, OPTIONS).frontends
    assert [(item.action, item.acls[0].name) for item in frontend.policies] == [
        ("deny", uid(7, 5)), ("deny", uid(7, 3)), ("location", uid(7, 4)),
        ("prefix", uid(7, 2)), ("use_backend", uid(7, 1))]


def test_a_pool_used_by_several_policies_and_as_default_gets_one_backend():
    shared = pool(number=2)
    lb = load_balancer(listener(default_pool=shared, l7policies=[
        policy(1, "REDIRECT_TO_POOL", rule(1), redirect_pool=shared),
        policy(2, "REDIRECT_TO_POOL", rule(2), redirect_pool=shared, enabled=False)]))
    [frontend] = haproxy_config.build(lb, OPTIONS).frontends
    assert [backend.name for backend in frontend.backends] == [f"{uid(3, 2)}:{uid(2)}"]
    assert [item.target for item in frontend.policies] == [f"{uid(3, 2)}:{uid(2)}"]


def test_rendering_does_not_change_the_model():
    lb = http_lb(health_monitor=monitor("HTTP", http_method=None))
    before = dataclasses.asdict(haproxy_config.build(lb, OPTIONS))
    render(lb, OPTIONS)
    assert lb.listeners[0].default_pool.health_monitor.http_method is None
    assert dataclasses.asdict(haproxy_config.build(lb, OPTIONS)) == before


# --- the rendered configuration at work, on loopback ------------------------------------------

class Backend(http.server.BaseHTTPRequestHandler):
    """Answers ``/health`` with the server's health status and anything else with its name."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        server: Any = self.server
        if self.path == "/health":
            status, body = server.health_status, b""
        else:
            status = 200
            body = f"{server.name} {self.headers.get('X-Forwarded-For')}".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class BackendServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """haproxy closes a health check once it read the status: not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture
def backends() -> Iterator[dict[str, http.server.ThreadingHTTPServer]]:
    """A member answering its health check with 202 and one answering it with 500."""
    servers = {}
    for name, health_status in (("healthy", 202), ("failing", 500)):
        server = BackendServer(("127.0.0.1", 0), Backend)
        server.name, server.health_status = name, health_status  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers[name] = server
    try:
        yield servers
    finally:
        for server in servers.values():
            server.shutdown()
            server.server_close()




def runtime(stats_socket: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(stats_socket))
        sock.sendall(command.encode() + b"\n")
        return b"".join(iter(lambda: sock.recv(65536), b"")).decode()


def server_statuses(stats_socket: Path) -> dict[tuple[str, str], str]:
    """(backend, server) -> UP/DOWN/..., from haproxy's ``show stat``."""
    rows = [line.split(",") for line in runtime(stats_socket, "show stat").splitlines()
            if line and not line.startswith("#")]
    return {(row[0], row[1]): row[17] for row in rows if row[1] not in ("FRONTEND", "BACKEND")}


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)
    return result


@contextlib.contextmanager
def running_haproxy(config_text: str, directory: Path,
                    netns: str | None = None) -> Iterator[Path]:
    """haproxy in the foreground on ``config_text``; yields its stats socket, stops it after."""
    (directory / "haproxy.cfg").write_text(config_text)
    command = [haproxy_binary(), "-db", "-f", str(directory / "haproxy.cfg")]
    prefix = ["ip", "netns", "exec", netns] if netns else []
    haproxy = subprocess.Popen(prefix + command, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        wait_until(lambda: (directory / "lb.sock").exists() or haproxy.poll() is not None,
                   "haproxy to start")
        assert haproxy.poll() is None, haproxy.communicate()[1].decode()
        yield directory / "lb.sock"
    finally:
        haproxy.terminate()
        try:
            haproxy.wait(timeout=10)
        except subprocess.TimeoutExpired:
            haproxy.kill()
            haproxy.wait()


def loopback_options(directory: Path) -> RenderOptions:
    return RenderOptions.from_settings(
        config.HaproxyAmphora(), AMPHORA_ID, stats_socket=directory / "lb.sock",
        server_state_file=directory / "servers-state", pid_file=directory / "haproxy.pid",
        fd_limit=resource.getrlimit(resource.RLIMIT_NOFILE)[1])


def wait_for_statuses(stats_socket: Path, wanted: dict[tuple[str, str], str]) -> None:
    seen: dict[tuple[str, str], str] = {}

    def reached() -> bool:
        seen.update(server_statuses(stats_socket))
        return seen == wanted

    try:
        wait_until(reached, "member statuses")
    except AssertionError:
        raise AssertionError(f"member statuses stayed {seen}, wanted {wanted}") from None


@pytest.mark.root
def test_http_monitor_with_expected_codes_keeps_traffic_on_the_healthy_member(
        tmp_path: Path, backends: dict[str, http.server.ThreadingHTTPServer]):
    """The rendered config at work: status list 200,202, X-Forwarded-For, maxconn fit."""
    healthy, failing = (backends[name].server_address[1] for name in ("healthy", "failing"))
    port = free_port()
    lb = load_balancer(
        listener(port=port, insert_headers={"X-Forwarded-For": "true"}, default_pool=pool(
            members=(member(1, "127.0.0.1", healthy), member(2, "127.0.0.1", failing)),
            health_monitor=monitor("HTTP", url_path="/health", expected_codes="200,202",
                                   delay=1, timeout=1, rise_threshold=1, fall_threshold=1))),
        vip_address="127.0.0.1")
    with running_haproxy(render(lb, loopback_options(tmp_path)), tmp_path) as stats_socket:
        backend = f"{uid(3)}:{uid(2)}"
        wait_for_statuses(stats_socket, {(backend, uid(4, 1)): "UP",
                                         (backend, uid(4, 2)): "DOWN"})
        for _ in range(4):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/")
            assert connection.getresponse().read() == b"healthy 127.0.0.1"
            connection.close()


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Status, body and Location of one request to haproxy on loopback."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode(), response.getheader("Location", "")
    finally:
        connection.close()


@pytest.mark.root
def test_l7_policies_route_reject_and_redirect_requests(
        tmp_path: Path, backends: dict[str, http.server.ThreadingHTTPServer]):
    """The rendered rules at work: file types, escaped values, invert, deny, redirects."""
    healthy, failing = (backends[name].server_address[1] for name in ("healthy", "failing"))
    port = free_port()
    images = pool(number=2, members=(member(2, "127.0.0.1", failing),))
    policies = [
        policy(1, "REDIRECT_TO_POOL", rule(1, "FILE_TYPE", "REGEX", "^(jpe?g|png)$"),
               redirect_pool=images),
        policy(2, "REJECT", rule(2, "HEADER", "EQUAL_TO", '"bad bot"', key="User-Agent"),
               rule(3, "PATH", "STARTS_WITH", "/public", invert=True)),
        policy(3, "REDIRECT_TO_URL", rule(4, "PATH", "EQUAL_TO", "/it's"),
               redirect_url="https://example.com/new#top", redirect_http_code=301),
        policy(4, "REDIRECT_PREFIX", rule(5, "COOKIE", "EQUAL_TO", "b", key="site"),
               redirect_prefix="http://b.example.com"),
    ]
    lb = load_balancer(listener(
        port=port, default_pool=pool(members=(member(1, "127.0.0.1", healthy),)),
        l7policies=policies), vip_address="127.0.0.1")
    with running_haproxy(render(lb, loopback_options(tmp_path)), tmp_path):
        assert get(port, "/a/photo.png") == (200, "failing None", "")
        assert get(port, "/a.png/photo") == (200, "healthy None", "")
        assert get(port, "/photo.gif") == (200, "healthy None", "")
        assert get(port, "/x", {"User-Agent": "bad bot"})[0] == 403
        assert get(port, "/public/x", {"User-Agent": "bad bot"}) == (200, "healthy None", "")
        assert get(port, "/its") == (200, "healthy None", "")
        status, _, location = get(port, "/it's")
        assert (status, location) == (301, "https://example.com/new#top")
        status, _, location = get(port, "/p?q=1", {"Cookie": "site=b"})
        assert (status, location) == (302, "http://b.example.com/p?q=1")


@pytest.fixture
def amphora_namespace() -> Iterator[str]:
    """A network namespace with only loopback, where unprivileged ICMP sockets are allowed.

    haproxy forbids its children to gain privileges, so ping cannot use its file capability;
    an amphora's namespace must allow ICMP datagram sockets (``net.ipv4.ping_group_range``).
    """
    name = f"lbaas-test-ping-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw",
                        "net.ipv4.ping_group_range=0 2147483647"], check=True)
        yield name
    finally:
        for pid in subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                                  text=True).stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.mark.root
def test_ping_monitor_marks_answering_members_up_and_unreachable_ones_down(
        tmp_path: Path, amphora_namespace: str):
    """192.0.2.1 has no route in a namespace with only loopback: no packet leaves it."""
    lb = load_balancer(
        listener("TCP", free_port(), pool("TCP", health_monitor=monitor(
            "PING", delay=1, timeout=1, rise_threshold=1, fall_threshold=1),
            members=(member(1, "127.0.0.1"), member(2, "192.0.2.1")))),
        vip_address="127.0.0.1")
    with running_haproxy(render(lb, loopback_options(tmp_path)), tmp_path,
                         netns=amphora_namespace) as stats_socket:
        backend = f"{uid(3)}:{uid(2)}"
        wait_for_statuses(stats_socket, {(backend, uid(4, 1)): "UP",
                                         (backend, uid(4, 2)): "DOWN"})
