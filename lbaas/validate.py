"""What an amphora's haproxy configuration can carry: the checks the API and the renderer share.

The API refuses (400) every value these refuse, so an object it accepts always renders;
the configuration builder (``lbaas.amphora.haproxy_config``) runs the same checks on what
it reads from the database, so that no value can reach ``haproxy.cfg`` and split a line or
turn into syntax. Each check raises ``InvalidValue`` with the reason in upstream's words
where upstream has them.

The rules are upstream's (``octavia/common/validate.py``, ``constants``) made strict where
upstream lets through what haproxy then refuses:

* patterns match the whole string (``fullmatch``; Python's ``$`` also matches before a
  final newline, so ``"/health\\n"`` passed upstream's patterns);
* digits are ASCII (``\\d`` also takes other scripts' digits);
* a header or cookie name is an RFC 7230 token without ``'``, which haproxy's sample
  fetch arguments cannot carry, and without ``,`` (upstream's character class ``+-.`` is a
  range that lets it in);
* regular expressions compile in Python and use nothing that PCRE2 (haproxy's engine)
  lacks, and no text carries a control character;
* health monitor intervals fit haproxy's timers (at most 2147483647 ms, and ``inter`` is
  never 0).
"""
from __future__ import annotations

import ipaddress
import re
import ssl
from typing import NoReturn

from lbaas import constants
from lbaas.amphora import capabilities


class InvalidValue(ValueError):
    """The value cannot be written to haproxy.cfg; the message says why."""


# RFC 7230 ``tchar`` less the apostrophe (haproxy reads it as a quote inside a fetch's
# arguments, even escaped). '#' is written escaped.
TOKEN = re.compile(r"[A-Za-z0-9!#$%&*+.^_`|~-]+")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# RFC 6265/7230 value character sets as upstream's constants let them through (ASCII,
# printable; a quoted header value may hold spaces but, unlike upstream's, no tab).
HEADER_VALUE = re.compile(r"""[a-zA-Z0-9!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]+""")
QUOTED_HEADER_VALUE = re.compile(r""""[a-zA-Z0-9 !"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]*\"""")
COOKIE_VALUE = re.compile(r"""[a-zA-Z0-9!#$%&'()*+,\-./:<=>?@\[\]^_`{|}~]+""")
DISTINGUISHED_NAME_FIELD = re.compile(r"[a-zA-Z][A-Za-z0-9-]*")
EXPECTED_CODES = re.compile(r"[0-9]{3}( *, *[0-9]{3})*|[0-9]{3}-[0-9]{3}")
"""Upstream's pattern with spaces only (its ``\\s`` took newlines) and ASCII digits."""
EXPECTED_CODES_PATTERN = r"^(\d{3}(\s*,\s*\d{3})*)$|^(\d{3}-\d{3})$"
"""Upstream's pattern as its error message names it."""
DOMAIN_NAME = re.compile(
    r"(?=.{1,253}\.?\Z)(?:(?!-|[^.]+_)[A-Za-z0-9_-]{1,63}(?<!-)(?:\.|\Z))+", re.ASCII)
DOMAIN_NAME_PATTERN = r"^(?=.{1,253}\.?$)(?:(?!-|[^.]+_)[A-Za-z0-9-_]{1,63}(?<!-)(?:\.|$))+$"
URL_PATH = re.compile(r"/[!$%&()*+,\-./0-9:;=?@A-Z\[\]^_`a-z{|}~]*")
"""Printable ASCII after the leading slash, without the characters haproxy's ``uri``
argument cannot carry (space, ``#``, quotes, backslash) or a request line cannot."""
URL = re.compile(r"[!-~]+")
"""A redirect target: printable ASCII without spaces (rfc3986 checks the rest)."""
PCRE2_MISSING = re.compile(r"\\[NuU]|\(\?[a-zA-Z]*[aLu]")
"""Python-only regex syntax that PCRE2 refuses: ``\\N{...}``, ``\\u``, ``\\U`` escapes and
the ``a``, ``L``, ``u`` inline flags (approximate: a literal backslash before N, u or U is
refused too; write it as ``[\\\\]N``)."""
MAX_TIMER_SECONDS = 2_147_483
"""haproxy's timers hold at most 2147483647 ms (about 24.8 days)."""
MIN_DELAY_SECONDS = 1
"""haproxy refuses ``inter 0``: a monitor checks at most once a second."""


def _fail(reason: str) -> NoReturn:
    raise InvalidValue(reason)


def header_name(value: str, what: str = "key") -> str:
    """An HTTP header or cookie name haproxy can match (``req.hdr(...)``, ``req.cook(...)``)."""
    if not TOKEN.fullmatch(value):
        _fail(f"Invalid characters in {what}")
    return value


def cookie_name(value: str) -> str:
    """A session persistence cookie name (``res.cook(...)``, ``req.cook(...)``)."""
    if not TOKEN.fullmatch(value):
        _fail('Supplied "cookie_name" is invalid.')
    return value


