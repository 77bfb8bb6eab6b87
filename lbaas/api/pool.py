"""``/v2/lbaas/pools``: the back-end pools of a load balancer.

A pool is created on a load balancer (``loadbalancer_id``) or as a listener's default
pool (``listener_id``). Certificate references (``tls_container_ref``,
``ca_tls_container_ref``, ``crl_container_ref``) are read through the certificate manager
when set (lbaas.api.certificates).

The TLS option checks and the listener/pool protocol check live here because listeners
use them too.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import StringConstraints
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
    lock_parents,
    show_object,
    state,
    submit_change,
)
from lbaas.api.context import RequestContext
from lbaas.api.resource import Api, Out, SentProjectId, text
from lbaas.api.types import Description, IPAddress, Name, OneOf, Schema, Tags, Uuid
from lbaas.config import Settings
from lbaas.db.models import Listener, LoadBalancer, Pool

router = APIRouter(prefix="/lbaas/pools", tags=["pools"])
RESOURCE = "Pool"

# Shared with listeners.
DATAGRAM_PROTOCOLS = (constants.UDP, constants.SCTP)
CertRef = Annotated[str, StringConstraints(max_length=255)]
Ciphers = Annotated[str, StringConstraints(max_length=2048, pattern=r"^[A-Za-z0-9\-+!:@=_.]*$")]
TlsVersion = Annotated[str, StringConstraints(max_length=32)]
AlpnProtocol = Annotated[str, OneOf(constants.ALPN_PROTOCOLS)]

PoolProtocol = Annotated[str, OneOf(constants.POOL_PROTOCOLS)]
LbAlgorithm = Annotated[str, OneOf(constants.LB_ALGORITHMS)]
PersistenceType = Annotated[str, OneOf(constants.SESSION_PERSISTENCE_TYPES)]

class SessionPersistencePUT(Schema):
    type: PersistenceType | None = None
    cookie_name: Annotated[str, StringConstraints(max_length=255)] | None = None
    persistence_timeout: int | None = None
    persistence_granularity: IPAddress | None = None


class SessionPersistencePOST(SessionPersistencePUT):
    type: PersistenceType


class PoolOptions(Schema):
    """A pool's settings but its protocol and algorithm (which a pool named in a load
    balancer's create may leave out, to refer to a pool defined there)."""

    name: Annotated[Name | None, Api(out=text)] = None
    description: Annotated[Description | None, Api(out=text)] = None
    admin_state_up: Annotated[bool, Api(column="enabled")] = True
    session_persistence: Annotated[SessionPersistencePOST | None, Api(
        put=SessionPersistencePUT | None, shown_as=dict[str, Any] | None)] = None
    tls_enabled: bool = False
    tls_container_ref: Annotated[CertRef | None, Api(column="tls_certificate_id")] = None
    ca_tls_container_ref: Annotated[CertRef | None, Api(column="ca_tls_certificate_id")] = None
    crl_container_ref: Annotated[CertRef | None, Api(column="crl_container_id")] = None
    tls_ciphers: Ciphers | None = None
    tls_versions: list[TlsVersion] | None = None
    alpn_protocols: list[AlpnProtocol] | None = None
    tags: Tags | None = None


class PoolFields(PoolOptions):
    """A pool's settings: the part of every body that creates a pool."""

    protocol: Annotated[PoolProtocol, Api(update=False)]
    # A PUT's ``null`` is rejected: an algorithm has no default to go back to.
    lb_algorithm: Annotated[LbAlgorithm, Api(
        put=Annotated[str | None, OneOf(constants.LB_ALGORITHMS)])]


class PoolPOST(PoolFields):
    loadbalancer_id: Annotated[Uuid | None, Api(column="load_balancer_id", update=False,
                                                 shown=False)] = None
    listener_id: Annotated[Uuid | None, Api(update=False, shown=False, filter=False)] = None
    project_id: SentProjectId = None


class PoolRootPOST(Schema):
    pool: PoolPOST


