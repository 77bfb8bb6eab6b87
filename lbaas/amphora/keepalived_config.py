"""The keepalived configuration of one amphora of an ACTIVE_STANDBY pair, as a pure function.

``render(load_balancer, amphora, options)`` returns ``keepalived.conf``: one VRRP instance
holding the load balancer's VIP on the amphora's VIP interface, talking unicast VRRP to the
other amphorae of the load balancer (as upstream's ``keepalived_base.template``), with a
check script that fails the instance when haproxy stops serving, ``nopreempt`` and
gratuitous ARPs when becoming MASTER and every ``garp_refresh_interval`` seconds after.

Two differences from upstream, both deliberate:

* both amphorae start in state BACKUP (keepalived ignores ``nopreempt`` on an instance
  starting as MASTER); the priorities (MASTER 100, BACKUP 90) decide the first MASTER, and
  a replacement amphora never takes the VIP from the one serving;
* a fractional ``advert_int`` needs VRRPv3, which has no authentication (keepalived
  ignores it): the instance then uses version 3 and, like every instance here, accepts
  adverts only from its unicast peers (``check_unicast_src``). A whole number keeps
  VRRPv2 with PASS authentication, as upstream. IPv6 VIPs always use VRRPv3.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from lbaas import constants as c
from lbaas.amphora import jinja
from lbaas.config import KeepalivedVrrp
from lbaas.db import models

VRRP_ID = 1
"""Every pair uses virtual router id 1, as upstream: adverts are unicast to the peers."""
TAKEOVER_PRIORITY = 150
"""A failover moving the VIP off a serving amphora renders its peer with this priority
and without ``nopreempt``: the peer preempts at once, and the old MASTER yields to the
higher priority, so the VIP moves with one advert and one gratuitous ARP."""
MAX_ADVERT_INT = {2: 255.0, 3: 40.95}


class InvalidVrrpConfiguration(ValueError):
    """The amphora or the options cannot make a VRRP instance; the message says why."""


@dataclass(frozen=True)
class VrrpOptions:
    """What the configuration depends on besides the load balancer and the amphora."""

    check_script: str
    """The amphora's check script (exit 0: haproxy serves every load balancer it has)."""
    auth_pass: str
    """The pair's VRRP password (VRRPv2 PASS authentication: at most 8 characters)."""
    vrrp: KeepalivedVrrp = field(default_factory=KeepalivedVrrp)
    """``[keepalived_vrrp]``: intervals and counts."""


@dataclass(frozen=True)
class VrrpInstance:
    """The view model of ``render``: every value the template writes, resolved."""

    load_balancer_id: str
    amphora_id: str
    name: str
    interface: str
    router_id: int
    priority: int
    version: int
    advert_int: str
    auth_pass: str | None
    source_ip: str
    peers: tuple[str, ...]
    vip: str
    preempt: bool
    options: VrrpOptions


def render(load_balancer: models.LoadBalancer, amphora: models.Amphora,
           options: VrrpOptions, *, takeover: bool = False) -> str:
    """The text of keepalived.conf for ``amphora`` of ``load_balancer``; with ``takeover``
    the amphora takes the VIP from its peer (see ``TAKEOVER_PRIORITY``)."""
    return jinja.template("keepalived.conf.j2").render(
        instance=build(load_balancer, amphora, options, takeover=takeover))


def peers_of(load_balancer: models.LoadBalancer, amphora: models.Amphora) -> tuple[str, ...]:
    """The VRRP addresses of the load balancer's other amphorae that are not deleted.

    An amphora being replaced stays a peer until it is gone, so that while a replacement
    starts it hears the MASTER and stays BACKUP."""
    return tuple(sorted(
        other.vrrp_ip for other in load_balancer.amphorae
        if other.id != amphora.id and other.vrrp_ip and other.status != c.DELETED))


def _advert_int(value: float, version: int) -> str:
    centiseconds = round(value * 100)
    if value <= 0 or abs(centiseconds - value * 100) > 1e-6 or value > MAX_ADVERT_INT[version]:
        raise InvalidVrrpConfiguration(
            f"[keepalived_vrrp] vrrp_advert_int = {value}: VRRPv{version} needs a multiple of "
            f"{'1 s' if version == 2 else '0.01 s'} between "
            f"{'1' if version == 2 else '0.01'} and {MAX_ADVERT_INT[version]:g} s")
    return f"{value:g}"


def check_settings(settings: KeepalivedVrrp) -> None:
    """Refuse ``[keepalived_vrrp]`` values keepalived would reject (at start, not per LB)."""
    version = 2 if float(settings.vrrp_advert_int).is_integer() else 3
    _advert_int(float(settings.vrrp_advert_int), version)
    for name in ("vrrp_check_interval", "vrrp_fail_count", "vrrp_success_count",
                 "vrrp_garp_refresh_interval", "vrrp_garp_refresh_count"):
        if getattr(settings, name) < 1:
            raise InvalidVrrpConfiguration(f"[keepalived_vrrp] {name} must be at least 1")


def build(load_balancer: models.LoadBalancer, amphora: models.Amphora,
          options: VrrpOptions, *, takeover: bool = False) -> VrrpInstance:
    if not (amphora.vrrp_ip and amphora.vrrp_interface and amphora.vrrp_priority):
        raise InvalidVrrpConfiguration(
            f"amphora {amphora.id} has no VRRP address, interface or priority yet")
    if not load_balancer.vip_address:
        raise InvalidVrrpConfiguration(f"load balancer {load_balancer.id} has no VIP address")
    ipv6 = ipaddress.ip_address(load_balancer.vip_address).version == 6
    advert_int = float(options.vrrp.vrrp_advert_int)
    whole = advert_int.is_integer()
    version = 2 if whole and not ipv6 else 3
    if version == 2 and not (options.auth_pass.isalnum() and len(options.auth_pass) <= 8):
        raise InvalidVrrpConfiguration("a VRRP PASS password is 1 to 8 letters or digits")
    return VrrpInstance(
        load_balancer_id=load_balancer.id,
        amphora_id=amphora.id,
        name=load_balancer.id.replace("-", ""),
        interface=amphora.vrrp_interface,
        router_id=amphora.vrrp_id or VRRP_ID,
        priority=TAKEOVER_PRIORITY if takeover else amphora.vrrp_priority,
        version=version,
        advert_int=_advert_int(advert_int, version),
        auth_pass=options.auth_pass if version == 2 else None,
        source_ip=amphora.vrrp_ip,
        peers=peers_of(load_balancer, amphora),
        vip=f"{load_balancer.vip_address}/{128 if ipv6 else 32}",
        preempt=takeover,
        options=options,
    )