def header_value(value: str, what: str) -> str:
    if not (HEADER_VALUE.fullmatch(value) or QUOTED_HEADER_VALUE.fullmatch(value)):
        _fail(f"Invalid characters in {what}")
    return value


def cookie_value(value: str, what: str) -> str:
    if not COOKIE_VALUE.fullmatch(value):
        _fail(f"Invalid characters in {what}")
    return value


def regex(value: str) -> str:
    """A regular expression that compiles in Python and in haproxy's PCRE2, on one line."""
    if CONTROL_CHARACTERS.search(value):
        _fail("Unable to parse regular expression: control characters are not allowed")
    try:
        re.compile(value)
    except re.error as exc:
        _fail(f"Unable to parse regular expression: {exc}")
    if PCRE2_MISSING.search(value):
        _fail("Unable to parse regular expression: \\N, \\u, \\U and the a, L, u flags are "
              "not supported by haproxy's PCRE2")
    return value


def distinguished_name_field(value: str) -> str:
    if not DISTINGUISHED_NAME_FIELD.fullmatch(value):
        _fail("Invalid L7 Rule: Invalid L7rule distinguished name field.")
    return value


def url_path(value: str) -> str:
    if not URL_PATH.fullmatch(value):
        _fail("Value must be a valid URL Path string")
    return value


def expected_codes(value: str) -> str:
    if not EXPECTED_CODES.fullmatch(value):
        _fail(f"Value should match the pattern {EXPECTED_CODES_PATTERN}")
    return value


def domain_name(value: str) -> str:
    if not DOMAIN_NAME.fullmatch(value):
        _fail(f"Value should match the pattern {DOMAIN_NAME_PATTERN}")
    return value


def redirect_url(value: str) -> str:
    """A redirect target haproxy can write as one word (the URL checks are the API's)."""
    if not URL.fullmatch(value):
        _fail(f"Not a valid URL: {value}")
    return value


def server_address(value: str) -> str:
    """A member's (or monitor's) address as haproxy resolves it: no IPv6 zone."""
    if "%" in value:
        _fail("an address with a zone (link-local) cannot be a member address")
    return value


def no_control_characters(value: str, what: str) -> str:
    if CONTROL_CHARACTERS.search(value):
        _fail(f"Invalid characters in {what}")
    return value


def timer_seconds(value: int, what: str, minimum: int = 0) -> int:
    """A number of seconds haproxy's timers hold."""
    if not minimum <= value <= MAX_TIMER_SECONDS:
        _fail(f"{what} must be between {minimum} and {MAX_TIMER_SECONDS} seconds")
    return value


SERVED_TLS_VERSIONS = ("TLSv1.2", "TLSv1.3")
"""The versions haproxy's OpenSSL 3 serves under Debian's default configuration
(``MinProtocol = TLSv1.2``; haproxy refuses a bind with only older ones enabled)."""


def tls_versions(values: list[str]) -> list[str]:
    """TLS versions of which haproxy can serve at least one."""
    if not any(value in SERVED_TLS_VERSIONS for value in values):
        _fail(f"None of the TLS versions {', '.join(values)} can be served; the amphora's "
              f"OpenSSL serves {', '.join(SERVED_TLS_VERSIONS)}.")
    return values


def tls_ciphers(value: str) -> str:
    """An OpenSSL cipher list haproxy's ``ciphers`` takes: at least one cipher it names
    exists in the OpenSSL haproxy uses (the system's, as Python's ``ssl``)."""
    if not value:
        _fail("Empty cipher list. Either specify at least one cipher or remove this "
              "parameter to use the default.")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ciphers(value)
    except ssl.SSLError:
        _fail(f"The cipher list {value} names no cipher that OpenSSL supports.")
    return value


# --- UDP and SCTP: served by nftables in the amphora (lbaas.amphora.udp_config) ----------

DATAGRAM_LB_ALGORITHMS = ("ROUND_ROBIN", "SOURCE_IP")
"""What nftables balances by: ``numgen inc`` and ``jhash`` of the source address (it keeps
no connection counts, so no LEAST_CONNECTIONS)."""


def datagram_protocol(protocol: str) -> str:
    """A protocol this host's kernel can serve (SCTP needs the kernel's SCTP)."""
    reason = capabilities.unserved_protocols().get(protocol)
    if reason:
        _fail(reason)
    return protocol


def datagram_algorithm(algorithm: str) -> str:
    if algorithm not in DATAGRAM_LB_ALGORITHMS:
        _fail(f"lb_algorithm {algorithm} is not served for UDP and SCTP pools (nftables "
              f"balances by {' or '.join(DATAGRAM_LB_ALGORITHMS)})")
    return algorithm


def datagram_monitor_type(monitor_type: str) -> str:
    if monitor_type not in constants.HEALTH_MONITORS_FOR_L4_DATAGRAM:
        _fail(f"a {monitor_type} health monitor is not run for UDP and SCTP pools")
    return datagram_protocol(monitor_type)


