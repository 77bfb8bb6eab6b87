"""The agent's REST API (upstream's ``/1.0`` paths) over HTTPS with mutual TLS."""
from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import re
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lbaas.amphora.agent import certificate, drain, interfaces, keepalived, logs, udp
from lbaas.amphora.agent.config import AgentConfig
from lbaas.amphora.agent.haproxy import (
    Haproxy,
    HaproxyPaths,
    InvalidConfig,
    ReloadFailed,
    install_certificate,
)
from lbaas.amphora.agent.nft import NftError

LOG = logging.getLogger(__name__)
API_VERSION = "1.0"
UUID = r"[0-9a-fA-F-]{36}"
PING_WRAPPER = Path(__file__).resolve().parents[1] / "ping-wrapper.sh"


class HttpError(Exception):
    def __init__(self, status: int, message: str, details: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


Response = tuple[int, Any, dict[str, str]]


@dataclass(frozen=True)
class Plug:
    """What a plug request asks of an interface, every field checked before any is used."""

    mac_address: str
    addresses: list[str]
    gateway: str | None
    mtu: int | None

    @classmethod
    def checked(cls, request: dict[str, Any], addresses: list[str], gateway: str | None) -> Plug:
        mtu = request.get("mtu")
        # The MTU goes into an `ip -batch` script: a number, or nothing.
        if mtu is not None and (type(mtu) is not int or not 68 <= mtu <= 65535):
            raise ValueError(f"mtu {mtu!r} is not an MTU (68 to 65535)")
        for address in addresses:
            ipaddress.ip_interface(address)
        if gateway is not None:
            ipaddress.ip_address(gateway)
        if not isinstance(request["mac_address"], str):
            raise ValueError(f"mac_address {request['mac_address']!r} is not a MAC address")
        return cls(request["mac_address"], addresses, gateway, mtu)


# haproxy's version by binary (path, inode, mtime), for every agent of this process (the
# host agent serves many amphorae).
_HAPROXY_VERSIONS: dict[tuple[str, int, int], str] = {}


def haproxy_version(command: str) -> str:
    """``haproxy -v``'s version, asked again only when the binary changed: the controller
    asks for it before every configuration it renders, and starting haproxy took about
    20 ms of each create on a busy host."""
    binary = shutil.which(command) or command
    try:
        found = os.stat(binary)
    except OSError:
        return "unknown"
    key = (binary, found.st_ino, found.st_mtime_ns)
    if key not in _HAPROXY_VERSIONS:
        try:
            output = subprocess.run([binary, "-v"], capture_output=True, text=True).stdout
        except OSError:  # not runnable
            output = ""
        version = re.search(r"version (\S+)", output)
        _HAPROXY_VERSIONS[key] = version.group(1) if version else "unknown"
    return _HAPROXY_VERSIONS[key]


def _parsed(body: bytes, parse: Callable[[dict[str, Any]], Plug]) -> Plug:
    """The request as ``parse`` reads it; a body it cannot read is a 400."""
    try:
        request = json.loads(body or b"{}")
        if not isinstance(request, dict):
            raise TypeError("the request is not a JSON object")
        return parse(request)
    except KeyError as exc:
        raise HttpError(400, "Invalid request", f"{exc} is missing") from exc
    except (ValueError, TypeError) as exc:
        raise HttpError(400, "Invalid request", str(exc)) from exc


class Agent:
    """The operations behind the routes; one instance per amphora."""

    def __init__(self, config: AgentConfig,
                 certificate_installed: Callable[[], None] = lambda: None,
                 udp_services: udp.UdpServices | None = None) -> None:
        self.config = config
        self.udp = udp_services or udp.UdpServices(config.base_path)
        # Called once a rotated certificate is in place (the server reloads its context).
        self.certificate_installed = certificate_installed
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = [
            ("GET", re.compile(r"/"), self.version),
            ("GET", re.compile(rf"/{API_VERSION}/info"), self.info),
            ("GET", re.compile(rf"/{API_VERSION}/details"), self.details),
            ("GET", re.compile(rf"/{API_VERSION}/listeners"), self.listeners),
            ("PUT", re.compile(rf"/{API_VERSION}/loadbalancer/(?P<amphora_id>{UUID})/(?P<lb_id>{UUID})/haproxy"),
             self.upload_haproxy),
            ("GET", re.compile(rf"/{API_VERSION}/loadbalancer/(?P<lb_id>{UUID})/haproxy"),
             self.get_haproxy),
            ("PUT", re.compile(rf"/{API_VERSION}/loadbalancer/(?P<lb_id>{UUID})/(?P<action>start|stop|reload)"),
             self.haproxy_action),
            ("PUT", re.compile(rf"/{API_VERSION}/loadbalancer/(?P<lb_id>{UUID})/runtime"),
             self.haproxy_runtime),
            ("PUT", re.compile(rf"/{API_VERSION}/loadbalancer/(?P<lb_id>{UUID})/certificates/"
                               rf"(?P<name>[0-9a-f]{{32}}\.(?:pem|crtlist))"),
             self.upload_tls_file),
            ("DELETE", re.compile(rf"/{API_VERSION}/loadbalancer/(?P<lb_id>{UUID})/haproxy"),
             self.delete_haproxy),
            ("PUT", re.compile(rf"/{API_VERSION}/loadbalancer/(?P<amphora_id>{UUID})/(?P<lb_id>{UUID})/udp"),
             self.upload_udp),
            ("GET", re.compile(rf"/{API_VERSION}/loadbalancer/(?P<lb_id>{UUID})/udp"), self.get_udp),
            ("DELETE", re.compile(rf"/{API_VERSION}/loadbalancer/(?P<lb_id>{UUID})/udp"),
             self.delete_udp),
            ("DELETE", re.compile(rf"/{API_VERSION}/listeners/(?P<lb_id>{UUID})"), self.delete_lb),
            ("POST", re.compile(rf"/{API_VERSION}/plug/vip/(?P<vip>[0-9a-fA-F.:]+)"), self.plug_vip),
            ("POST", re.compile(rf"/{API_VERSION}/plug/network"), self.plug_network),
            ("GET", re.compile(rf"/{API_VERSION}/interface/(?P<ip_address>[0-9a-fA-F.:]+)"),
             self.interface),
            ("PUT", re.compile(rf"/{API_VERSION}/vrrp/upload"), self.upload_vrrp),
            ("PUT", re.compile(rf"/{API_VERSION}/vrrp/(?P<action>start|stop|reload)"),
             self.vrrp_action),
            ("PUT", re.compile(rf"/{API_VERSION}/certificate"), self.upload_certificate),
            ("PUT", re.compile(rf"/{API_VERSION}/client_ca"), self.upload_client_ca),
            ("PUT", re.compile(rf"/{API_VERSION}/drain"), self.drain_listeners),
        ]

    def dispatch(self, method: str, path: str, body: bytes) -> Response:
        for route_method, pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                return handler(body=body, **match.groupdict())
        raise HttpError(404, "Not Found", f"{method} {path}")

    def _haproxy(self, lb_id: str) -> Haproxy:
        return Haproxy(HaproxyPaths(self.config.base_path, lb_id), self.config.haproxy_cmd)

    def version(self, body: bytes) -> Response:
        return 200, {"api_version": API_VERSION}, {}

    def info(self, body: bytes) -> Response:
        return 200, {"hostname": socket.gethostname(), "api_version": API_VERSION,
                     "haproxy_version": haproxy_version(self.config.haproxy_cmd),
                     "amphora_id": self.config.amphora_id,
                     "base_path": str(self.config.base_path),
                     # Where haproxy sends its logs (lbaas.amphora.agent.logs).
                     "log_socket": str(self.config.base_path / logs.SOCKET_NAME),
                     # The PING health monitors' script as this amphora has it (its image's
                     # copy, or the host's).
                     "ping_command": str(PING_WRAPPER),
                     "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1]}, {}

    def details(self, body: bytes) -> Response:
        _, info, _ = self.info(body)
        _, listeners, _ = self.listeners(body)
        return 200, {**info, "listeners": listeners,
                     "haproxy_count": sum(1 for item in listeners if item["status"] == "ACTIVE"),
                     "interfaces": {link["ifname"]: [a["local"] for a in link.get("addr_info", [])]
                                    for link in interfaces.interfaces()}}, {}

    def listeners(self, body: bytes) -> Response:
        found = []
        if self.config.base_path.exists():
            for directory in sorted(self.config.base_path.iterdir()):
                if (directory / "haproxy.cfg").exists():
                    running = self._haproxy(directory.name).running()
                    found.append({"uuid": directory.name,
                                  "status": "ACTIVE" if running else "STOPPED", "type": "haproxy"})
                if (directory / udp.CONFIG_NAME).exists():
                    serving = self.udp.get(directory.name).service is not None
                    found.append({"uuid": directory.name,
                                  "status": "ACTIVE" if serving else "STOPPED", "type": "udp"})
        return 200, found, {}

    def upload_haproxy(self, body: bytes, amphora_id: str, lb_id: str) -> Response:
        if amphora_id != self.config.amphora_id:
            raise HttpError(400, "Invalid request", f"this is amphora {self.config.amphora_id}")
        try:
            etag = self._haproxy(lb_id).install(body.decode())
        except InvalidConfig as exc:
            raise HttpError(400, "Invalid request", str(exc)) from exc
        return 202, {"message": "OK"}, {"ETag": etag}

    def get_haproxy(self, body: bytes, lb_id: str) -> Response:
        paths = HaproxyPaths(self.config.base_path, lb_id)
        if not paths.config.exists():
            raise HttpError(404, "Not Found", f"no configuration for load balancer {lb_id}")
        return 200, paths.config.read_text(), {}

    def haproxy_action(self, body: bytes, lb_id: str, action: str) -> Response:
        haproxy = self._haproxy(lb_id)
        if not haproxy.paths.config.exists():
            raise HttpError(404, "Not Found", f"no configuration for load balancer {lb_id}")
        # "reload" applies the installed configuration, through the runtime API when the
        # change allows it (see Haproxy.apply).
        operation = {"start": haproxy.start, "stop": haproxy.stop, "reload": haproxy.apply}[action]
        try:
            how = operation() or f"{action}ed"
        except (subprocess.CalledProcessError, ReloadFailed) as exc:
            details = getattr(exc, "stderr", None) or str(exc)
            raise HttpError(500, f"Error performing action {action}", details) from exc
        return 202, {"message": "OK", "details": f"haproxy for {lb_id} {how}"}, {}

    def upload_tls_file(self, body: bytes, lb_id: str, name: str) -> Response:
        """A tenant's certificate, CA, CRL or crt-list for the next configuration (0600);
        files no served configuration names are removed after each reload."""
        install_certificate(HaproxyPaths(self.config.base_path, lb_id), name, body)
        return 200, {"message": "OK"}, {}

    def haproxy_runtime(self, body: bytes, lb_id: str) -> Response:
        """Runtime API commands (e.g. ``set server``) applied without a reload."""
        commands = json.loads(body or b"[]")
        haproxy = self._haproxy(lb_id)
        if not haproxy.running():
            raise HttpError(409, "haproxy is not running", lb_id)
        answers = [haproxy.runtime(command).strip() for command in commands]
        return 200, {"answers": answers}, {}

    def drain_listeners(self, body: bytes) -> Response:
        """Before the VIP moves away: ``{"addresses": [...], "timeout": seconds}``; answers
        once every haproxy finished its connections (or the timeout passed)."""
        try:
            request = json.loads(body or b"{}")
            addresses = [str(ipaddress.ip_address(a)) for a in request["addresses"]]
            timeout = min(float(request.get("timeout", 5)), 60.0)
        except (ValueError, KeyError, TypeError) as exc:
            raise HttpError(400, "Invalid request", str(exc)) from exc
        haproxies = [self._haproxy(directory.name)
                     for directory in sorted(self.config.base_path.iterdir())
                     if (directory / "haproxy.cfg").exists()] \
            if self.config.base_path.exists() else []
        try:
            left = drain.drain(haproxies, addresses, self.udp.nft, timeout)
        except NftError as exc:
            raise HttpError(500, "Error draining", str(exc)) from exc
        return 200, {"message": "OK", "remaining": left}, {}

    def delete_lb(self, body: bytes, lb_id: str) -> Response:
        haproxy = self._haproxy(lb_id)
        haproxy.stop()
        self.udp.remove(lb_id)
        shutil.rmtree(haproxy.paths.directory, ignore_errors=True)
        return 200, {"message": "OK"}, {}

    def delete_haproxy(self, body: bytes, lb_id: str) -> Response:
        """Stop serving the load balancer's TCP-family listeners (its UDP ones stay)."""
        haproxy = self._haproxy(lb_id)
        haproxy.stop()
        haproxy.paths.config.unlink(missing_ok=True)
        return 200, {"message": "OK"}, {}

    def upload_udp(self, body: bytes, amphora_id: str, lb_id: str) -> Response:
        """Serve the load balancer's UDP/SCTP listeners as described (nftables rules,
        health monitors) at once; a description nftables refuses is a 400 and the old
        rules keep serving."""
        if amphora_id != self.config.amphora_id:
            raise HttpError(400, "Invalid request", f"this is amphora {self.config.amphora_id}")
        try:
            etag = self.udp.install(lb_id, body.decode())
        except udp.InvalidConfig as exc:
            raise HttpError(400, "Invalid request", str(exc)) from exc
        return 202, {"message": "OK"}, {"ETag": etag}

    def get_udp(self, body: bytes, lb_id: str) -> Response:
        paths = udp.UdpPaths(self.config.base_path, lb_id)
        if not paths.config.exists():
            raise HttpError(404, "Not Found", f"no UDP service for load balancer {lb_id}")
        return 200, paths.config.read_text(), {}

    def delete_udp(self, body: bytes, lb_id: str) -> Response:
        self.udp.remove(lb_id)
        return 200, {"message": "OK"}, {}

    def plug_vip(self, body: bytes, vip: str) -> Response:
        def parse(request: dict[str, Any]) -> Plug:
            prefix = ipaddress.ip_network(request["subnet_cidr"]).prefixlen
            # ACTIVE_STANDBY: keepalived holds the VIP, the interface only the VRRP
            # address; so does a failover's new amphora until the old one is gone
            # ("with_vip": false).
            vrrp_only = ((request.get("topology") == "ACTIVE_STANDBY"
                          or request.get("with_vip") is False) and request.get("vrrp_ip"))
            addresses = [] if vrrp_only else [f"{vip}/{prefix}"]
            if request.get("vrrp_ip") and request["vrrp_ip"] != vip:
                addresses = [f"{request['vrrp_ip']}/{prefix}", *addresses]
            return Plug.checked(request, addresses, request.get("gateway"))
        self._configure(_parsed(body, parse))
        return 202, {"message": "OK", "details": f"VIP {vip} plugged"}, {}

    def plug_network(self, body: bytes) -> Response:
        def parse(request: dict[str, Any]) -> Plug:
            return Plug.checked(request, [
                f"{item['ip_address']}/{ipaddress.ip_network(item['subnet_cidr']).prefixlen}"
                for item in request.get("fixed_ips", [])], None)
        self._configure(_parsed(body, parse))
        return 202, {"message": "OK", "details": "network plugged"}, {}

    def _configure(self, plug: Plug) -> None:
        links = interfaces.interfaces()
        try:
            ifname = interfaces.by_mac(plug.mac_address, links)
        except interfaces.InterfaceNotFound as exc:
            raise HttpError(404, "No suitable network interface found", str(exc)) from exc
        try:
            interfaces.configure(ifname, plug.addresses, gateway=plug.gateway, mtu=plug.mtu,
                                 links=links)
        except subprocess.CalledProcessError as exc:
            raise HttpError(500, "Error plugging network", exc.stderr or "") from exc

    def upload_certificate(self, body: bytes) -> Response:
        """Certificate rotation: new TLS connections use the new certificate at once."""
        return self._install(certificate.install, self.config.agent_server_cert, body)

    def upload_client_ca(self, body: bytes) -> Response:
        """Client CA rotation: the controllers' certificates are checked against this
        bundle on new TLS connections at once."""
        return self._install(certificate.install_client_ca, self.config.agent_server_ca, body)

    def _install(self, install: Callable[[Path, bytes], None], path: Path,
                 body: bytes) -> Response:
        try:
            install(path, body)
        except certificate.InvalidCertificate as exc:
            raise HttpError(400, "Invalid request", str(exc)) from exc
        self.certificate_installed()
        return 202, {"message": "OK"}, {}

    def _keepalived(self) -> keepalived.Keepalived:
        return keepalived.Keepalived(keepalived.KeepalivedPaths(self.config.base_path))

    def upload_vrrp(self, body: bytes) -> Response:
        try:
            etag = self._keepalived().install(body.decode())
        except keepalived.InvalidConfig as exc:
            raise HttpError(400, "Invalid request", str(exc)) from exc
        return 200, {"message": "OK"}, {"ETag": etag}

    def vrrp_action(self, body: bytes, action: str) -> Response:
        service = self._keepalived()
        operation = {"start": service.start, "stop": service.stop, "reload": service.reload}[action]
        try:
            done = operation()
        except (FileNotFoundError, RuntimeError, subprocess.CalledProcessError) as exc:
            raise HttpError(500, f"Failed to {action} keepalived", str(exc)) from exc
        return 202, {"message": "OK", "details": f"keepalived {done}"}, {}

    def interface(self, body: bytes, ip_address: str) -> Response:
        try:
            return 200, {"interface": interfaces.by_address(ip_address)}, {}
        except interfaces.InterfaceNotFound as exc:
            raise HttpError(404, "Not Found", str(exc)) from exc


def _handler(agent: Agent) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as separate writes; without this, Nagle's algorithm
        # holds the body back until the controller's delayed ACK (~40 ms per call).
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                status, payload, headers = agent.dispatch(self.command, self.path.split("?")[0], body)
            except HttpError as exc:
                status, payload, headers = exc.status, {"message": exc.message, "details": exc.details}, {}
            except Exception as exc:  # the agent must answer, never die, on a bad request
                LOG.exception("error serving %s %s", self.command, self.path)
                status, payload, headers = 500, {"message": "Internal error", "details": str(exc)}, {}
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if isinstance(payload, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            LOG.info("%s %s", self.address_string(), format % args)

    return Handler


def server_context(config: AgentConfig) -> ssl.SSLContext:
    """TLS >= 1.2, our certificate, and only clients whose certificate the client CA signed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.agent_server_cert)
    context.load_verify_locations(config.agent_server_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


class FailureLog:
    """One warning line per failed connection, at most ``burst`` per ``interval`` seconds;
    the ones left out are counted in the next line. A client that keeps failing (a scan,
    a wrong certificate in a loop) cannot flood the log."""

    def __init__(self, burst: int = 10, interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst, self.interval, self.clock = burst, interval, clock
        self._window_start = -interval
        self._logged = 0
        self._suppressed = 0
        self._lock = threading.Lock()

    def failed(self, client: Any, error: BaseException | None) -> None:
        with self._lock:
            now = self.clock()
            if now - self._window_start >= self.interval:
                self._window_start, self._logged = now, 0
            if self._logged >= self.burst:
                self._suppressed += 1
                return
            self._logged += 1
            suppressed, self._suppressed = self._suppressed, 0
        reason = f"{type(error).__name__}: {error}" if error else "unknown error"
        more = f" ({suppressed} more failed connections not logged)" if suppressed else ""
        LOG.warning("connection from %s failed: %s%s", _host(client), reason, more)


def _host(client: Any) -> str:
    return str(client[0]) if isinstance(client, tuple) and client else str(client)


WILDCARD_HOSTS = ("", "0.0.0.0", "::")


class AgentServer(ThreadingHTTPServer):
    """The agent's HTTPS server, bound to the management address and, so that a packet
    for that address arriving on another interface (a tenant routing it via the VIP)
    finds no listener, to the management interface too (``SO_BINDTODEVICE``)."""

    daemon_threads = True

    def __init__(self, config: AgentConfig, context: ssl.SSLContext,
                 udp_services: udp.UdpServices | None = None) -> None:
        self.address_family = socket.AF_INET6 if ":" in config.bind_host else socket.AF_INET
        self.config = config
        self.failures = FailureLog()
        agent = Agent(config, certificate_installed=self.reload_certificate,
                      udp_services=udp_services)
        # Asked now, while the controller plugs the amphora's ports (or long before, for
        # a spare): the first /info then answers from memory.
        threading.Thread(target=haproxy_version, args=(config.haproxy_cmd,),
                         name="haproxy-version", daemon=True).start()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        # Whether the loop started, and whether stop came: shutdown() waits for a loop
        # that runs, forever if none does.
        self._serving = self._stopped = False
        super().__init__((config.bind_host, config.bind_port), _handler(agent))
        self.context = context

    def server_bind(self) -> None:
        if self.config.bind_host not in WILDCARD_HOSTS:
            try:
                device = interfaces.by_address(self.config.bind_host)
            except (interfaces.InterfaceNotFound, OSError, subprocess.CalledProcessError):
                LOG.warning("no interface holds %s: the agent listens on it from every "
                            "interface", self.config.bind_host)
            else:
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
        super().server_bind()

    def reload_certificate(self) -> None:
        """A context with the new certificate for the connections accepted from now on
        (one attribute assignment: a connection gets either the old or the new one)."""
        self.context = server_context(self.config)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        connection.settimeout(30)
        # The handshake happens on first read, in the request's own thread.
        wrapped = self.context.wrap_socket(connection, server_side=True,
                                           do_handshake_on_connect=False)
        with self._connections_lock:
            self._connections.add(wrapped)
        return wrapped, address

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def serve_until_stopped(self) -> None:
        """Serve without polling: the loop sleeps until a connection comes (a thousand
        agents polling twice a second would keep a core busy), and ``stop`` wakes it;
        after ``stop``, it returns at once."""
        with self._connections_lock:
            if self._stopped:
                return
            self._serving = True
        self.serve_forever(poll_interval=3600.0)

    def stop(self) -> None:
        """Stop serving at once: the listening socket is shut down, which wakes the loop
        (it finds nothing to accept and sees the shutdown request). Open connections stay
        until ``close_connections``. Stopping a server that never served, or twice, is no
        error."""
        with self._connections_lock:
            serving, self._stopped = self._serving and not self._stopped, True
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)
        if serving:
            self.shutdown()
        self.server_close()

    def close_connections(self) -> None:
        """End every open connection, kept-alive ones included (a client would otherwise
        be answered by an agent that stopped); their threads see the end and return."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # below TLS: its reader gets an EOF
                socket.socket.shutdown(connection, socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed (mostly a TLS handshake refused): one line, rate
        limited, no traceback."""
        self.failures.failed(client_address, sys.exc_info()[1])

