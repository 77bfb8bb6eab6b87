"""``/v2/lbaas/listeners``: the front ends of a load balancer, and their statistics.

Certificate references (``default_tls_container_ref``, ``sni_container_refs``,
``client_ca_tls_container_ref``, ``client_crl_container_ref``) are read through the
certificate manager when set (lbaas.api.certificates).
"""
from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from lbaas import constants, validate
from lbaas.api import certificates, faults, resource
from lbaas.api.common import (
    ApiState,
    apply_changes,
    check_quota,
    context,
    get_or_404,
    get_subresource,
    in_event_loop,
    list_objects,
    lock_load_balancer,
    show_object,
    state,
    submit_change,
)
from lbaas.api.context import RequestContext
from lbaas.api.pool import (
    DATAGRAM_PROTOCOLS,
    AlpnProtocol,
    CertRef,
    Ciphers,
    TlsVersion,
    check_protocols,
    check_tls_options,
)
from lbaas.api.resource import Api, Out, SentProjectId, as_dict, as_list, text
from lbaas.api.stats import statistics
from lbaas.api.types import (
    MAX_DB_INTEGER,
    Cidr,
    Description,
    Name,
    OneOf,
    Port,
    Schema,
    Tags,
    Uuid,
)
from lbaas.config import Settings
from lbaas.db.models import Listener, LoadBalancer, Pool

router = APIRouter(prefix="/lbaas/listeners", tags=["listeners"])
RESOURCE = "Listener"

ListenerProtocol = Annotated[str, OneOf(constants.LISTENER_PROTOCOLS)]
ConnectionLimit = Annotated[int, Field(ge=-1, le=MAX_DB_INTEGER)]
Timeout = Annotated[int, Field(ge=0, le=constants.MAX_TIMEOUT_MS)]
HeaderValue = Annotated[str, StringConstraints(max_length=255)]
ClientAuthentication = Annotated[str, OneOf(constants.CLIENT_AUTH_MODES)]
HstsMaxAge = Annotated[int, Field(ge=0, le=MAX_DB_INTEGER)]

HEADER_INSERTION_PROTOCOLS = (constants.HTTP, constants.TERMINATED_HTTPS)


class ListenerFields(Schema):
    """A listener's settings: the part of every body that creates a listener."""

    name: Annotated[Name | None, Api(out=text)] = None
    description: Annotated[Description | None, Api(out=text)] = None
    admin_state_up: Annotated[bool, Api(column="enabled")] = True
    protocol: Annotated[ListenerProtocol, Api(update=False)]
    protocol_port: Annotated[Port, Api(update=False)]
    connection_limit: ConnectionLimit = -1
    default_tls_container_ref: Annotated[CertRef | None, Api(column="tls_certificate_id")] = None
    sni_container_refs: Annotated[list[CertRef] | None, Api(out=as_list)] = None
    default_pool_id: Uuid | None = None
    insert_headers: Annotated[dict[str, HeaderValue] | None, Api(out=as_dict)] = None
    timeout_client_data: Timeout | None = None
    timeout_member_connect: Timeout | None = None
    timeout_member_data: Timeout | None = None
    timeout_tcp_inspect: Timeout | None = None
    tags: Tags | None = None
    client_ca_tls_container_ref: Annotated[
        CertRef | None, Api(column="client_ca_tls_certificate_id")] = None
    client_authentication: ClientAuthentication = "NONE"
    client_crl_container_ref: Annotated[
        CertRef | None, Api(column="client_crl_container_id")] = None
    # Upstream shows no CIDRs as null, not [].
    allowed_cidrs: Annotated[list[Cidr] | None, Api(out=lambda cidrs: list(cidrs or []) or None)] \
        = None
    tls_ciphers: Ciphers | None = None
    tls_versions: list[TlsVersion] | None = None
    alpn_protocols: list[AlpnProtocol] | None = None
    hsts_max_age: HstsMaxAge | None = None
    hsts_include_subdomains: bool = False
    hsts_preload: bool = False


class ListenerPOST(ListenerFields):
    loadbalancer_id: Annotated[Uuid, Api(column="load_balancer_id", update=False, shown=False)]
    project_id: SentProjectId = None


class ListenerRootPOST(Schema):
    listener: ListenerPOST


LISTENER = resource.Resource(
    "listener", Listener, ListenerPOST,
    outputs=(*resource.LIFECYCLE,
             Out("l7policies", list[resource.Ref], resource.refs("l7policies")),
             Out("loadbalancers", list[resource.Ref], resource.ref("load_balancer_id"))))
