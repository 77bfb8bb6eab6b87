"""Property: any load balancer the API accepts renders a configuration ``haproxy -c`` takes.

Hypothesis builds fully-populated load balancer creates (listeners, their default pools
with members and a health monitor, L7 policies with rules) from valid values mixed with
the ones that broke load balancers before (newlines, spaces, quotes, ``#``, ``%``,
backslashes, other scripts, control characters, extreme numbers). Whatever the API
accepts is read back from the database, rendered as the REST driver renders it and
checked by ``haproxy -c``; what it refuses must be a 4xx fault, never a 500.
"""
from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbaas.amphora import udp_config
from lbaas.db.models import LoadBalancer
from tests.helpers import PROJECT
from tests.helpers.api import SUBNET, render_checked, store_tls_refs

EXAMPLES = 300
# The same examples every run (derandomize): the test also asserts what its trees reach
# (TLS listeners with SNI and a client CA, TLS pools), which random draws missed one run
# in a few. New examples come with changes to the strategies, not with the clock.
PROPERTY_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                             derandomize=True, suppress_health_check=list(HealthCheck))

TRICKY = ["", " ", "a b", "a\n", "\n", "a\tb", "#", "a#b", "'", "it's", '"', '"a b"', '""',
          "\\", "%", "%[src]", "a,b", "(", ")", "$HOME", "${X}", "caf\u00e9", "\u0660",
          "\x00", "\x7f", "/", "/a b", "/a#b", "/health\n", "^/a\n", "(?a)x", "\\u0041",
          "[", "*", "example.com\n", "-bad-.com", "200\n", "200,\n201", "2\u0660\u0660",
          "http://example.com/\n", "ftp://a/", "http://a b/"]
tricky = st.one_of(st.sampled_from(TRICKY), st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12))


def mostly(*good: Any) -> st.SearchStrategy[Any]:
    """A valid value; ``poison`` below swaps one leaf of the tree for a tricky one."""
    return st.sampled_from(good)


