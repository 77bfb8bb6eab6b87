"""The UDP (and SCTP) service of one load balancer, as a pure function of its DB objects.

haproxy does not carry datagrams; upstream serves them with keepalived's LVS, which needs
IPVS. Here the amphora's kernel serves them with nftables: DNAT to the members with
conntrack. ``render(load_balancer)`` returns what the amphora agent needs for that, as
JSON (``udp.json`` in the load balancer's directory), or None when no UDP/SCTP listener
is to be served. The agent turns it into nftables rules (``lbaas.amphora.agent.udp_rules``)
and runs the health monitors, whose results decide which members the rules send to.

What is served follows ``haproxy_config``: enabled listeners (and the default pool, if
enabled) not in ``ERROR`` or ``PENDING_DELETE``, members not in those states (a disabled
one is listed, marked, and gets no traffic), an enabled monitor. A value the data plane
cannot carry raises ``UnsupportedConfiguration`` naming the object; the API refuses the
same values with a 400 (``lbaas.validate``).
"""
from __future__ import annotations

import functools
import ipaddress

from lbaas import constants as c
from lbaas import validate
from lbaas.amphora.agent.udp_model import (
    Listener,
    Member,
    Monitor,
    Persistence,
    Pool,
    UdpService,
)
from lbaas.amphora.haproxy_config import UnsupportedConfiguration, checked
from lbaas.db import models

DATAGRAM_PROTOCOLS = (c.UDP, c.SCTP)
UNSERVED = (c.PENDING_DELETE, c.ERROR)
DEFAULT_PERSISTENCE_TIMEOUT = 360
"""Seconds, upstream's default for UDP pools (LVS ``persistence_timeout``)."""
DEFAULT_GRANULARITY = "255.255.255.255"
_checked = functools.partial(checked, refusal="cannot be served")
"""``lbaas.validate``'s check of a value, or ``UnsupportedConfiguration`` naming it."""


def _served(obj: models.StatusMixin) -> bool:
    return obj.provisioning_status not in UNSERVED


def build(load_balancer: models.LoadBalancer) -> UdpService | None:
    """The view model, or None when the load balancer has no datagram listener to serve."""
    if not load_balancer.enabled or load_balancer.provisioning_status == c.PENDING_DELETE:
        return None
    listeners = [listener for listener in load_balancer.listeners
                 if listener.protocol in DATAGRAM_PROTOCOLS and listener.enabled
                 and _served(listener)]
    if not listeners:
        return None
    vips = _vips(load_balancer)
    return UdpService(load_balancer.id, tuple(_listener(listener, vips) for listener in listeners))


def render(load_balancer: models.LoadBalancer) -> str | None:
    service = build(load_balancer)
    return service.to_json() if service else None


def _vips(load_balancer: models.LoadBalancer) -> tuple[str, ...]:
    if not load_balancer.vip_address:
        raise UnsupportedConfiguration(f"load balancer {load_balancer.id} has no VIP address")
    extra = [vip.ip_address for vip in load_balancer.additional_vips if vip.ip_address]
    return tuple(_address(address, f"load balancer {load_balancer.id}: VIP")
                 for address in (load_balancer.vip_address, *extra))


def _listener(listener: models.Listener, vips: tuple[str, ...]) -> Listener:
    where = f"listener {listener.id}"
    _checked(validate.datagram_protocol, listener.protocol, f"{where}: protocol")
    pool = listener.default_pool
    served_pool = pool if pool is not None and pool.enabled and _served(pool) else None
    limit = listener.connection_limit
    return Listener(
        id=listener.id, protocol=listener.protocol, port=listener.protocol_port, vips=vips,
        connection_limit=limit if limit is not None and limit > 0 else None,
        pool=_pool(served_pool) if served_pool is not None else None,
        allowed_cidrs=tuple(_cidr(cidr, f"{where}: allowed_cidrs")
                            for cidr in listener.allowed_cidrs or ()))


def _pool(pool: models.Pool) -> Pool:
    where = f"pool {pool.id}"
    if pool.protocol not in DATAGRAM_PROTOCOLS:
        raise UnsupportedConfiguration(f"{where}: a {pool.protocol} pool cannot serve datagrams")
    _checked(validate.datagram_protocol, pool.protocol, f"{where}: protocol")
    _checked(validate.datagram_algorithm, pool.lb_algorithm, f"{where}: lb_algorithm")
    monitor = pool.health_monitor
    served_monitor = (monitor if monitor is not None and monitor.enabled and _served(monitor)
                      else None)
    return Pool(
        id=pool.id, algorithm=pool.lb_algorithm, persistence=_persistence(pool),
        monitor=_monitor(served_monitor) if served_monitor is not None else None,
        members=tuple(_member(member) for member in pool.members if _served(member)))


def _persistence(pool: models.Pool) -> Persistence | None:
    settings = pool.session_persistence
    if not settings:
        return None
    where = f"pool {pool.id}: session persistence"
    if settings.get("type") != "SOURCE_IP":
        raise UnsupportedConfiguration(f"{where} {settings.get('type')} is not served for "
                                       "UDP and SCTP pools")
    timeout = _checked(validate.persistence_timeout, settings.get("persistence_timeout") or 0,
                       f"{where}: persistence_timeout") or DEFAULT_PERSISTENCE_TIMEOUT
    granularity = settings.get("persistence_granularity") or DEFAULT_GRANULARITY
    _checked(validate.persistence_granularity, granularity, f"{where}: persistence_granularity")
    return Persistence(timeout=int(timeout), granularity=granularity)


def _monitor(monitor: models.HealthMonitor) -> Monitor:
    where = f"health monitor {monitor.id}"
    _checked(validate.datagram_monitor_type, monitor.type, f"{where}: type")
    _checked(lambda value: validate.timer_seconds(value, "delay", validate.MIN_DELAY_SECONDS),
             monitor.delay, f"{where}: delay")
    _checked(lambda value: validate.timer_seconds(value, "timeout"), monitor.timeout,
             f"{where}: timeout")
    http = monitor.type == "HTTP"
    return Monitor(
        id=monitor.id, type=monitor.type, delay=monitor.delay, timeout=monitor.timeout,
        rise=monitor.rise_threshold, fall=monitor.fall_threshold,
        http_method=(monitor.http_method or "GET") if http else None,
        url_path=(_checked(validate.url_path, monitor.url_path or "/", f"{where}: url_path")
                  if http else None),
        expected_codes=(_checked(validate.expected_codes, monitor.expected_codes or "200",
                                 f"{where}: expected_codes") if http else None),
        http_version=f"{monitor.http_version:.1f}" if http and monitor.http_version else None,
        domain_name=(_checked(validate.domain_name, monitor.domain_name, f"{where}: domain_name")
                     if http and monitor.domain_name else None))


def _member(member: models.Member) -> Member:
    where = f"member {member.id}"
    return Member(
        id=member.id, address=_address(member.ip_address, f"{where}: address"),
        port=member.protocol_port, weight=member.weight, enabled=bool(member.enabled),
        backup=bool(member.backup),
        monitor_address=(_address(member.monitor_address, f"{where}: monitor_address")
                         if member.monitor_address else None),
        monitor_port=member.monitor_port)


def _address(value: str | None, what: str) -> str:
    """A plain IP address (no zone, no name): nftables and the monitors take it as is."""
    try:
        return str(ipaddress.ip_address(value or ""))
    except ValueError as exc:
        raise UnsupportedConfiguration(f"{what} {value!r} is not an IP address") from exc


def _cidr(value: str, what: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError as exc:
        raise UnsupportedConfiguration(f"{what} {value!r} is not a CIDR") from exc
