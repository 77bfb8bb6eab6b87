"""SQLAlchemy models: one class per table, column names as upstream's schema."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    declared_attr,
    foreign,
    lazyload,
    mapped_column,
    relationship,
)


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


# Loader options for reading a row for its own columns: its relationships load only if
# touched (inside the session), not through the eager loads the models declare.
ROW_ONLY = (lazyload("*"),)


class Tag(Base):
    """A tag on any tagged object, keyed by the object's id (as upstream's ``tags`` table)."""

    __tablename__ = "tags"
    resource_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class IdMixin:
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, onupdate=utcnow)


class StatusMixin:
    provisioning_status: Mapped[str] = mapped_column(String(16), index=True)
    operating_status: Mapped[str] = mapped_column(String(16))


class NameMixin:
    project_id: Mapped[str | None] = mapped_column(String(36), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class TaggedMixin:
    """Adds ``tags`` (a list of strings) backed by the ``tags`` table."""

    @declared_attr
    def tag_rows(cls) -> Mapped[list[Tag]]:  # noqa: N805 - SQLAlchemy passes the class
        return relationship(
            Tag, primaryjoin=lambda: foreign(Tag.resource_id) == cls.id,  # type: ignore[attr-defined]
            cascade="all, delete-orphan", lazy="selectin", order_by=Tag.tag, overlaps="tag_rows",
        )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]

    @tags.setter
    def tags(self, values: list[str] | None) -> None:
        wanted = list(dict.fromkeys(values or []))
        kept = {row.tag: row for row in self.tag_rows}
        self.tag_rows = [kept.get(tag) or Tag(tag=tag) for tag in wanted]


class LoadBalancer(IdMixin, TimestampMixin, StatusMixin, NameMixin, TaggedMixin, Base):
    __tablename__ = "load_balancer"
    description: Mapped[str | None] = mapped_column(String(255))
    topology: Mapped[str | None] = mapped_column(String(36))
    server_group_id: Mapped[str | None] = mapped_column(String(36))
    provider: Mapped[str | None] = mapped_column(String(64))
    flavor_id: Mapped[str | None] = mapped_column(String(36))
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    vip_address: Mapped[str | None] = mapped_column(String(64))
    vip_port_id: Mapped[str | None] = mapped_column(String(36))
    vip_subnet_id: Mapped[str | None] = mapped_column(String(36))
    vip_network_id: Mapped[str | None] = mapped_column(String(36))
    vip_qos_policy_id: Mapped[str | None] = mapped_column(String(36))
    vip_vnic_type: Mapped[str] = mapped_column(String(64), default="normal")
    vip_sg_ids: Mapped[list[str]] = mapped_column(JSON, default=list)

    listeners: Mapped[list[Listener]] = relationship(
        back_populates="load_balancer", lazy="selectin", order_by="Listener.created_at")
    pools: Mapped[list[Pool]] = relationship(
        back_populates="load_balancer", lazy="selectin", order_by="Pool.created_at")
    additional_vips: Mapped[list[AdditionalVip]] = relationship(
        cascade="all, delete-orphan", lazy="selectin")
    amphorae: Mapped[list[Amphora]] = relationship(back_populates="load_balancer")


class AdditionalVip(Base):
    __tablename__ = "additional_vip"
    load_balancer_id: Mapped[str] = mapped_column(
        ForeignKey("load_balancer.id", ondelete="CASCADE"), primary_key=True)
    subnet_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    network_id: Mapped[str | None] = mapped_column(String(36))
    ip_address: Mapped[str | None] = mapped_column(String(64))
    port_id: Mapped[str | None] = mapped_column(String(36))


class Listener(IdMixin, TimestampMixin, StatusMixin, NameMixin, TaggedMixin, Base):
    __tablename__ = "listener"
    __table_args__ = (UniqueConstraint("load_balancer_id", "protocol", "protocol_port"),)
    description: Mapped[str | None] = mapped_column(String(255))
    load_balancer_id: Mapped[str] = mapped_column(ForeignKey("load_balancer.id"), index=True)
    protocol: Mapped[str] = mapped_column(String(16))
    protocol_port: Mapped[int] = mapped_column(Integer)
    connection_limit: Mapped[int | None] = mapped_column(Integer)
    default_pool_id: Mapped[str | None] = mapped_column(ForeignKey("pool.id"), index=True)
    tls_certificate_id: Mapped[str | None] = mapped_column(String(255))
    sni_container_refs: Mapped[list[str]] = mapped_column(JSON, default=list)
    client_ca_tls_certificate_id: Mapped[str | None] = mapped_column(String(255))
    client_authentication: Mapped[str] = mapped_column(String(10), default="NONE")
    client_crl_container_id: Mapped[str | None] = mapped_column(String(255))
    timeout_client_data: Mapped[int | None] = mapped_column(Integer)
    timeout_member_connect: Mapped[int | None] = mapped_column(Integer)
    timeout_member_data: Mapped[int | None] = mapped_column(Integer)
    timeout_tcp_inspect: Mapped[int | None] = mapped_column(Integer)
    insert_headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    allowed_cidrs: Mapped[list[str]] = mapped_column(JSON, default=list)
    tls_ciphers: Mapped[str | None] = mapped_column(String(2048))
    tls_versions: Mapped[list[str] | None] = mapped_column(JSON)
    alpn_protocols: Mapped[list[str] | None] = mapped_column(JSON)
    hsts_max_age: Mapped[int | None] = mapped_column(Integer)
    hsts_include_subdomains: Mapped[bool] = mapped_column(Boolean, default=False)
    hsts_preload: Mapped[bool] = mapped_column(Boolean, default=False)

    load_balancer: Mapped[LoadBalancer] = relationship(back_populates="listeners")
    default_pool: Mapped[Pool | None] = relationship(back_populates="listeners")
    l7policies: Mapped[list[L7Policy]] = relationship(
        back_populates="listener", lazy="selectin", order_by="L7Policy.position",
        cascade="all, delete-orphan")


class Pool(IdMixin, TimestampMixin, StatusMixin, NameMixin, TaggedMixin, Base):
    __tablename__ = "pool"
    description: Mapped[str | None] = mapped_column(String(255))
    load_balancer_id: Mapped[str] = mapped_column(ForeignKey("load_balancer.id"), index=True)
    protocol: Mapped[str] = mapped_column(String(16))
    lb_algorithm: Mapped[str] = mapped_column(String(255))
    session_persistence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    tls_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    tls_certificate_id: Mapped[str | None] = mapped_column(String(255))
    ca_tls_certificate_id: Mapped[str | None] = mapped_column(String(255))
    crl_container_id: Mapped[str | None] = mapped_column(String(255))
    tls_ciphers: Mapped[str | None] = mapped_column(String(2048))
    tls_versions: Mapped[list[str] | None] = mapped_column(JSON)
    alpn_protocols: Mapped[list[str] | None] = mapped_column(JSON)

    load_balancer: Mapped[LoadBalancer] = relationship(back_populates="pools")
    listeners: Mapped[list[Listener]] = relationship(
        back_populates="default_pool", lazy="selectin", order_by="Listener.created_at")
    members: Mapped[list[Member]] = relationship(
        back_populates="pool", lazy="selectin", order_by="Member.created_at",
        cascade="all, delete-orphan")
    health_monitor: Mapped[HealthMonitor | None] = relationship(
        back_populates="pool", lazy="selectin", cascade="all, delete-orphan")
    l7policies: Mapped[list[L7Policy]] = relationship(
        back_populates="redirect_pool", order_by="L7Policy.position")


class Member(IdMixin, TimestampMixin, StatusMixin, NameMixin, TaggedMixin, Base):
    __tablename__ = "member"
    __table_args__ = (UniqueConstraint("pool_id", "ip_address", "protocol_port"),)
    pool_id: Mapped[str] = mapped_column(ForeignKey("pool.id", ondelete="CASCADE"), index=True)
    ip_address: Mapped[str] = mapped_column(String(64))
    protocol_port: Mapped[int] = mapped_column(Integer)
    weight: Mapped[int] = mapped_column(Integer, default=1)
    backup: Mapped[bool] = mapped_column(Boolean, default=False)
    subnet_id: Mapped[str | None] = mapped_column(String(36))
    monitor_address: Mapped[str | None] = mapped_column(String(64))
    monitor_port: Mapped[int | None] = mapped_column(Integer)
    vnic_type: Mapped[str] = mapped_column(String(64), default="normal")

    pool: Mapped[Pool] = relationship(back_populates="members")


class HealthMonitor(IdMixin, TimestampMixin, StatusMixin, NameMixin, TaggedMixin, Base):
    __tablename__ = "health_monitor"
    pool_id: Mapped[str] = mapped_column(
        ForeignKey("pool.id", ondelete="CASCADE"), unique=True, index=True)
    type: Mapped[str] = mapped_column(String(36))
    delay: Mapped[int] = mapped_column(Integer)
    timeout: Mapped[int] = mapped_column(Integer)
    fall_threshold: Mapped[int] = mapped_column(Integer)
    rise_threshold: Mapped[int] = mapped_column(Integer)
    http_method: Mapped[str | None] = mapped_column(String(16))
    url_path: Mapped[str | None] = mapped_column(String(2048))
    expected_codes: Mapped[str | None] = mapped_column(String(64))
    http_version: Mapped[float | None] = mapped_column(Float)
    domain_name: Mapped[str | None] = mapped_column(String(255))

    pool: Mapped[Pool] = relationship(back_populates="health_monitor")


class L7Policy(IdMixin, TimestampMixin, StatusMixin, NameMixin, TaggedMixin, Base):
    """A routing policy of an HTTP or TERMINATED_HTTPS listener, ordered by ``position``."""

    __tablename__ = "l7policy"
    description: Mapped[str | None] = mapped_column(String(255))
    listener_id: Mapped[str] = mapped_column(
        ForeignKey("listener.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(36))
    redirect_pool_id: Mapped[str | None] = mapped_column(ForeignKey("pool.id"), index=True)
    redirect_url: Mapped[str | None] = mapped_column(String(255))
    redirect_prefix: Mapped[str | None] = mapped_column(String(255))
    redirect_http_code: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)

    listener: Mapped[Listener] = relationship(back_populates="l7policies")
    redirect_pool: Mapped[Pool | None] = relationship(back_populates="l7policies")
    rules: Mapped[list[L7Rule]] = relationship(
        back_populates="l7policy", lazy="selectin", order_by="L7Rule.created_at",
        cascade="all, delete-orphan")


class L7Rule(IdMixin, TimestampMixin, StatusMixin, TaggedMixin, Base):
    """One match condition of an L7 policy; a policy applies when all its rules match."""

    __tablename__ = "l7rule"
    project_id: Mapped[str | None] = mapped_column(String(36), index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    l7policy_id: Mapped[str] = mapped_column(
        ForeignKey("l7policy.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(36))
    compare_type: Mapped[str] = mapped_column(String(36))
    key: Mapped[str | None] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))
    invert: Mapped[bool] = mapped_column(Boolean, default=False)

    l7policy: Mapped[L7Policy] = relationship(back_populates="rules")


class FlavorProfile(IdMixin, Base):
    """Provider-specific settings (``flavor_data``, a JSON text) behind flavors."""

    __tablename__ = "flavor_profile"
    name: Mapped[str] = mapped_column(String(255))
    provider_name: Mapped[str] = mapped_column(String(255))
    flavor_data: Mapped[str] = mapped_column(String(4096))


class Flavor(IdMixin, Base):
    __tablename__ = "flavor"
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str | None] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    flavor_profile_id: Mapped[str] = mapped_column(ForeignKey("flavor_profile.id"), index=True)

    flavor_profile: Mapped[FlavorProfile] = relationship(lazy="selectin")


class AvailabilityZoneProfile(IdMixin, Base):
    """Provider-specific settings (``availability_zone_data``) behind availability zones."""

    __tablename__ = "availability_zone_profile"
    name: Mapped[str] = mapped_column(String(255))
    provider_name: Mapped[str] = mapped_column(String(255))
    availability_zone_data: Mapped[str] = mapped_column(String(4096))


class AvailabilityZone(Base):
    """An availability zone, keyed by its name as upstream's."""

    __tablename__ = "availability_zone"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    description: Mapped[str | None] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    availability_zone_profile_id: Mapped[str] = mapped_column(
        ForeignKey("availability_zone_profile.id"), index=True)

    availability_zone_profile: Mapped[AvailabilityZoneProfile] = relationship(lazy="selectin")


