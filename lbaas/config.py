"""One typed settings object, read from an octavia.conf-style INI file.

Section and option names are upstream's (``octavia/common/config.py``) for every option
we support, with upstream's defaults unless a comment says why not. Unknown sections and
options are ignored, so an operator can start from their existing octavia.conf, but each
is reported (``Settings.warnings``, logged by every command at start) with the closest
known name, so that a typo never goes unnoticed. Any option can also be set through the
environment as ``LBAAS__<SECTION>__<OPTION>``.
"""
from __future__ import annotations

import configparser
import difflib
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_CONFIG_FILE = Path("/etc/lbaas/lbaas.conf")
DEFAULT_STATE_PATH = Path("/var/lib/lbaas")


def _split_list(value: Any) -> Any:
    """oslo.config ListOpt: a comma-separated string."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _split_dict(value: Any) -> Any:
    """oslo.config DictOpt: ``key:value, key:value``."""
    if isinstance(value, str):
        pairs = (item.split(":", 1) for item in value.split(",") if item.strip())
        return {key.strip(): (rest[0].strip() if rest else "") for key, *rest in pairs}
    return value


def _network(value: str) -> str:
    """A CIDR as ``10.0.0.0/24``: host bits set is a mistake worth one line, not a traceback."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        raise ValueError(f"{value} is an address, not a CIDR; write {value}/{address.max_prefixlen}")
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not a CIDR such as 10.0.0.0/24") from None
    if network.with_prefixlen != value:
        raise ValueError(f"{value} has host bits set; did you mean {network}?")
    return value


def _endpoint(value: str) -> str:
    """A syslog receiver as ``address:port`` (``[address]:port`` for IPv6)."""
    address, _, port = value.rpartition(":")
    try:
        ipaddress.ip_address(address.removeprefix("[").removesuffix("]"))
        if not 1 <= int(port) <= 65535:
            raise ValueError
    except ValueError:
        raise ValueError(f"{value!r} is not address:port, such as 192.0.2.10:514") from None
    return value


StrList = Annotated[list[str], BeforeValidator(_split_list)]
EndpointList = Annotated[list[Annotated[str, AfterValidator(_endpoint)]],
                         BeforeValidator(_split_list)]
Port = Annotated[int, Field(ge=1, le=65535)]
Cidr = Annotated[str, AfterValidator(_network)]
CidrList = Annotated[list[Cidr], BeforeValidator(_split_list)]
StrDict = Annotated[dict[str, str], BeforeValidator(_split_dict)]

CIPHERS_OWASP_SUITE_B = (
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:"
    "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "DHE-RSA-AES256-SHA256:DHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:"
    "ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256"
)


class Section(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, values: Any) -> Any:
        """``option =`` with nothing after it leaves an option whose default is None unset."""
        if isinstance(values, dict):
            return {key: value for key, value in values.items()
                    if not (value == "" and key in cls.model_fields
                            and cls.model_fields[key].default is None)}
        return values


class DefaultSection(Section):
    host: str = os.uname().nodename
    # Ours: where SQLite, certificates and amphora directories live.
    state_path: Path = DEFAULT_STATE_PATH
    debug: bool = False
    # Upstream's RabbitMQ URL (rabbit://user:password@host:5672,.../vhost). Here it only
    # wakes workers in other processes when a job is queued (lbaas.controller.wakeups):
    # useful on MariaDB; PostgreSQL does it with NOTIFY, and without either workers poll.
    transport_url: SecretStr | None = None
    # oslo.log's options: a file (reopened when logrotate moves it) instead of standard
    # error, or syslog (/dev/log: journald on a systemd host). lbaas logs one line per
    # state change of a load balancer or amphora; libraries' per-call lines only in debug.
    log_file: Path | None = None
    # oslo.service's: how long a stopping service lets its running work finish (a worker
    # then hands the jobs still running back to the other workers).
    graceful_shutdown_timeout: NonNegativeInt = 60
    use_syslog: bool = False
    use_journal: bool = False
    syslog_log_facility: str = "LOG_USER"