def _health_monitor_id(pool: Pool) -> str | None:
    return pool.health_monitor.id if pool.health_monitor else None


POOL = resource.Resource(
    "pool", Pool, PoolPOST,
    outputs=(*resource.LIFECYCLE,
             Out("loadbalancers", list[resource.Ref], resource.ref("load_balancer_id")),
             Out("listeners", list[resource.Ref], resource.refs("listeners")),
             # Absent from a create's response (as upstream), null when there is none.
             Out("healthmonitor_id", str | None, _health_monitor_id),
             Out("members", list[resource.Ref], resource.refs("members"))))
to_api = POOL.to_api


# --- Checks shared with listeners -------------------------------------------------------

def check_protocols(listener_protocol: str, pool_protocol: str) -> None:
    """400 unless a ``listener_protocol`` listener can use a ``pool_protocol`` pool."""
    if listener_protocol == constants.PROMETHEUS:
        raise faults.ListenerNoChildren(protocol=listener_protocol)
    if pool_protocol not in constants.VALID_LISTENER_POOL_PROTOCOL_MAP[listener_protocol]:
        raise faults.ValidationException(
            detail=f"The pool protocol '{pool_protocol}' is invalid while the listener "
                   f"protocol is '{listener_protocol}'.")


def check_tls_options(ciphers: str | None, versions: list[str] | None,
                      alpn_protocols: list[str] | None, uses_tls: bool,
                      settings: Settings) -> None:
    """Upstream's cipher, TLS version and ALPN checks; the lists only matter where TLS is used."""
    _check_ciphers(ciphers, settings)
    if uses_tls:
        _check_tls_versions(versions or [], settings)
        if not alpn_protocols:
            raise faults.ValidationException(
                detail="Empty ALPN protocol list. Either specify at least one ALPN protocol "
                       "or remove this parameter to use the default.")


def _check_ciphers(ciphers: str | None, settings: Settings) -> None:
    if ciphers is not None:
        try:
            validate.tls_ciphers(ciphers)
        except validate.InvalidValue as exc:
            raise faults.ValidationException(detail=str(exc)) from exc
    prohibited = set(settings.api_settings.tls_cipher_prohibit_list.split(":")) - {""}
    rejected = [cipher for cipher in (ciphers or "").split(":") if cipher in prohibited]
    if rejected:
        raise faults.ValidationException(
            detail="The following ciphers have been prohibited by an administrator: "
                   + ", ".join(rejected))


def _check_tls_versions(versions: list[str], settings: Settings) -> None:
    if not versions:
        raise faults.ValidationException(
            detail="Empty TLS version list. Either specify at least one TLS version or "
                   "remove this parameter to use the default.")
    invalid = [version for version in versions if version not in constants.TLS_VERSIONS]
    if invalid:
        raise faults.ValidationException(detail=f"Invalid TLS versions: {', '.join(invalid)}")
    try:
        validate.tls_versions(versions)
    except validate.InvalidValue as exc:
        raise faults.ValidationException(detail=str(exc)) from exc
    minimum = settings.api_settings.minimum_tls_version
    if minimum:
        floor = constants.TLS_VERSIONS.index(minimum)
        too_old = [v for v in versions if constants.TLS_VERSIONS.index(v) < floor]
        if too_old:
            raise faults.ValidationException(
                detail="Requested TLS versions are less than the minimum: "
                       f"{', '.join(too_old)} < {minimum}")


# --- Pool rules ---------------------------------------------------------------------------