def persistence_timeout(value: int) -> int:
    """Seconds a client keeps its member (0: upstream's default, 360)."""
    if not 0 <= value <= MAX_TIMER_SECONDS:
        _fail(f"persistence_timeout must be between 0 and {MAX_TIMER_SECONDS} seconds")
    return value


def persistence_granularity(value: str) -> str:
    """An IPv4 netmask (``255.255.255.0``): clients within one such network persist
    together, as with upstream's LVS ``persistence_granularity``."""
    try:
        netmask = str(ipaddress.IPv4Network(f"0.0.0.0/{value}").netmask)
    except ValueError:
        netmask = None
    if netmask != value:  # also refuses a host mask (0.0.0.255), which ipaddress takes
        _fail(f"persistence_granularity {value!r} is not an IPv4 netmask")
    return value


def l7rule_problem(rule_type: str | None, compare_type: str | None, key: str | None,
                   value: str | None) -> str | None:
    """Why an L7 rule is inconsistent or cannot be rendered (upstream's ``l7rule_data``), or None.

    HOST_NAME and PATH take any compare type, FILE_TYPE only REGEX and EQUAL_TO; HEADER and
    COOKIE need a ``key``; SSL_CONN_HAS_CERT and SSL_VERIFY_RESULT take no key and only
    EQUAL_TO; SSL_DN_FIELD needs a distinguished-name field as its key.
    """
    try:
        _check_l7rule(rule_type, compare_type, key, value)
    except InvalidValue as exc:
        return str(exc)
    return None


def _check_l7rule(rule_type: str | None, compare_type: str | None, key: str | None,
                  value: str | None) -> None:
    if not value:
        _fail("Invalid L7 Rule: L7 rule type requires a value")
    if rule_type not in constants.L7RULE_TYPES:
        _fail("Invalid L7 Rule: invalid rule type")
    if compare_type not in constants.L7RULE_COMPARE_TYPES:
        _fail(BAD_COMPARE)
    if rule_type in (constants.L7RULE_TYPE_HEADER, constants.L7RULE_TYPE_COOKIE):
        _check_keyed(rule_type, compare_type, key, value)
    elif rule_type in SSL_TYPES:
        _check_ssl(rule_type, compare_type, key, value)
    elif compare_type == constants.L7RULE_COMPARE_TYPE_REGEX:
        regex(value)
    elif (rule_type == constants.L7RULE_TYPE_FILE_TYPE
          and compare_type != constants.L7RULE_COMPARE_TYPE_EQUAL_TO):
        _fail(BAD_COMPARE)
    else:
        header_value(value, "comparison value")


BAD_COMPARE = "Invalid L7 Rule: invalid comparison type for rule type"
SSL_TYPES = (constants.L7RULE_TYPE_SSL_CONN_HAS_CERT, constants.L7RULE_TYPE_SSL_VERIFY_RESULT,
             constants.L7RULE_TYPE_SSL_DN_FIELD)


def _check_keyed(rule_type: str, compare_type: str | None, key: str | None, value: str) -> None:
    """HEADER and COOKIE: a key in the token charset, a value in its charset or a regex."""
    if not key:
        _fail("Invalid L7 Rule: L7 rule type requires a key")
    header_name(key)
    if compare_type == constants.L7RULE_COMPARE_TYPE_REGEX:
        regex(value)
    elif rule_type == constants.L7RULE_TYPE_HEADER:
        header_value(value, "header value")
    else:
        cookie_value(value, "cookie value")


def _check_ssl(rule_type: str, compare_type: str | None, key: str | None, value: str) -> None:
    """The client-certificate rules of TERMINATED_HTTPS listeners."""
    equal_only = (f"Invalid L7 Rule: L7rule type {rule_type} only supports the "
                  f"{constants.L7RULE_COMPARE_TYPE_EQUAL_TO} compare type.")
    no_key = f'Invalid L7 Rule: L7rule type {rule_type} does not use the "key" field.'
    if rule_type == constants.L7RULE_TYPE_SSL_CONN_HAS_CERT:
        if key:
            _fail(no_key)
        if value.lower() != "true":
            _fail(f"Invalid L7 Rule: L7rule value {value} is not a boolean True string.")
        if compare_type != constants.L7RULE_COMPARE_TYPE_EQUAL_TO:
            _fail(equal_only)
        return
    if rule_type == constants.L7RULE_TYPE_SSL_VERIFY_RESULT:
        if key:
            _fail(no_key)
        if not (value.isascii() and value.isdigit()):
            _fail(f"Invalid L7 Rule: L7rule type {rule_type} needs a int value, which is >= 0")
        if compare_type != constants.L7RULE_COMPARE_TYPE_EQUAL_TO:
            _fail(equal_only)
        return
    if compare_type == constants.L7RULE_COMPARE_TYPE_REGEX:
        regex(value)
    else:
        no_control_characters(value, "comparison value")
    if not key:
        _fail(f"Invalid L7 Rule: L7rule type {rule_type} needs to specify a key and a value.")
    distinguished_name_field(key)