class ApiSettings(Section):
    bind_host: str = "127.0.0.1"
    bind_port: Port = 9876
    # Upstream defaults to keystone; the embedded default is noauth (every caller is
    # admin, project from X-Project-Id). keystone: tokens checked by keystonemiddleware
    # with [keystone_authtoken], access by upstream's policy (lbaas.api.policy).
    auth_strategy: Literal["noauth", "keystone"] = "noauth"
    # Ours: the project used under noauth when a request names none.
    default_project_id: str = "admin"
    api_base_uri: str | None = None
    allow_pagination: bool = True
    allow_sorting: bool = True
    allow_filtering: bool = True
    allow_field_selection: bool = True
    pagination_max_limit: str = "1000"
    allow_tls_terminated_listeners: bool = True
    allow_ping_health_monitors: bool = True
    allow_prometheus_listeners: bool = True
    enabled_provider_drivers: StrDict = {
        "amphora": "The Octavia Amphora driver.",
        "octavia": "Deprecated alias of the Octavia Amphora driver.",
    }
    default_provider_driver: str = "amphora"
    udp_connect_min_interval_health_monitor: int = 3
    default_listener_ciphers: str = CIPHERS_OWASP_SUITE_B
    default_pool_ciphers: str = CIPHERS_OWASP_SUITE_B
    tls_cipher_prohibit_list: str = ""
    default_listener_tls_versions: StrList = ["TLSv1.2", "TLSv1.3"]
    default_pool_tls_versions: StrList = ["TLSv1.2", "TLSv1.3"]
    minimum_tls_version: str | None = None
    default_listener_alpn_protocols: StrList = ["h2", "http/1.1", "http/1.0"]
    default_pool_alpn_protocols: StrList = ["h2", "http/1.1", "http/1.0"]
    # Upstream's GET /healthcheck (oslo.middleware's shape), answered without a token and
    # refreshed at most every healthcheck_refresh_interval seconds. Upstream's default is
    # off; ours on, as every service under systemd or an external balancer wants it.
    healthcheck_enabled: bool = True
    healthcheck_refresh_interval: NonNegativeInt = 5
    # Ours: GET /metrics in Prometheus' text format. Under keystone a token needs the
    # metrics:get_all rule (admin) unless the scraper's address is in these CIDRs.
    metrics_enabled: bool = True
    metrics_allowed_cidrs: CidrList = ["127.0.0.0/8", "::1/128"]


class DatabaseSection(Section):
    # Empty means SQLite in the state path (see Settings.database_url).
    connection: str = ""
    connection_debug: int = 0


class ControllerWorker(Section):
    workers: int = 1
    loadbalancer_topology: str = "SINGLE"
    # Amphorae as network namespaces on this host (see lbaas.drivers); the no-op drivers
    # (amphora_noop_driver, compute_noop_driver, network_noop_driver) serve API-only use.
    amphora_driver: str = "amphora_haproxy_rest_driver"
    compute_driver: str = "compute_netns_driver"
    network_driver: str = "network_local_driver"
    # Ours: threads per worker process running flows; the lease that proves a job's worker
    # alive (renewed four times per lease while the job runs: a dead worker's job is taken
    # over this long after its death); how often an idle worker looks for jobs when no
    # wake-up reaches it (another process on SQLite or MariaDB; on PostgreSQL jobs come
    # with a NOTIFY).
    flow_threads: int = 4
    # Ours: how long the failover of an ACTIVE_STANDBY amphora holding the VIP lets its
    # haproxy finish open connections before the VIP moves to the peer (new ones wait).
    failover_drain_timeout: PositiveFloat = 5
    job_lease_seconds: PositiveFloat = 3
    job_poll_interval: PositiveFloat = 0.5
    # The client CA certificate shipped to amphorae. Unset (ours): the generated one in
    # <state_path>/certs/ (see lbaas.certs).
    client_ca: Path | None = None
    # New amphorae run the newest image of the local store (`lbaas image`) carrying this
    # tag; a flavor's amp_image_tag overrides it. Unset (the default): the host's haproxy
    # and keepalived, no image needed.
    amp_image_tag: str | None = None
    # The compute flavor (of [compute] flavors) of amphorae whose load balancer's flavor
    # names none, and of spares.
    amp_flavor_id: str = "amphora"
    # The keypair (`lbaas keypair create`) whose key new amphorae accept for ssh, as root,
    # on their management address; unset (the default): no sshd runs in amphorae.
    amp_ssh_key_name: str | None = None