def check_session_persistence(persistence: SessionPersistencePUT | None, protocol: str) -> None:
    """Upstream's session persistence rules for a pool of ``protocol``."""
    if persistence is None:
        return
    kind, cookie = persistence.type, persistence.cookie_name
    if kind is None:
        raise faults.ValidationException(detail="Invalid session_persistence provided.")
    if protocol in DATAGRAM_PROTOCOLS:
        _check_datagram_persistence(kind, cookie)
    elif persistence.persistence_timeout or persistence.persistence_granularity:
        raise faults.ValidationException(
            detail="persistence_timeout and persistence_granularity is only for UDP and SCTP "
                   "protocol pools.")
    if cookie and kind != "APP_COOKIE":
        raise faults.ValidationException(
            detail='Field "cookie_name" can only be specified with session persistence of '
                   'type "APP_COOKIE".')
    if cookie:
        try:
            validate.cookie_name(cookie)
        except validate.InvalidValue as exc:
            raise faults.ValidationException(detail=str(exc)) from exc
    if kind == "APP_COOKIE" and not cookie:
        raise faults.ValidationException(
            detail='Field "cookie_name" must be specified when using the "APP_COOKIE" '
                   'session persistence type.')


def _check_datagram_persistence(kind: str, cookie: str | None) -> None:
    if kind == "SOURCE_IP" and cookie:
        raise faults.ValidationException(
            detail="session_persistence SOURCE_IP type for UDP and SCTP protocols only "
                   "accepts: type, persistence_timeout, persistence_granularity.")
    if cookie:
        raise faults.ValidationException(
            detail="Cookie names are not supported for UDP/SCTP pools.")
    if kind != "SOURCE_IP":
        raise faults.ValidationException(
            detail=f"Session persistence of type {kind} is not supported for UDP/SCTP "
                   "protocol pools.")


def check_algorithm(algorithm: str, lb: LoadBalancer) -> None:
    """The amphora provider cannot balance by SOURCE_IP_PORT (501, as upstream's driver)."""
    if algorithm not in constants.AMPHORA_SUPPORTED_LB_ALGORITHMS:
        raise faults.ProviderUnsupportedOption(
            prov=lb.provider or constants.AMPHORA_PROVIDER,
            user_msg=f"Amphora provider does not support {algorithm} algorithm.")


def validate_pool(spec: PoolFields, lb: LoadBalancer, settings: Settings) -> None:
    """Upstream's rules for a pool's settings on ``lb`` (create and update, defaults applied)."""
    check_session_persistence(spec.session_persistence, spec.protocol)
    if spec.tls_enabled and spec.protocol in DATAGRAM_PROTOCOLS:
        # keepalived's LVS forwards datagrams as they are: it could not re-encrypt.
        raise faults.ValidationException(
            detail=f"{spec.protocol} protocol pool does not support TLS.")
    if spec.crl_container_ref and not spec.ca_tls_container_ref:
        raise faults.ValidationException(
            detail="A CA certificate reference is required to specify a revocation list.")
    check_tls_options(spec.tls_ciphers, spec.tls_versions, spec.alpn_protocols,
                      spec.tls_enabled, settings)
    check_algorithm(spec.lb_algorithm, lb)
    if spec.protocol in DATAGRAM_PROTOCOLS:  # last: valid, but can nftables serve it?
        try:
            _check_datagram_served(spec)
        except validate.InvalidValue as exc:
            raise faults.ValidationException(detail=f"{exc}.") from exc


def _check_datagram_served(spec: PoolFields) -> None:
    """What nftables in the amphora can do: the protocol (SCTP needs the kernel's), the
    algorithm, persistence by netmask."""
    validate.datagram_protocol(spec.protocol)
    validate.datagram_algorithm(spec.lb_algorithm)
    persistence = spec.session_persistence
    if persistence is not None and persistence.persistence_timeout is not None:
        validate.persistence_timeout(persistence.persistence_timeout)
    if persistence is not None and persistence.persistence_granularity:
        validate.persistence_granularity(str(persistence.persistence_granularity))


def with_defaults(spec: PoolFields, settings: Settings) -> PoolFields:
    """``spec`` with every unset (None) setting at its default; TLS ones if TLS is enabled."""
    api = settings.api_settings
    defaults: dict[str, Any] = {"admin_state_up": True, "tls_enabled": False, "tags": []}
    if spec.tls_enabled:
        defaults.update(tls_ciphers=api.default_pool_ciphers,
                        tls_versions=list(api.default_pool_tls_versions),
                        alpn_protocols=list(api.default_pool_alpn_protocols))
    return spec.model_copy(update={key: value for key, value in defaults.items()
                                   if getattr(spec, key) is None})