def number(low: int, high: int, *_extremes: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


TOKENS = ["X-Env", "X-Tag#1", "~id|x", "user-agent", "JSESSIONID", "a.b", "A1"]
VALUES = ["beta", "/static", ".jpg", "a,b", '"two words"', '""', "x%20y", "(a)", "it's"]
REGEXES = [r"^/v\d+/", "^(jpe?g|png)$", r"a\sb", "#frag", "[a-z]+", "x{,3}", "caf\u00e9"]
GOOD_ADDRESSES = ["192.0.2.10", "192.0.2.11", "2001:db8::10", "10.0.0.1", "198.51.100.7"]
BAD_ADDRESSES = ["127.0.0.1", "0.0.0.0", "224.0.0.1", "169.254.1.1", "fe80::1%eth0",
                 "172.29.232.9", "192.0.2.99"]  # the last one is the VIP the test gives
addresses = st.sampled_from(GOOD_ADDRESSES)
EXTREMES = [-1, 0, 256, 257, 65536, 2_147_483, 2_147_484, 2**31 - 1, 2**31, 2**63, True, 1.5]
bad_values = st.one_of(tricky, st.sampled_from(EXTREMES), st.sampled_from(BAD_ADDRESSES))


def poison(value: Any, which: int, bad: Any) -> tuple[Any, int]:
    """``value`` with its ``which``-th leaf (depth first) replaced by ``bad``; the count
    still to skip when there are fewer leaves."""
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            result[key], which = poison(item, which, bad)
        return result, which
    if isinstance(value, list):
        items = []
        for item in value:
            item, which = poison(item, which, bad)
            items.append(item)
        return items, which
    return (bad, -1) if which == 0 else (value, which - 1)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def without_none(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def rule_for(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    compare = {"FILE_TYPE": ["EQUAL_TO", "REGEX"], "SSL_CONN_HAS_CERT": ["EQUAL_TO"],
               "SSL_VERIFY_RESULT": ["EQUAL_TO"]}.get(
        kind, ["REGEX", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "EQUAL_TO"])
    keyed = kind in ("HEADER", "COOKIE", "SSL_DN_FIELD")
    fixed_values = {"SSL_CONN_HAS_CERT": mostly("true", "TRUE"),
                    "SSL_VERIFY_RESULT": mostly("0", "19")}
    return st.sampled_from(compare).flatmap(lambda compare_type: st.builds(
        without_none, type=st.just(kind), compare_type=st.just(compare_type),
        key=(mostly("CN", "OU", "emailAddress") if kind == "SSL_DN_FIELD"
             else mostly(*TOKENS) if keyed else st.none()),
        value=(fixed_values[kind] if kind in fixed_values
               else mostly(*REGEXES) if compare_type == "REGEX" else mostly(*VALUES)),
        invert=maybe(st.booleans()), admin_state_up=maybe(st.booleans())))


rules = st.sampled_from(["HOST_NAME", "PATH", "FILE_TYPE", "HEADER", "COOKIE",
                         "SSL_CONN_HAS_CERT", "SSL_VERIFY_RESULT", "SSL_DN_FIELD"]).flatmap(rule_for)

monitors = st.builds(
    without_none,
    type=st.sampled_from(["HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO", "UDP-CONNECT"]),
    delay=number(1, 60, 2_147_483, 2_147_484), timeout=number(0, 60, 2_147_483, 2_147_484),
    max_retries=number(1, 10, 11), max_retries_down=maybe(number(1, 10, 11)),
    admin_state_up=maybe(st.booleans()))
http_monitors = st.builds(
    lambda monitor, extra: {**monitor, "type": "HTTP", **extra}, monitors, st.builds(
        without_none, http_method=maybe(st.sampled_from(["GET", "HEAD", "POST"])),
        url_path=maybe(mostly("/", "/health", "/x?y=1&z=[2]", "/a;b=c", "/%7E")),
        expected_codes=maybe(mostly("200", "200, 202", "200-204", "301,302")),
        http_version=st.just(1.1), domain_name=maybe(mostly("example.com", "a-b.example"))))

members = st.builds(
    without_none, address=addresses, protocol_port=number(1, 65535, 65536),
    weight=maybe(number(0, 256, 257)), backup=maybe(st.booleans()),
    monitor_address=maybe(addresses), monitor_port=maybe(number(1, 65535, 65536)),
    admin_state_up=maybe(st.booleans()))


# Certificate references, as "@<role>" (lbaas secret store'd by the test, see
# ``store_tls_refs``); a poisoned one is not a reference, and the API must refuse it.
CIPHERS = ["ECDHE-RSA-AES128-GCM-SHA256", "HIGH:!aNULL", "DEFAULT", "AES256-SHA:ECDHE-ECDSA-AES128-GCM-SHA256"]
tls_options = {
    "tls_versions": maybe(st.lists(st.sampled_from(["SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2",
                                                    "TLSv1.3"]),
                                   min_size=1, max_size=3, unique=True)),
    "tls_ciphers": maybe(mostly(*CIPHERS)),
    "alpn_protocols": maybe(st.lists(st.sampled_from(["h2", "http/1.1", "http/1.0"]),
                                     min_size=1, max_size=3, unique=True)),
}
# Re-encryption half of the time: an accepted TLS pool needs every other field right too.
pool_tls = st.builds(
    without_none, tls_enabled=st.one_of(st.just(True), maybe(st.booleans())),
    tls_container_ref=maybe(st.just("@client")),
    ca_tls_container_ref=maybe(st.just("@ca")), crl_container_ref=maybe(st.just("@crl")),
    **tls_options)
def often(value: str) -> st.SearchStrategy[str | None]:
    """``value`` three times in four: the TLS trees the property must reach (a listener
    with its certificate and a client CA) are accepted only with every other field right."""
    return st.one_of(st.just(value), maybe(st.just(value)))


listener_tls = st.builds(
    without_none, default_tls_container_ref=often("@default"),
    sni_container_refs=maybe(st.lists(st.sampled_from(["@sni-a", "@sni-b", "@default"]),
                                      min_size=1, max_size=2, unique=True)),
    client_authentication=maybe(st.sampled_from(["NONE", "OPTIONAL", "MANDATORY"])),
    client_ca_tls_container_ref=often("@ca"),
    client_crl_container_ref=maybe(st.just("@crl")),
    hsts_max_age=maybe(number(0, 31_536_000)), hsts_include_subdomains=maybe(st.booleans()),
    hsts_preload=maybe(st.booleans()), **tls_options)
INSERTED = {"HTTP": ["X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto"],
            "TERMINATED_HTTPS": ["X-Forwarded-For", "X-Forwarded-Proto", "X-SSL-Client-Verify",
                                 "X-SSL-Client-Has-Cert", "X-SSL-Client-DN", "X-SSL-Client-CN",
                                 "X-SSL-Issuer", "X-SSL-Client-SHA1", "X-SSL-Client-Not-Before",
                                 "X-SSL-Client-Not-After"]}


def with_references(value: Any, refs: dict[str, str]) -> Any:
    """``value`` with every "@<role>" string replaced by the stored reference."""
    if isinstance(value, dict):
        return {key: with_references(item, refs) for key, item in value.items()}
    if isinstance(value, list):
        return [with_references(item, refs) for item in value]
    if isinstance(value, str) and value.startswith("@") and value[1:] in refs:
        return refs[value[1:]]
    return value


def pools(name: str, protocols: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda fields, tls: {**fields, **tls}, st.builds(
        without_none,
        name=st.just(name), protocol=st.sampled_from(protocols),
        lb_algorithm=st.sampled_from(["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP"]),
        session_persistence=maybe(st.one_of(
            st.builds(dict, type=st.sampled_from(["SOURCE_IP", "HTTP_COOKIE"])),
            st.builds(dict, type=st.just("APP_COOKIE"), cookie_name=mostly(*TOKENS)),
            st.builds(without_none, type=st.just("SOURCE_IP"),
                      persistence_timeout=maybe(number(0, 3600, -1, 2_147_484)),
                      persistence_granularity=maybe(mostly("255.255.255.0", "0.0.0.255"))))),
        members=maybe(st.lists(members, max_size=3, unique_by=lambda m: m["address"])),
        healthmonitor=maybe(st.one_of(monitors, http_monitors)),
        admin_state_up=maybe(st.booleans())),
        # UDP pools cannot re-encrypt (a 400): no TLS fields, or the tree is refused.
        st.just({}) if protocols == ["UDP"] else pool_tls)


REDIRECT_FIELDS = {
    "REJECT": st.just({}),
    "REDIRECT_TO_URL": st.builds(dict, redirect_url=mostly(
        "http://example.com/", "https://a.example/p?q=1#f", "http://a/%20b",
        "https://x.example:8443/a'b")),
    "REDIRECT_PREFIX": st.builds(dict, redirect_prefix=mostly(
        "https://new.example.com", "http://a.example/")),
}
policies = st.sampled_from(sorted(REDIRECT_FIELDS)).flatmap(lambda action: st.builds(
    lambda target, fields: {"action": action, **target, **fields},
    REDIRECT_FIELDS[action],
    st.builds(without_none, redirect_http_code=maybe(st.sampled_from([301, 302, 308])),
              rules=st.lists(rules, min_size=1, max_size=3),
              admin_state_up=maybe(st.booleans()))))
POOL_PROTOCOLS = {"HTTP": ["HTTP", "PROXY", "PROXYV2"], "TCP": ["HTTP", "TCP", "PROXY"],
                  "HTTPS": ["HTTPS", "TCP", "PROXYV2"],
                  "TERMINATED_HTTPS": ["HTTP", "PROXY", "PROXYV2"], "UDP": ["UDP"]}
L7_PROTOCOLS = ("HTTP", "TERMINATED_HTTPS")


def listener(number_: int, protocol: str) -> st.SearchStrategy[dict[str, Any]]:
    served_pools = POOL_PROTOCOLS.get(protocol)
    return st.builds(
        lambda fields, tls: {**fields, **tls}, st.builds(
        without_none,
        protocol=st.just(protocol), protocol_port=st.just(80 + number_),
        connection_limit=maybe(st.integers(-1, 100_000)),
        timeout_client_data=maybe(st.integers(0, 100_000)),
        timeout_member_connect=maybe(st.integers(0, 100_000)),
        timeout_member_data=maybe(st.integers(0, 100_000)),
        timeout_tcp_inspect=maybe(st.integers(0, 10_000)),
        insert_headers=(maybe(st.dictionaries(
            st.sampled_from(INSERTED[protocol]),
            st.sampled_from(["true", "false", "True"]), max_size=3))
            if protocol in INSERTED else st.none()),
        allowed_cidrs=maybe(st.lists(st.sampled_from(["192.0.2.0/24", "10.0.0.0/8"]),
                                     max_size=2, unique=True)),
        default_pool=maybe(pools(f"pool-{number_}", served_pools)) if served_pools else st.none(),
        l7policies=maybe(st.lists(policies, max_size=2)) if protocol in L7_PROTOCOLS else st.none(),
        admin_state_up=maybe(st.booleans())),
        listener_tls if protocol == "TERMINATED_HTTPS" else st.just({}))


valid_load_balancers = st.builds(
    lambda items, name: without_none(vip_subnet_id=SUBNET, name=name, listeners=list(items)),
    st.lists(st.integers(0, 2), min_size=1, max_size=2, unique=True).flatmap(
        lambda numbers_: st.tuples(*(st.sampled_from(["HTTP", "HTTP", "TCP", "HTTPS",
                                                       "PROMETHEUS", "TERMINATED_HTTPS",
                                                       "TERMINATED_HTTPS", "UDP"]).flatmap(
            lambda protocol, n=n: listener(n, protocol)) for n in numbers_))),
    maybe(mostly("web", "caf\u00e9")))
load_balancers = st.builds(
    lambda body, which, bad: body if which is None else poison(body, which, bad)[0],
    valid_load_balancers, st.one_of(st.none(), st.integers(0, 80)), bad_values)


@pytest.mark.timeout(600)
def test_every_load_balancer_the_api_accepts_renders(api_only, services):
    accepted: list[dict[str, Any]] = []
    manager = services.api_state.cert_manager
    refs = store_tls_refs(manager, PROJECT)

    @PROPERTY_SETTINGS
    @given(body=load_balancers)
    def check(body: dict[str, Any]) -> None:
        response = api_only.post("/v2/lbaas/loadbalancers",
                                 json={"loadbalancer": with_references(body, refs)})
        assert response.status_code < 500 or response.status_code == 501, response.text
        if response.status_code != 201:
            assert set(response.json()) == {"faultcode", "faultstring", "debuginfo"}
            return
        accepted.append(body)
        with services.db.read() as session:
            lb = session.get(LoadBalancer, response.json()["loadbalancer"]["id"])
            lb.vip_address = lb.vip_address or "192.0.2.99"  # the worker would allocate it
            render_checked(lb, manager=manager)
            udp_config.render(lb)  # raises if a UDP part cannot be served
            session.rollback()

    check()
    # The strategies must reach what matters: accepted trees with members, monitors, rules,
    # TLS listeners with SNI and client authentication, pools re-encrypting.
    for part in ('"members": [{', '"healthmonitor"', '"rules"', '"sni_container_refs"',
                 '"client_ca_tls_container_ref"', '"tls_enabled": true'):
        assert any(part in json.dumps(body) for body in accepted), f"no accepted {part}"