class HaproxyAmphora(Section):
    timeout_client_data: int = 50000
    timeout_member_connect: int = 5000
    timeout_member_data: int = 50000
    timeout_tcp_inspect: int = 0
    default_connection_limit: int = 50000
    bind_port: Port = 9443
    # Where each amphora's private directory lives (upstream: /var/lib/octavia inside the
    # VM). Amphorae do not survive a reboot of the host, so runtime storage fits; the path
    # stays short because haproxy's stats socket (a Unix socket) lives there.
    base_path: Path = Path("/run/lbaas/amphorae")
    # Ours: how amphorae without an image start their agent: "exec", a Python process of
    # its own (about 16 MB); "zygote", forked from a preloaded parent per host, sharing
    # some of that (about 9 MB each; lbaas.amphora.agent.zygote); "host", one agent
    # process per host serving every amphora from its namespace (lbaas.amphora.agent.host).
    agent_launcher: Literal["exec", "zygote", "host"] = "exec"
    haproxy_cmd: str = "/usr/sbin/haproxy"
    # An amphora here is a namespace that answers within a second, not a VM that boots in
    # minutes: retry often and briefly (upstream: 120 retries every 5 s). A new agent is
    # waited for retries x interval (30 s) at most, however long each try takes.
    connection_max_retries: int = 1500
    connection_retry_interval: float = 0.02
    rest_request_conn_timeout: float = 10
    rest_request_read_timeout: float = 60
    # The controller's client cert + key, and the CA bundle it verifies agents against.
    # Unset (ours): the generated ones in <state_path>/certs/ (see lbaas.certs).
    client_cert: Path | None = None
    server_ca: Path | None = None
    # Tenant flow logs: one line per connection (TCP) or request (HTTP) of every listener,
    # in this format ({{ project_id }} and {{ lb_id }} filled in), unless
    # connection_logging is false.
    connection_logging: bool = True
    user_log_format: str = ("{{ project_id }} {{ lb_id }} %f %ci %cp %t %{+Q}r %ST %B %U "
                            "%[ssl_c_verify] %{+Q}[ssl_c_s_dn] %b %s %Tt %tsc")


class AmphoraAgentSection(Section):
    """Upstream's log offloading: where amphorae send their logs (syslog receivers on or
    routed from the management network), as address:port lists. Amphorae also keep them
    on disk, bounded, unless disable_local_log_storage."""

    admin_log_targets: EndpointList = []
    tenant_log_targets: EndpointList = []
    user_log_facility: int = Field(default=0, ge=0, le=7)
    administrative_log_facility: int = Field(default=1, ge=0, le=7)
    log_protocol: Literal["UDP", "TCP"] = "UDP"
    disable_local_log_storage: bool = False


class Networking(Section):
    allow_vip_network_id: bool = True
    allow_vip_subnet_id: bool = True
    allow_vip_port_id: bool = True
    valid_vip_networks: StrList | None = None
    denylist_vip_networks: StrList = []
    reserved_ips: StrList = ["169.254.169.254"]
    # Ours: the management network `lbaas-mgmt` (lbaas.network.management), laid out as
    # the seed deployment's lb-mgmt subnet. controller_ip (default: the first address of
    # the CIDR) goes on the bridge; the pool (`start-end`; default: every other address)
    # must avoid it, the gateway (none by default) and used_ips (addresses or
    # `start-end` ranges that hosts on this network use).
    lb_network_cidr: Cidr = "172.29.232.0/22"
    # Ours: the management network's Linux bridge (one per lbaas on a host).
    lb_network_bridge: str = "lbaas-mgmt"
    lb_network_gateway: str | None = None
    controller_ip: str | None = None
    lb_network_allocation_pool: str | None = None
    used_ips: StrList = []
    # The controller host's firewall against amphorae (the seed's octavia_ip_tables_fw).
    ip_tables_fw: bool = True
    ip_tables_fw_log: bool = False
    # Ours, several hosts: how the management network reaches them (lbaas.network.segments:
    # local, vxlan or flat), its VNI (vxlan) or physical network (flat); this controller's
    # underlay address (vxlan) and its interface mappings (flat), as a compute agent's.
    lb_network_type: Literal["local", "vxlan", "flat"] = "local"
    lb_network_segmentation_id: int | None = None
    lb_network_physical_network: str | None = None
    local_ip: str | None = None
    physical_interface_mappings: StrList = []
    # VNIs given to new VXLAN networks that name none (`start:end`, as Neutron's vni_ranges).
    vni_ranges: str = "1000:1999"