class Quota(Base):
    """Per-project limits; NULL means "the configured default"."""

    __tablename__ = "quotas"
    project_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    load_balancer: Mapped[int | None] = mapped_column(Integer)
    listener: Mapped[int | None] = mapped_column(Integer)
    pool: Mapped[int | None] = mapped_column(Integer)
    health_monitor: Mapped[int | None] = mapped_column(Integer)
    member: Mapped[int | None] = mapped_column(Integer)
    l7policy: Mapped[int | None] = mapped_column(Integer)
    l7rule: Mapped[int | None] = mapped_column(Integer)


class Amphora(IdMixin, TimestampMixin, Base):
    __tablename__ = "amphora"
    # Ours: 255, not upstream's 36 (a Nova UUID): the netns driver's ids are namespace names.
    compute_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(36), index=True)
    load_balancer_id: Mapped[str | None] = mapped_column(
        ForeignKey("load_balancer.id"), index=True)
    lb_network_ip: Mapped[str | None] = mapped_column(String(64))
    vrrp_ip: Mapped[str | None] = mapped_column(String(64))
    ha_ip: Mapped[str | None] = mapped_column(String(64))
    vrrp_port_id: Mapped[str | None] = mapped_column(String(36))
    ha_port_id: Mapped[str | None] = mapped_column(String(36))
    role: Mapped[str | None] = mapped_column(String(36))
    cert_expiration: Mapped[dt.datetime | None] = mapped_column(DateTime)
    cert_busy: Mapped[bool] = mapped_column(Boolean, default=False)
    vrrp_interface: Mapped[str | None] = mapped_column(String(16))
    vrrp_id: Mapped[int | None] = mapped_column(Integer)
    vrrp_priority: Mapped[int | None] = mapped_column(Integer)
    cached_zone: Mapped[str | None] = mapped_column(String(255))
    image_id: Mapped[str | None] = mapped_column(String(36))
    compute_flavor: Mapped[str | None] = mapped_column(String(255))

    load_balancer: Mapped[LoadBalancer | None] = relationship(back_populates="amphorae")


