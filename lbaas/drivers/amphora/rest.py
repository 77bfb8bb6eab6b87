"""Amphora driver ``amphora_haproxy_rest_driver``: the agent's REST API over mutual TLS.

The controller presents its client certificate and accepts an agent only if the server
CA signed its certificate **and** the certificate names the amphora it meant to reach
(lbaas.certs.tls), so one amphora can never answer for another.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import ipaddress
import logging
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from lbaas import constants
from lbaas.amphora import haproxy_config, keepalived_config, udp_config
from lbaas.amphora.agent.haproxy import HaproxyPaths
from lbaas.amphora.agent.keepalived import KeepalivedPaths
from lbaas.cert_manager.base import CertManager
from lbaas.certs import tls as agent_tls
from lbaas.config import AmphoraAgentSection, HaproxyAmphora, KeepalivedVrrp
from lbaas.db.models import Amphora, LoadBalancer
from lbaas.drivers.amphora import tls
from lbaas.drivers.amphora.base import AmphoraDriver
from lbaas.drivers.network.base import Port

LOG = logging.getLogger(__name__)
API = "1.0"


class AgentError(Exception):
    """The agent refused a request or could not be reached; the message says which."""


class RestAmphoraDriver(AmphoraDriver):
    def __init__(self, settings: HaproxyAmphora, client_cert: Path, server_ca: Path,
                 vrrp: KeepalivedVrrp | None = None, cert_manager: CertManager | None = None,
                 logs: AmphoraAgentSection | None = None) -> None:
        self.settings = settings
        # Reads tenants' certificates for TERMINATED_HTTPS listeners and TLS pools.
        self.cert_manager = cert_manager
        self.vrrp = vrrp or KeepalivedVrrp()
        self.logs = logs or AmphoraAgentSection()
        self.client_cert = client_cert
        self.server_ca = server_ca
        self._clients: dict[str, tuple[tuple[int, int], httpx.Client]] = {}
        self._lock = threading.Lock()

    def _files(self) -> tuple[int, int]:
        """When the client certificate and the trusted CAs last changed (a CA rotation)."""
        return self.client_cert.stat().st_mtime_ns, self.server_ca.stat().st_mtime_ns

    def _client(self, amphora_id: str) -> httpx.Client:
        """One connection pool per amphora, bound to its identity (see lbaas.certs.tls);
        made again when the certificate files changed, so that a rotation reaches every
        controller process without a restart."""
        files = self._files()
        stale = None
        with self._lock:
            made, client = self._clients.get(amphora_id, (None, None))
            if client is None or made != files:
                stale = client
                context = agent_tls.controller_context(self.client_cert, self.server_ca, amphora_id)
                client = httpx.Client(
                    verify=context,
                    timeout=httpx.Timeout(self.settings.rest_request_read_timeout,
                                          connect=self.settings.rest_request_conn_timeout))
                self._clients[amphora_id] = (files, client)
        if stale is not None:
            stale.close()
        return client

    def forget(self, amphora_id: str) -> None:
        """Close the connections to an amphora that is gone."""
        with self._lock:
            _, client = self._clients.pop(amphora_id, (None, None))
        if client is not None:
            client.close()

    def _url(self, amphora: Amphora, path: str) -> str:
        host = amphora.lb_network_ip or ""
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
        return f"https://{host}:{self.settings.bind_port}/{path}"

    def _request(self, method: str, amphora: Amphora, path: str, **kwargs: Any) -> httpx.Response:
        started = time.monotonic()
        try:
            response = self._client(amphora.id).request(method, self._url(amphora, path), **kwargs)
        except httpx.HTTPError as exc:
            LOG.debug("amphora %s: %s /%s failed after %.3f s: %s", amphora.id, method, path,
                      time.monotonic() - started, exc)
            raise AgentError(f"amphora {amphora.id}: {method} /{path}: {exc}") from exc
        LOG.debug("amphora %s: %s /%s answered %d in %.3f s", amphora.id, method, path,
                  response.status_code, time.monotonic() - started)
        if response.status_code >= 400:
            raise AgentError(f"amphora {amphora.id}: {method} /{path} answered "
                             f"{response.status_code}: {response.text}")
        return response

    def wait_ready(self, amphora: Amphora) -> None:
        """Poll the new agent; each try gives up quickly, so that a connection attempt lost
        while the amphora's link comes up costs one retry interval, not TCP's 1 s resend.
        It waits ``connection_max_retries`` x ``connection_retry_interval`` at most: a
        try whose SYN is dropped lasts its whole connect timeout, so counting tries alone
        made the default 30 s into 330."""
        retries, interval = (self.settings.connection_max_retries,
                             self.settings.connection_retry_interval)
        deadline = time.monotonic() + retries * interval
        quick = httpx.Timeout(self.settings.rest_request_read_timeout, connect=interval * 10)
        last: Exception | None = None
        for _ in range(retries):
            try:
                self._request("GET", amphora, "", timeout=quick)
                return
            except AgentError as exc:
                last = exc
            if time.monotonic() >= deadline:
                break
            time.sleep(interval)
        raise AgentError(f"amphora {amphora.id} did not answer within "
                         f"{retries * interval:g} s: {last}")

    def post_vip_plug(self, amphora: Amphora, vip: Port, vrrp: Port, mac_address: str,
                      topology: str = constants.TOPOLOGY_SINGLE, with_vip: bool = True) -> None:
        self._request("POST", amphora, f"{API}/plug/vip/{vip.ip_address}", json={
            "subnet_cidr": vip.subnet_cidr, "gateway": vip.gateway,
            "mac_address": mac_address, "vrrp_ip": vrrp.ip_address, "mtu": vip.mtu,
            "topology": topology, "with_vip": with_vip})

    def post_network_plug(self, amphora: Amphora, port: Port, mac_address: str) -> None:
        self._request("POST", amphora, f"{API}/plug/network", json={
            "mac_address": mac_address, "mtu": port.mtu,
            "fixed_ips": [{"ip_address": port.ip_address, "subnet_cidr": port.subnet_cidr}]})

    def _render_options(self, load_balancer: LoadBalancer, amphora: Amphora) -> haproxy_config.RenderOptions:
        info = self._request("GET", amphora, f"{API}/info").json()
        paths = HaproxyPaths(Path(info["base_path"]), load_balancer.id)
        options = haproxy_config.RenderOptions.from_settings(
            self.settings, amphora.id, stats_socket=paths.stats_socket,
            server_state_file=paths.state_file, pid_file=paths.pid, certs_dir=paths.certs,
            fd_limit=info.get("fd_limit"), log_socket=info.get("log_socket"),
            ping_command=info.get("ping_command"))
        return dataclasses.replace(
            options, user="haproxy", group="haproxy",
            user_log_facility=self.logs.user_log_facility,
            administrative_log_facility=self.logs.administrative_log_facility)

    def update(self, load_balancer: LoadBalancer, amphora: Amphora) -> None:
        """haproxy for the TCP-family listeners, nftables (the agent's UDP service) for
        the UDP and SCTP ones; each part is removed when nothing is left for it."""
        listeners = [listener for listener in load_balancer.listeners
                     if listener.provisioning_status != constants.PENDING_DELETE]
        haproxy_part = any(listener.protocol not in udp_config.DATAGRAM_PROTOCOLS
                           for listener in listeners)
        udp_part = udp_config.render(load_balancer)
        if not haproxy_part and udp_part is None:
            self.delete(load_balancer, amphora)
            return
        if haproxy_part:
            material = tls.fetch(load_balancer, self.cert_manager) if self.cert_manager else None
            text, files = haproxy_config.render_files(
                load_balancer, self._render_options(load_balancer, amphora), material)
            # Certificates first (over this mutual-TLS channel only): haproxy -c reads them.
            for name, content in sorted(files.items()):
                self._request("PUT", amphora,
                              f"{API}/loadbalancer/{load_balancer.id}/certificates/{name}",
                              content=content)
            self._request("PUT", amphora,
                          f"{API}/loadbalancer/{amphora.id}/{load_balancer.id}/haproxy",
                          content=text.encode())
            self._request("PUT", amphora, f"{API}/loadbalancer/{load_balancer.id}/reload")
        else:
            self._request("DELETE", amphora, f"{API}/loadbalancer/{load_balancer.id}/haproxy")
        if udp_part is not None:
            self._request("PUT", amphora,
                          f"{API}/loadbalancer/{amphora.id}/{load_balancer.id}/udp",
                          content=udp_part.encode())
        else:
            self._request("DELETE", amphora, f"{API}/loadbalancer/{load_balancer.id}/udp")

    def vrrp_interface(self, amphora: Amphora) -> str:
        return str(self._request("GET", amphora, f"{API}/interface/{amphora.vrrp_ip}").json()["interface"])

    def _vrrp_password(self, lb_id: str) -> str:
        """The pair's VRRP password: derived from the load balancer id with the controller's
        key (in its client certificate file), so every controller computes the same one
        and nothing needs storing."""
        digest = hmac.new(self.client_cert.read_bytes(), lb_id.encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode()[:7]

    def update_vrrp(self, load_balancer: LoadBalancer, amphora: Amphora,
                    takeover: bool = False) -> None:
        info = self._request("GET", amphora, f"{API}/info").json()
        options = keepalived_config.VrrpOptions(
            check_script=str(KeepalivedPaths(Path(info["base_path"])).check_script),
            auth_pass=self._vrrp_password(load_balancer.id), vrrp=self.vrrp)
        text = keepalived_config.render(load_balancer, amphora, options, takeover=takeover)
        self._request("PUT", amphora, f"{API}/vrrp/upload", content=text.encode())
        self._request("PUT", amphora, f"{API}/vrrp/start")

    def _quick(self) -> httpx.Timeout:
        """For an amphora that may be dead (a failover's old one): a live agent accepts a
        connection at once, and answers these calls within a second, so a dead one is
        given up after 2 s to connect or 5 s to answer (a kept-alive connection to an
        amphora whose host was cut off never fails to connect, it just gets no answer)."""
        return httpx.Timeout(min(5.0, self.settings.rest_request_read_timeout),
                             connect=min(2.0, self.settings.rest_request_conn_timeout))

    def stop_vrrp(self, amphora: Amphora) -> None:
        self._request("PUT", amphora, f"{API}/vrrp/stop", timeout=self._quick())

    def drain(self, amphora: Amphora, addresses: list[str], timeout: float) -> list[int]:
        answer = self._request("PUT", amphora, f"{API}/drain",
                               json={"addresses": addresses, "timeout": timeout},
                               timeout=httpx.Timeout(timeout + 10))
        return list(answer.json().get("remaining", []))

    def holds_address(self, amphora: Amphora, ip_address: str) -> bool:
        try:
            self._request("GET", amphora, f"{API}/interface/{ip_address}", timeout=self._quick())
        except AgentError:
            return False
        return True

    def delete(self, load_balancer: LoadBalancer, amphora: Amphora) -> None:
        self._request("DELETE", amphora, f"{API}/listeners/{load_balancer.id}",
                      timeout=self._quick())

    def upload_cert_amp(self, amphora: Amphora, pem: bytes) -> None:
        self._request("PUT", amphora, f"{API}/certificate", content=pem)

    def upload_client_ca(self, amphora: Amphora, pem: bytes) -> None:
        self._request("PUT", amphora, f"{API}/client_ca", content=pem)