class Certificates(Section):
    # local_cert_generator signs amphora certificates with the server CA on this host;
    # cert_noop_generator (ours) issues none, for the no-op drivers.
    cert_generator: str = "local_cert_generator"
    # The server CA that signs amphora certificates (upstream's local cert generator).
    # Unset (ours): the one generated in <state_path>/certs/ (see lbaas.certs); the
    # passphrase, when set, also encrypts the generated client CA key.
    ca_certificate: Path | None = None
    ca_private_key: Path | None = None
    ca_private_key_passphrase: SecretStr | None = None
    signing_digest: Literal["sha224", "sha256", "sha384", "sha512"] = "sha256"
    cert_validity_time: PositiveInt = 2592000
    # Where tenants' TLS certificates come from: local_cert_manager (ours, the default: the
    # encrypted store of `lbaas secret`) or barbican_cert_manager (upstream's default).
    cert_manager: Literal["local_cert_manager", "barbican_cert_manager"] = "local_cert_manager"
    # Ours: the Fernet key encrypting the local store. Unset: a key made once in
    # <state_path>/secret-store.key (0600); several controllers must share one.
    storage_key: SecretStr | None = None
    # Barbican: its endpoint in the catalog (service type key-manager), as upstream.
    region_name: str | None = None
    endpoint_type: str = "publicURL"


class ServiceAuth(Section):
    """The service user lbaas reads Barbican secrets with (upstream's ``[service_auth]``).

    Tenants grant it read access (``openstack acl user add``) to the secrets and
    containers their listeners and pools name.
    """

    auth_url: str | None = None
    auth_type: str = "password"
    username: str | None = None
    password: SecretStr | None = None
    project_name: str | None = None
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    cafile: str | None = None


class HouseKeeping(Section):
    """Upstream's housekeeping options, plus the spare pool upstream removed in Xena."""

    spare_check_interval: PositiveInt = 30
    spare_amphora_pool_size: NonNegativeInt = 0
    cleanup_interval: PositiveInt = 30
    amphora_expiry_age: NonNegativeInt = 604800
    load_balancer_expiry_age: NonNegativeInt = 604800
    cert_interval: PositiveInt = 3600
    cert_expiry_buffer: PositiveInt = 1209600
    cert_rotate_threads: PositiveInt = 10
    # Ours: how often the reconciler compares the host with the database (it also runs at
    # every worker start); see lbaas.controller.reconciler.
    reconcile_interval: PositiveInt = 60


class HealthManager(Section):
    # Unset (ours): the controller's address on the management network with the local
    # network driver (where amphorae send), else upstream's 127.0.0.1.
    bind_ip: str | None = None
    # 0: a port the kernel picks, for tests that send their heartbeats to the port bound.
    bind_port: Annotated[int, Field(ge=0, le=65535)] = 5555
    # Shared by the controller and the amphorae (written into each amphora-agent.conf).
    # Unset (ours): a random key generated once in <state_path>/heartbeat.key; set the
    # same key on every controller node when there are several.
    heartbeat_key: SecretStr | None = None
    # Amphora side, `ip:port` (IPv6 as `[ip]:port`). Empty (ours): the health manager's
    # address and port, as bind_ip and bind_port resolve.
    controller_ip_port_list: StrList = []
    heartbeat_interval: PositiveFloat = 10
    heartbeat_timeout: PositiveFloat = 60
    health_check_interval: PositiveFloat = 3
    failover_threads: PositiveInt = 10
    # Upstream: None (off). Ours: on; more stale amphorae than this at once stops
    # automatic failover (they become FAILOVER_STOPPED until `lbaas amphora failover-resume`).
    failover_threshold: int | None = 5
    # Ours: no failover until this long after start (unset: heartbeat_timeout, as upstream).
    failover_grace_period: float | None = None
    # Threads reading the heartbeat socket (decoding, processing and DB writes are
    # batched in one other thread). Upstream: CPU count (processes).
    health_update_threads: PositiveInt = 1
    sock_rlimit: int = 0