class AmphoraHealth(Base):
    """When the health manager last heard from an amphora, and the heartbeat's sequence.

    ``busy`` is set while a health manager fails the amphora over, so that no other one
    starts a second failover of it.
    """

    __tablename__ = "amphora_health"
    amphora_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    last_update: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    busy: Mapped[bool] = mapped_column(Boolean, default=False)
    sequence: Mapped[int] = mapped_column(BigInteger, default=0)


class ListenerStatistics(Base):
    """Counters one amphora reported for one listener (summed by the API)."""

    __tablename__ = "listener_statistics"
    listener_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    amphora_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    bytes_in: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_out: Mapped[int] = mapped_column(BigInteger, default=0)
    active_connections: Mapped[int] = mapped_column(Integer, default=0)
    total_connections: Mapped[int] = mapped_column(BigInteger, default=0)
    request_errors: Mapped[int] = mapped_column(BigInteger, default=0)


class Job(Base):
    """A unit of work for the worker, written in the same transaction as the change.

    A worker claims a job by taking a lease and renews it while the job runs; a job whose
    lease ran out (its worker died) is claimed again by another worker, so no change is
    lost with a crashed worker. ``state`` is what the flow has done so far (the amphorae it
    built, the ones it retired), written in the same transactions as the rows it names, so
    that the worker taking the job over finishes it, or puts it back, as the first would have.
    """

    __tablename__ = "job"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Service(Base):
    """A running controller process (API, worker, health manager, housekeeping): it
    records itself at start and stamps ``last_seen`` every few seconds, so that
    /healthcheck and ``lbaas status`` can tell which run (lbaas.db.services)."""

    __tablename__ = "service"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # What it last did ("ran job 12 (create_load_balancer)"), for ``lbaas status``.
    activity: Mapped[str | None] = mapped_column(String(255))