to_api = LISTENER.to_api


class StatisticsResponse(BaseModel):
    bytes_in: int
    bytes_out: int
    active_connections: int
    total_connections: int
    request_errors: int


class StatisticsRootResponse(BaseModel):
    stats: StatisticsResponse


# --- Rules --------------------------------------------------------------------------------

def terminates_tls(protocol: str) -> bool:
    return protocol == constants.TERMINATED_HTTPS


def _check_insert_headers(headers: dict[str, str], protocol: str) -> None:
    if not headers:
        return
    if protocol not in HEADER_INSERTION_PROTOCOLS:
        raise faults.InvalidOption(value="insert-headers",
                                   option=f"a {protocol} protocol listener.")
    unknown = [name for name in headers
               if name not in constants.INSERT_HEADERS_HTTP + constants.INSERT_HEADERS_TLS]
    if unknown:
        raise faults.InvalidOption(value=", ".join(unknown), option="insert_headers")
    client_cert_headers = [name for name in headers if name in constants.INSERT_HEADERS_TLS]
    if client_cert_headers and not terminates_tls(protocol):
        raise faults.InvalidOption(value=", ".join(client_cert_headers),
                                   option=f"{protocol} protocol listener.")


def _check_protocol_enabled(protocol: str, settings: Settings) -> None:
    api = settings.api_settings
    if ((protocol == constants.TERMINATED_HTTPS and not api.allow_tls_terminated_listeners)
            or (protocol == constants.PROMETHEUS and not api.allow_prometheus_listeners)):
        raise faults.DisabledOption(option="protocol", value=protocol)


def _check_certificates(spec: ListenerFields) -> None:
    """Which certificate references a listener needs, and which it may not have."""
    has_cert = bool(spec.default_tls_container_ref or spec.sni_container_refs)
    has_refs = has_cert or bool(spec.client_ca_tls_container_ref)
    if has_refs and spec.protocol in DATAGRAM_PROTOCOLS:
        raise faults.ValidationException(
            detail=f"{spec.protocol} protocol listener does not support TLS.")
    if has_refs and not terminates_tls(spec.protocol):
        raise faults.ValidationException(
            detail="Certificate container references are only allowed on TERMINATED_HTTPS "
                   "protocol listeners.")
    if spec.client_ca_tls_container_ref and not has_cert:
        raise faults.ValidationException(
            detail="An SNI or default certificate container reference must be provided with "
                   "a client CA container reference.")
    if terminates_tls(spec.protocol) and not has_cert:
        raise faults.ValidationException(
            detail="An SNI or default certificate container reference must be provided for "
                   "TERMINATED_HTTPS protocol listeners.")
    _check_client_authentication(spec)


def _check_client_authentication(spec: ListenerFields) -> None:
    if spec.client_authentication != "NONE" and not spec.client_ca_tls_container_ref:
        raise faults.ValidationException(
            detail=f"Client authentication setting {spec.client_authentication} requires a "
                   "client CA container reference.")
    if spec.client_crl_container_ref and not spec.client_ca_tls_container_ref:
        raise faults.ValidationException(
            detail="A client authentication CA reference is required to specify a client "
                   "authentication revocation list.")


def _check_port_free(spec: ListenerFields, lb: LoadBalancer, listener_id: str | None) -> None:
    """One L4 port space per load balancer: TCP-based protocols share one; UDP, SCTP own one."""
    space = constants.L4_PROTOCOL_MAP[spec.protocol]
    for other in lb.listeners:
        # ``other`` may be a listener of the same request, not yet flushed (id None).
        if ((listener_id is None or other.id != listener_id)
                and other.protocol_port == spec.protocol_port
                and constants.L4_PROTOCOL_MAP[other.protocol] == space):
            raise faults.DuplicateListenerEntry(protocol=other.protocol, port=spec.protocol_port)


def _check_allowed_cidrs(cidrs: list[str], lb: LoadBalancer) -> None:
    """Each CIDR must be of the IP family of at least one of the load balancer's VIPs."""
    if not cidrs:
        return
    if lb.vip_sg_ids:
        raise faults.ValidationException(
            detail="Allowed CIDRs are not allowed when using custom VIP Security Groups.")
    vips = [address for address in (lb.vip_address, *(vip.ip_address for vip in lb.additional_vips))
            if address]
    families = {ipaddress.ip_address(address).version for address in vips}
    for cidr in cidrs:
        if families and ipaddress.ip_network(cidr).version not in families:
            raise faults.ValidationException(
                detail=f"CIDR {cidr} IP version incompatible with all VIPs "
                       f"{', '.join(vips)} IP version.")