class KeepalivedVrrp(Section):
    # Seconds between VRRP advertisements. A whole number keeps upstream's VRRPv2 with
    # PASS authentication; a fraction needs VRRPv3, which has no authentication (keepalived
    # ignores it), so the amphorae then accept adverts only from their unicast peers.
    # Ours: 0.05 s (upstream 1 s): a dead MASTER is replaced in ~0.2 s instead of ~3.6 s
    # (0.7 s at 0.2), measured stable for an hour under load here, at ~0.4 % of a core
    # more per idle pair than 0.2 s (docs/benchmarks.md).
    vrrp_advert_int: float = 0.05
    vrrp_check_interval: int = 5
    vrrp_fail_count: int = 2
    vrrp_success_count: int = 2
    vrrp_garp_refresh_interval: int = 5
    vrrp_garp_refresh_count: int = 2


class Compute(Section):
    # Ours: the compute hosts (failure domains) amphorae are placed on. With the netns
    # driver (one machine) they are labels, recorded as each amphora's cached_zone; by
    # default just this one. With compute_agent_driver the hosts are those registered
    # (`lbaas host add`) whose agent answers; this list is not used.
    hosts: StrList = [os.uname().nodename]
    # Ours, compute_agent_driver: how often the health manager asks each compute agent for
    # its status, and after how long without an answer a host is DOWN (no new amphorae;
    # its amphorae are failed over by the heartbeats' timeout, not by this one).
    host_check_interval: PositiveFloat = 2
    host_down_timeout: PositiveFloat = 10
    # Ours: the compute flavors, as Nova's, each name:ram_mb:vcpus (vcpus may be a fraction):
    # the memory and CPU an amphora run from an image may use (cgroup limits). A flavor
    # profile's compute_flavor names one; [controller_worker] amp_flavor_id is the default.
    flavors: StrList = ["amphora:1024:1"]

    @field_validator("flavors")
    @classmethod
    def _flavors_parse(cls, value: list[str]) -> list[str]:
        names: set[str] = set()
        for entry in value:
            name, ram_mb, vcpus = (entry.split(":") + ["", ""])[:3]
            try:
                # CPU quotas below 0.01 CPU (1 ms per 100 ms) are refused by the kernel.
                good = bool(name) and 16 <= int(ram_mb) <= 4 * 1024 * 1024 \
                    and 0.01 <= float(vcpus) <= 1024 and entry.count(":") == 2
            except ValueError:
                good = False
            if not good:
                raise ValueError(f"flavor {entry!r}: write name:ram_mb:vcpus, e.g. "
                                 "amphora:1024:1 (16 MiB to 4 TiB, 0.01 to 1024 vcpus)")
            if name in names:
                raise ValueError(f"flavor {name!r} is defined twice")
            names.add(name)
        return value


class ComputeAgent(Section):
    """Ours: ``lbaas compute-agent``, one per amphora host (like nova-compute and the
    Neutron Linux bridge agent together). It serves the controllers over mutual TLS: its
    certificate from the server CA (``lbaas certs issue-host``), callers' from the client
    CA."""

    # Where it listens; unset: local_ip.
    bind_host: str | None = None
    bind_port: Port = 9444
    # This host's underlay (VXLAN tunnel) address, as Neutron's [vxlan] local_ip.
    local_ip: str | None = None
    # physical_network:interface, as Neutron's [linux_bridge] physical_interface_mappings.
    physical_interface_mappings: StrList = []
    # Its certificate and key (one PEM file) and the CA its callers' certificates come from.
    # Unset: server.pem and client_ca.pem in <state_path>/compute-agent/.
    server_cert: Path | None = None
    client_ca: Path | None = None
    # The most amphorae it runs (none: no limit); a full host gets no new amphora.
    max_amphorae: PositiveInt | None = None