class Metric(Base):
    """A counter or gauge that several processes add to (builds, failovers, heartbeats),
    which the API's /metrics reads (lbaas.db.metrics). ``labels`` is the label set as sorted
    JSON."""

    __tablename__ = "metric"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    labels: Mapped[str] = mapped_column(String(512), primary_key=True)
    value: Mapped[float] = mapped_column(Float, default=0.0)


class ControllerLock(Base):
    """A named row that controllers lock (``SELECT ... FOR UPDATE``) to take turns on work
    that two of them must not do at once, such as filling the spare pool."""

    __tablename__ = "controller_lock"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)


class Network(IdMixin, TimestampMixin, Base):
    """A network of the local registry (lbaas.network): a Linux bridge on every host that
    needs it, joined across hosts as its ``network_type`` says (lbaas.network.segments):
    ``local`` (one host), ``vxlan`` (VNI ``segmentation_id``) or ``flat`` (each host's
    interface for ``physical_network``), as Neutron's provider attributes."""

    __tablename__ = "network"
    name: Mapped[str] = mapped_column(String(255), unique=True)
    project_id: Mapped[str | None] = mapped_column(String(36))
    shared: Mapped[bool] = mapped_column(Boolean, default=True)
    bridge: Mapped[str] = mapped_column(String(15), unique=True)
    physical_interface: Mapped[str | None] = mapped_column(String(15), unique=True)
    mtu: Mapped[int] = mapped_column(Integer, default=1500)
    network_type: Mapped[str] = mapped_column(String(16), default="local")
    segmentation_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    physical_network: Mapped[str | None] = mapped_column(String(64))

    subnets: Mapped[list[Subnet]] = relationship(
        back_populates="network", lazy="selectin", order_by="Subnet.created_at")


