"""Requests lost by keep-alive clients while haproxy reloads, with and without
``option idle-close-on-response`` (root: haproxy drops to user nobody; loopback only).

haproxy serves one HTTP listener on 127.0.0.1, rendered by ``lbaas.amphora.haproxy_config``
and run by the agent's ``Haproxy`` (``-x`` takes the listeners over, ``-sf`` soft-stops the
old process); a threaded backend answers on loopback. ``--clients`` threads each send
requests back to back on one kept-alive connection (a new one only when haproxy answers
``Connection: close``), while the main thread installs a changed configuration (the
member timeout alternates, so each change is a reload) ``--reloads`` times,
``--interval`` s apart. A request that raises (``RemoteDisconnected``, a reset) is lost.

    sudo .venv/bin/python bench/keepalive_reload_bench.py            # about a minute
"""
from __future__ import annotations

import argparse
import http.client
import http.server
import resource
import socket
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from lbaas.amphora import haproxy_config
from lbaas.amphora.agent.haproxy import Haproxy, HaproxyPaths
from lbaas.db import models

LB_ID = "10000000-0000-4000-8000-000000000001"
OPTION = "    option idle-close-on-response\n"


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "6")
        self.end_headers()
        self.wfile.write(b"hello\n")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def configuration(paths: HaproxyPaths, port: int, backend: int, timeout: int,
                  keep_option: bool) -> str:
    active = {"provisioning_status": "ACTIVE", "operating_status": "ONLINE", "enabled": True}
    pool = models.Pool(id="30000000-0000-4000-8000-000000000001", protocol="HTTP",
                       lb_algorithm="ROUND_ROBIN", tls_enabled=False, session_persistence=None,
                       members=[models.Member(id="40000000-0000-4000-8000-000000000001",
                                              ip_address="127.0.0.1", protocol_port=backend,
                                              weight=1, backup=False, **active)], **active)
    listener = models.Listener(
        id="20000000-0000-4000-8000-000000000001", protocol="HTTP", protocol_port=port,
        default_pool=pool, connection_limit=-1, insert_headers={}, allowed_cidrs=[],
        timeout_client_data=50000, timeout_member_connect=5000, timeout_member_data=timeout,
        timeout_tcp_inspect=0, **active)
    lb = models.LoadBalancer(id=LB_ID, listeners=[listener], vip_address="127.0.0.1",
                             topology="SINGLE", **active)
    options = haproxy_config.RenderOptions(
        amphora_id="a0000000-0000-4000-8000-000000000001", stats_socket=paths.stats_socket,
        server_state_file=str(paths.state_file), pid_file=str(paths.pid),
        ping_command="/bin/true", fd_limit=resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    text = haproxy_config.render(lb, options)
    assert OPTION in text
    return text if keep_option else text.replace(OPTION, "")


def client(port: int, stop: threading.Event, counts: Counter[str], lock: threading.Lock) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    while not stop.is_set():
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            response.read()
            outcome = "ok" if response.status == 200 else f"status {response.status}"
            if response.getheader("connection", "").lower() == "close":
                connection.close()  # the next request opens a new connection
        except (OSError, http.client.HTTPException) as exc:
            outcome = f"failed: {type(exc).__name__}"
            connection.close()
        with lock:
            counts[outcome] += 1
    connection.close()


def run(keep_option: bool, args: argparse.Namespace, backend: int) -> Counter[str]:
    with tempfile.TemporaryDirectory(prefix="keepalive-bench-") as directory:
        paths = HaproxyPaths(Path(directory), LB_ID)
        haproxy = Haproxy(paths)
        with free_port() as port:
            pass
        haproxy.install(configuration(paths, port, backend, 50000, keep_option))
        haproxy.apply()
        stop, lock, counts = threading.Event(), threading.Lock(), Counter()
        threads = [threading.Thread(target=client, args=(port, stop, counts, lock))
                   for _ in range(args.clients)]
        try:
            for thread in threads:
                thread.start()
            for n in range(args.reloads):
                time.sleep(args.interval)
                haproxy.install(configuration(paths, port, backend, 40000 + n % 2, keep_option))
                assert haproxy.apply() == "reloaded"
            time.sleep(args.interval)
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)
            haproxy.stop()
        return counts


class free_port:  # noqa: N801 - a context manager: a port free on loopback
    def __enter__(self) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--reloads", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.1,
                        help="seconds between reloads (default 0.1)")
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    server.daemon_threads = True
    server.handle_error = lambda *_: None  # haproxy closing its side of a connection
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for keep_option in (False, True):
            began = time.monotonic()
            counts = run(keep_option, args, server.server_address[1])
            total = sum(counts.values())
            failed = sum(value for key, value in counts.items() if key != "ok")
            name = "with" if keep_option else "without"
            print(f"{name:>7} option idle-close-on-response: {args.reloads} reloads, "
                  f"{args.clients} keep-alive clients, {total} requests in "
                  f"{time.monotonic() - began:.1f} s, {failed} failed "
                  f"({failed / max(total, 1) * 1e5:.1f} per 100,000) {dict(counts)}")
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