def _store(pool: Pool, spec: PoolFields) -> None:
    values = {name: getattr(spec, name) for name in PoolFields.model_fields}
    persistence = spec.session_persistence
    values["session_persistence"] = persistence.model_dump() if persistence else None
    apply_changes(pool, values, POOL.renames)


def new_pool(spec: PoolFields, lb: LoadBalancer, settings: Settings) -> Pool:
    """A validated pool of ``lb`` in PENDING_CREATE / OFFLINE, added to ``lb.pools``."""
    spec = with_defaults(spec, settings)
    validate_pool(spec, lb, settings)
    pool = Pool(load_balancer=lb, project_id=lb.project_id,
                provisioning_status=constants.PENDING_CREATE,
                operating_status=constants.OFFLINE)
    _store(pool, spec)
    return pool


def _updated_spec(pool: Pool, sent: dict[str, Any], settings: Settings) -> PoolFields:
    """The pool's settings after a PUT: sent fields over current ones, ``null`` -> default."""
    values = {name: getattr(pool, POOL.renames.get(name, name))
              for name in PoolFields.model_fields}
    values.update(sent)
    persistence = pool.session_persistence
    if "session_persistence" in sent:
        persistence = _merged_persistence(persistence, sent["session_persistence"])
    values["session_persistence"] = (
        SessionPersistencePUT.model_construct(**persistence) if persistence else None)
    return with_defaults(PoolFields.model_construct(**values), settings)


def _merged_persistence(current: dict[str, Any] | None,
                        sent: dict[str, Any] | None) -> dict[str, Any] | None:
    """As upstream: a PUT's session_persistence updates the pool's; ``null`` removes it."""
    if sent is None:
        return None
    merged = {**(current or {}), **sent}
    if merged.get("type") != "APP_COOKIE" and "cookie_name" not in sent:
        merged["cookie_name"] = None
    return merged


def _check_ca_kept(pool: Pool, sent: dict[str, Any], spec: PoolFields) -> None:
    if ("ca_tls_container_ref" in sent and not sent["ca_tls_container_ref"]
            and pool.ca_tls_certificate_id and spec.crl_container_ref):
        raise faults.ValidationException(
            detail="A CA reference cannot be removed when a certificate revocation list is "
                   "present.")


# --- Handlers -----------------------------------------------------------------------------

def _placement(session: Session, spec: PoolPOST,
               ctx: RequestContext) -> tuple[LoadBalancer, Listener | None]:
    """The pool's load balancer and, with ``listener_id``, the listener it will serve."""
    listener: Listener | None = None
    if spec.listener_id:
        listener = get_subresource(session, Listener, spec.listener_id, "Listener", ctx)
        lb_id = spec.loadbalancer_id or listener.load_balancer_id
    elif spec.loadbalancer_id:
        lb_id = spec.loadbalancer_id
    else:
        raise faults.ValidationException(
            detail="Must provide at least one of: loadbalancer_id, listener_id")
    lb = get_subresource(session, LoadBalancer, lb_id, "Load Balancer", ctx)
    if listener is not None and listener.load_balancer_id != lb.id:
        raise faults.ValidationException(
            detail=f"Listener {listener.id} is not on load balancer {lb.id}; a pool can only "
                   "be the default pool of a listener on its own load balancer.")
    return lb, listener


def _check_listener_takes_pool(listener: Listener, protocol: str) -> None:
    if listener.provisioning_status not in constants.MUTABLE_STATUSES:
        raise faults.ImmutableObject(resource="Listener", id=listener.id)
    check_protocols(listener.protocol, protocol)
    if listener.default_pool_id:
        raise faults.DuplicatePoolEntry()