def _check_hsts(spec: ListenerFields) -> None:
    if (spec.hsts_include_subdomains or spec.hsts_preload) and spec.hsts_max_age is None:
        raise faults.ValidationException(
            detail="HSTS configuration options hsts_include_subdomains and hsts_preload only "
                   "make sense if hsts_max_age is set as well.")
    if spec.hsts_max_age is not None and not terminates_tls(spec.protocol):
        raise faults.ValidationException(
            detail="The HSTS feature can only be used for listeners using the TERMINATED_HTTPS "
                   "protocol.")


def validate_listener(spec: ListenerFields, lb: LoadBalancer, settings: Settings,
                      listener_id: str | None = None) -> None:
    """Upstream's rules for a listener's settings on ``lb`` (create and update, defaults applied).

    ``listener_id`` is the listener being updated, which does not conflict with itself.
    The default pool is checked by ``default_pool``.
    """
    _check_insert_headers(spec.insert_headers or {}, spec.protocol)
    _check_protocol_enabled(spec.protocol, settings)
    _check_certificates(spec)
    _check_port_free(spec, lb, listener_id)
    _check_allowed_cidrs(spec.allowed_cidrs or [], lb)
    check_tls_options(spec.tls_ciphers, spec.tls_versions, spec.alpn_protocols,
                      terminates_tls(spec.protocol), settings)
    _check_hsts(spec)
    _check_served(spec.protocol)



def _check_served(protocol: str) -> None:
    """Last: a valid listener this host cannot serve (SCTP without the kernel's) is a 400."""
    try:
        validate.datagram_protocol(protocol)
    except validate.InvalidValue as exc:
        raise faults.DisabledOption(option="protocol", value=f"{protocol} ({exc})") from exc

def default_pool(session: Session, lb: LoadBalancer, pool_id: str, protocol: str) -> Pool:
    """Pool ``pool_id`` as the default pool of a ``protocol`` listener on ``lb``.

    As upstream: 404 unless the pool is on ``lb``; 400 if the protocols do not fit.
    """
    pool = session.get(Pool, pool_id)
    if pool is None or pool.load_balancer_id != lb.id:
        raise faults.NotFound(resource="Pool", id=pool_id)
    check_protocols(protocol, pool.protocol)
    return pool


def with_defaults(spec: ListenerFields, settings: Settings) -> ListenerFields:
    """``spec`` with every unset (None) setting at its default.

    Timeouts come from ``[haproxy_amphora]``; a TLS-terminating listener's ciphers, TLS
    versions and ALPN protocols from ``[api_settings] default_listener_*``.
    """
    haproxy, api = settings.haproxy_amphora, settings.api_settings
    defaults: dict[str, Any] = {
        "admin_state_up": True, "connection_limit": -1, "client_authentication": "NONE",
        "timeout_client_data": haproxy.timeout_client_data,
        "timeout_member_connect": haproxy.timeout_member_connect,
        "timeout_member_data": haproxy.timeout_member_data,
        "timeout_tcp_inspect": haproxy.timeout_tcp_inspect,
        "hsts_include_subdomains": False, "hsts_preload": False,
        "tags": [], "insert_headers": {}, "sni_container_refs": [], "allowed_cidrs": [],
    }
    if terminates_tls(spec.protocol):
        defaults.update(tls_ciphers=api.default_listener_ciphers,
                        tls_versions=list(api.default_listener_tls_versions),
                        alpn_protocols=list(api.default_listener_alpn_protocols))
    return spec.model_copy(update={key: value for key, value in defaults.items()
                                   if getattr(spec, key) is None})


def _store(listener: Listener, spec: ListenerFields) -> None:
    """Write the settings to the row; the default pool is set by the caller."""
    values = {name: getattr(spec, name) for name in ListenerFields.model_fields
              if name != "default_pool_id"}
    values["sni_container_refs"] = list(dict.fromkeys(spec.sni_container_refs or []))
    values["allowed_cidrs"] = list(dict.fromkeys(spec.allowed_cidrs or []))
    apply_changes(listener, values, LISTENER.renames)