class Host(Base):
    """A host of the deployment: a compute host running ``lbaas compute-agent`` (its
    amphorae), or a controller. ``tunnel_ip`` is its underlay address, where the other
    hosts send its networks' VXLAN traffic; ``last_seen`` when a controller last heard its
    agent, ``status`` UP or DOWN accordingly (placement uses UP hosts only)."""

    __tablename__ = "host"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    agent_url: Mapped[str | None] = mapped_column(String(255))
    tunnel_ip: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="UNKNOWN")
    last_seen: Mapped[dt.datetime | None] = mapped_column(DateTime)
    amphorae: Mapped[int] = mapped_column(Integer, default=0)
    capacity: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Subnet(IdMixin, TimestampMixin, Base):
    """An address range on a network; ``allocation_pools`` is a list of {start, end}."""

    __tablename__ = "subnet"
    name: Mapped[str] = mapped_column(String(255), unique=True)
    project_id: Mapped[str | None] = mapped_column(String(36))
    network_id: Mapped[str] = mapped_column(ForeignKey("network.id"), index=True)
    ip_version: Mapped[int] = mapped_column(Integer)
    cidr: Mapped[str] = mapped_column(String(64))
    gateway_ip: Mapped[str | None] = mapped_column(String(64))
    allocation_pools: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)

    network: Mapped[Network] = relationship(back_populates="subnets")


class Port(IdMixin, TimestampMixin, Base):
    """An address handed out on a subnet to a device (an amphora, a VIP, the controller).

    The unique constraint is what guarantees an address is never held twice.
    """

    __tablename__ = "port"
    __table_args__ = (UniqueConstraint("subnet_id", "ip_address"),)
    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnet.id"))
    ip_address: Mapped[str] = mapped_column(String(64))
    mac_address: Mapped[str] = mapped_column(String(17), unique=True)
    device_id: Mapped[str] = mapped_column(String(255), index=True)
    device_owner: Mapped[str] = mapped_column(String(255))


class TlsSecret(IdMixin, TimestampMixin, Base):
    """A certificate (with its key) or a CA/CRL secret of the local certificate manager.

    ``payload`` is encrypted (Fernet, lbaas.cert_manager.local); ``expiration`` is the
    certificate's ``notAfter``, kept in clear for listing.
    """

    __tablename__ = "tls_secret"
    project_id: Mapped[str | None] = mapped_column(String(36), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    secret_type: Mapped[str] = mapped_column(String(16))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    expiration: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Keypair(Base):
    """An ssh public key registered for amphorae (as ``openstack keypair create`` does for
    Nova); ``[controller_worker] amp_ssh_key_name`` names the one new amphorae accept."""

    __tablename__ = "keypair"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA256:..., as ssh-keygen -l
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