class Nova(Section):
    enable_anti_affinity: bool = False


class Quotas(Section):
    default_load_balancer_quota: int = -1
    default_listener_quota: int = -1
    default_member_quota: int = -1
    default_pool_quota: int = -1
    default_health_monitor_quota: int = -1
    default_l7policy_quota: int = -1
    default_l7rule_quota: int = -1


class KeystoneAuthtoken(Section):
    """keystonemiddleware's ``auth_token`` options, as in upstream's octavia.conf.

    The options below are the usual ones; any other option of keystonemiddleware or of
    its auth plugin (e.g. ``cafile``, ``region_name``, ``token_cache_time``) is passed on
    as written.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    www_authenticate_uri: str | None = None
    auth_url: str | None = None
    auth_type: str = "password"
    username: str | None = None
    password: SecretStr | None = None
    project_name: str | None = None
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    service_token_roles_required: bool = True
    memcached_servers: str | None = None

    def middleware_options(self) -> dict[str, str]:
        """The options as keystonemiddleware reads them from a paste-style dict."""
        options: dict[str, str] = {}
        for key, value in {**dict(self), **(self.model_extra or {})}.items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            options[key] = str(value).lower() if isinstance(value, bool) else str(value)
        return options


class Healthcheck(Section):
    # oslo.middleware's: which checks decide the status (octavia_db_check: the database
    # answers; lbaas_services_check, ours: a worker and a health manager run somewhere),
    # and whether every caller gets the details (else admins only).
    backends: StrList = ["octavia_db_check"]
    detailed: bool = False

    @field_validator("backends")
    @classmethod
    def _known_backends(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - {"octavia_db_check", "lbaas_services_check"})
        if unknown:
            raise ValueError(f"unknown backend(s) {', '.join(unknown)}; choose among "
                             "octavia_db_check, lbaas_services_check")
        return value


class OsloPolicy(Section):
    # An operator's YAML file of rules overriding upstream's defaults. Unset: the file
    # /etc/lbaas/policy.yaml if there is one (upstream: policy.yaml in /etc/octavia).
    policy_file: Path | None = None
    # As oslo.policy's default: only Keystone's default roles count. False: the deprecated
    # load-balancer_* roles (upstream's Advanced RBAC) still grant access too.
    enforce_new_defaults: bool = True


class Settings(BaseModel):
    """The effective configuration: one attribute per upstream section."""

    model_config = ConfigDict(extra="ignore")
    # What load() found and ignored (unknown sections and options), one line each.
    _warnings: list[str] = PrivateAttr(default_factory=list)
    # The file it was read from (None: no file, the built-in defaults and the environment).
    _source: Path | None = PrivateAttr(default=None)

    @property
    def warnings(self) -> list[str]:
        return list(self._warnings)

    @property
    def source(self) -> Path | None:
        return self._source

    DEFAULT: DefaultSection = DefaultSection()
    api_settings: ApiSettings = ApiSettings()
    database: DatabaseSection = DatabaseSection()
    controller_worker: ControllerWorker = ControllerWorker()
    haproxy_amphora: HaproxyAmphora = HaproxyAmphora()
    amphora_agent: AmphoraAgentSection = AmphoraAgentSection()
    keepalived_vrrp: KeepalivedVrrp = KeepalivedVrrp()
    compute: Compute = Compute()
    compute_agent: ComputeAgent = ComputeAgent()
    nova: Nova = Nova()
    networking: Networking = Networking()
    health_manager: HealthManager = HealthManager()
    house_keeping: HouseKeeping = HouseKeeping()
    quotas: Quotas = Quotas()
    certificates: Certificates = Certificates()
    service_auth: ServiceAuth = ServiceAuth()
    keystone_authtoken: KeystoneAuthtoken = KeystoneAuthtoken()
    healthcheck: Healthcheck = Healthcheck()
    oslo_policy: OsloPolicy = OsloPolicy()

    @property
    def database_url(self) -> str:
        return self.database.connection or f"sqlite:///{self.DEFAULT.state_path / 'lbaas.sqlite'}"

    def to_ini(self, unmasked: bool = False) -> str:
        """The effective configuration as INI text (``lbaas config show``); secrets are
        masked unless ``unmasked`` (then it can be saved as a configuration file)."""
        lines: list[str] = []
        for section_name in type(self).model_fields:
            section: Section = getattr(self, section_name)
            lines.append(f"[{section_name}]")
            for option, value in section.model_dump(mode="json").items():
                secret = getattr(section, option, None)
                if unmasked and isinstance(secret, SecretStr):
                    value = secret.get_secret_value()
                lines.append(f"{option} = {_format_value(value)}")
            lines.append("")
        return "\n".join(lines)


def _format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}:{item}" for key, item in value.items())
    return str(value)


class ConfigError(Exception):
    """The configuration file cannot be used; the message says which option and why."""


def load(path: Path | str | None = None, *,
         environ: Mapping[str, str] | None = None) -> Settings:
    """Read the INI file (default /etc/lbaas/lbaas.conf if present) and the environment."""
    variables = os.environ if environ is None else environ
    explicit = path is not None
    path = Path(path) if path is not None else DEFAULT_CONFIG_FILE
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment]  # option names are case-sensitive
    if path.exists():
        try:
            parser.read(path)
        except configparser.Error as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    elif explicit:
        raise ConfigError(f"configuration file {path} does not exist")

    raw: dict[str, dict[str, str]] = {name: {} for name in Settings.model_fields}
    raw["DEFAULT"].update(parser.defaults())
    warnings = [f"{path}: [{section}] is not an lbaas section; ignored{_closest(section, raw)}"
                for section in parser.sections() if section not in raw]
    for section in parser.sections():
        if section in raw:
            raw[section].update(
                {key: value for key, value in parser.items(section, raw=True)
                 if key not in parser.defaults()})
    from_env: dict[tuple[str, str], str] = {}
    for key, value in variables.items():
        parts = key.split("__")
        if len(parts) == 3 and parts[0] == "LBAAS" and parts[1] in raw:
            raw[parts[1]][parts[2]] = value
            from_env[(parts[1], parts[2])] = key
        elif parts[0] == "LBAAS" and len(parts) > 1:
            warnings.append(f"{key} is not LBAAS__<section>__<option> of a known section; "
                            "ignored")

    def where(section: str, option: str) -> str:
        """Where an option was set: the variable, else the file."""
        return from_env.get((section, option)) or f"{path}: [{section}] {option}"

    warnings += [f"{where(section, option)} is not an lbaas option; ignored"
                 f"{_closest_option(section, option)}"
                 for section, options in raw.items() for option in options
                 if _unknown(section, option)]
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{where(*map(str, err['loc'][:2]))}: {err['msg'].removeprefix('Value error, ')}"
            if len(err["loc"]) >= 2 else err["msg"] for err in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from exc
    settings._warnings = warnings
    settings._source = path if path.exists() else None
    return settings


def _section_model(section: str) -> type[Section]:
    annotation = Settings.model_fields[section].annotation
    assert isinstance(annotation, type) and issubclass(annotation, Section)
    return annotation


def _unknown(section: str, option: str) -> bool:
    model = _section_model(section)
    return option not in model.model_fields and model.model_config.get("extra") != "allow"


def _closest(name: str, known: Any) -> str:
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return f" (did you mean {match[0]}?)" if match else ""


def _closest_option(section: str, option: str) -> str:
    """A suggestion: a close name in this section, or the section that has this option."""
    same = _closest(option, _section_model(section).model_fields)
    if same:
        return same
    elsewhere = [name for name in Settings.model_fields
                 if option in _section_model(name).model_fields]
    return f" (it belongs in [{elsewhere[0]}])" if elsewhere else ""