def new_listener(spec: ListenerFields, lb: LoadBalancer, settings: Settings) -> Listener:
    """A validated listener on ``lb`` in PENDING_CREATE / OFFLINE, added to ``lb.listeners``.

    Its default pool is left to the caller (``default_pool`` or a pool created with it).
    """
    spec = with_defaults(spec, settings)
    validate_listener(spec, lb, settings)
    listener = Listener(load_balancer=lb, project_id=lb.project_id,
                        provisioning_status=constants.PENDING_CREATE,
                        operating_status=constants.OFFLINE)
    _store(listener, spec)
    return listener


def _updated_spec(listener: Listener, sent: dict[str, Any], settings: Settings) -> ListenerFields:
    """The listener's settings after a PUT: sent fields over current ones, ``null`` -> default."""
    values = {name: getattr(listener, LISTENER.renames.get(name, name))
              for name in ListenerFields.model_fields}
    values.update(sent)
    return with_defaults(ListenerFields.model_construct(**values), settings)


# --- Handlers -----------------------------------------------------------------------------

@router.post("", status_code=201, summary="Create a listener",
             response_model=LISTENER.response_root, response_model_exclude_unset=True)
def create(body: ListenerRootPOST, api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Any:
    spec = body.listener
    with api.db.write() as session:
        lb = get_subresource(session, LoadBalancer, spec.loadbalancer_id, "Load Balancer", ctx)
        check_quota(session, api.settings, lb.project_id, {"listener": 1})
        lock_load_balancer(session, lb.id)
        pool = (default_pool(session, lb, spec.default_pool_id, spec.protocol)
                if spec.default_pool_id else None)
        listener = new_listener(spec, lb, api.settings)
        certificates.check_listener(listener, api.cert_manager, ctx)
        listener.default_pool = pool
        session.add(listener)
        session.flush()
        submit_change(session, lb.id, listener=[listener.id])
        result = {"listener": to_api(listener)}
    api.wakeup.notify()
    return result


@router.get("", summary="List listeners",
            response_model=LISTENER.list_root, response_model_exclude_unset=True)
@in_event_loop
def list_all(request: Request, api: ApiState = Depends(state),
             ctx: RequestContext = Depends(context)) -> Any:
    return list_objects(request, api, ctx, select(Listener), LISTENER.collection, to_api)


@router.get("/{listener_id}", summary="Show a listener",
            response_model=LISTENER.response_root, response_model_exclude_unset=True)
@in_event_loop
def show(listener_id: str, request: Request, api: ApiState = Depends(state),
         ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        listener = get_or_404(session, Listener, listener_id, RESOURCE, ctx)
        return show_object(request, api, "listener", to_api(listener))


@router.put("/{listener_id}", summary="Update a listener",
            response_model=LISTENER.response_root, response_model_exclude_unset=True)
def update(listener_id: str, body: LISTENER.put_root,  # type: ignore[name-defined]
           api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Any:
    with api.db.write() as session:
        listener = get_or_404(session, Listener, listener_id, RESOURCE, ctx)
        lb = listener.load_balancer
        sent = body.listener.model_dump(exclude_unset=True)
        spec = _updated_spec(listener, sent, api.settings)
        lock_load_balancer(session, lb.id)
        if "default_pool_id" in sent:
            listener.default_pool = (default_pool(session, lb, spec.default_pool_id, spec.protocol)
                                     if spec.default_pool_id else None)
        validate_listener(spec, lb, api.settings, listener.id)
        before = certificates.listener_refs(listener)
        _store(listener, spec)
        certificates.check_listener(listener, api.cert_manager, ctx, before)
        listener.provisioning_status = constants.PENDING_UPDATE
        session.flush()
        submit_change(session, lb.id, listener=[listener.id])
        result = {"listener": to_api(listener)}
    api.wakeup.notify()
    return result


@router.delete("/{listener_id}", status_code=204, summary="Delete a listener")
def delete(listener_id: str, api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Response:
    """The listener's default pool stays: pools belong to the load balancer."""
    with api.db.write() as session:
        listener = get_or_404(session, Listener, listener_id, RESOURCE, ctx)
        lock_load_balancer(session, listener.load_balancer_id)
        listener.provisioning_status = constants.PENDING_DELETE
        submit_change(session, listener.load_balancer_id, listener=[listener.id])
    api.wakeup.notify()
    return Response(status_code=204)


@router.get("/{listener_id}/stats", summary="Show a listener's statistics",
            responses={200: {"model": StatisticsRootResponse}})
@in_event_loop
def stats(listener_id: str, api: ApiState = Depends(state),
          ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        get_or_404(session, Listener, listener_id, RESOURCE, ctx)
        return {"stats": statistics(session, [listener_id])}