def _lock(session: Session, pool: Pool, pool_status: str) -> None:
    """Lock the load balancer (409 if busy); the pool -> ``pool_status``, its listeners locked."""
    lock_load_balancer(session, pool.load_balancer_id)
    pool.provisioning_status = pool_status
    lock_parents(session, "listener", pool.listeners)


@router.post("", status_code=201, summary="Create a pool",
             response_model=POOL.response_root, response_model_exclude_unset=True)
def create(body: PoolRootPOST, api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Any:
    spec = body.pool
    with api.db.write() as session:
        lb, listener = _placement(session, spec, ctx)
        check_quota(session, api.settings, lb.project_id, {"pool": 1})
        lock_load_balancer(session, lb.id)
        if listener is not None:
            _check_listener_takes_pool(listener, spec.protocol)
        pool = new_pool(spec, lb, api.settings)
        certificates.check_pool(pool, api.cert_manager, ctx)
        session.add(pool)
        session.flush()
        if listener is not None:
            listener.default_pool = pool
            lock_parents(session, "listener", [listener])
        submit_change(session, lb.id, pool=[pool.id])
        result = {"pool": to_api(pool)}
    # As upstream: a new pool's response has no healthmonitor_id (later ones show null).
    del result["pool"]["healthmonitor_id"]
    api.wakeup.notify()
    return result


@router.get("", summary="List pools",
            response_model=POOL.list_root, response_model_exclude_unset=True)
@in_event_loop
def list_all(request: Request, api: ApiState = Depends(state),
             ctx: RequestContext = Depends(context)) -> Any:
    return list_objects(request, api, ctx, select(Pool), POOL.collection, to_api)


@router.get("/{pool_id}", summary="Show a pool",
            response_model=POOL.response_root, response_model_exclude_unset=True)
@in_event_loop
def show(pool_id: str, request: Request, api: ApiState = Depends(state),
         ctx: RequestContext = Depends(context)) -> Any:
    with api.db.read() as session:
        pool = get_or_404(session, Pool, pool_id, RESOURCE, ctx)
        return show_object(request, api, "pool", to_api(pool))


@router.put("/{pool_id}", summary="Update a pool",
            response_model=POOL.response_root, response_model_exclude_unset=True)
def update(pool_id: str, body: POOL.put_root,  # type: ignore[name-defined]
           api: ApiState = Depends(state), ctx: RequestContext = Depends(context)) -> Any:
    with api.db.write() as session:
        pool = get_or_404(session, Pool, pool_id, RESOURCE, ctx)
        sent = body.pool.model_dump(exclude_unset=True)
        spec = _updated_spec(pool, sent, api.settings)
        _lock(session, pool, constants.PENDING_UPDATE)
        _check_ca_kept(pool, sent, spec)
        validate_pool(spec, pool.load_balancer, api.settings)
        before = certificates.pool_refs(pool)
        _store(pool, spec)
        certificates.check_pool(pool, api.cert_manager, ctx, before)
        session.flush()
        submit_change(session, pool.load_balancer_id, pool=[pool.id])
        result = {"pool": to_api(pool)}
    api.wakeup.notify()
    return result


@router.delete("/{pool_id}", status_code=204, summary="Delete a pool with its members and "
               "health monitor")
def delete(pool_id: str, api: ApiState = Depends(state),
           ctx: RequestContext = Depends(context)) -> Response:
    """As upstream, a listener's default pool may be deleted: the listener is left without one.

    A pool an L7 policy redirects to may not (409) until the policy goes or points elsewhere.
    """
    with api.db.write() as session:
        pool = get_or_404(session, Pool, pool_id, RESOURCE, ctx)
        if pool.l7policies:
            raise faults.PoolInUseByL7Policy(id=pool.id, l7policy_id=pool.l7policies[0].id)
        _lock(session, pool, constants.PENDING_DELETE)
        submit_change(session, pool.load_balancer_id, pool=[pool.id])
    api.wakeup.notify()
    return Response(status_code=204)
