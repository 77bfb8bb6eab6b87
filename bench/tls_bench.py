"""TLS termination against plain HTTP through the same amphora, side by side.

Sets the host up as ``dataplane_bench.py`` does (``lbaas up`` with the real drivers, two
nginx backends, a client namespace), stores a certificate with ``lbaas secret store`` and
creates one load balancer with an HTTP listener (port 80) and a TERMINATED_HTTPS listener
(port 443, that certificate), each with a pool of both backends. Then, alternating in
rounds, from the client namespace:

1. requests per second over kept-alive connections, HTTP and HTTPS (``wrk``);
2. new connections per second, one request each (``wrk`` with ``Connection: close``),
   HTTP and HTTPS. wrk keeps each connection's TLS session (``SSL_clear`` after a clean
   shutdown), so every HTTPS one after the first is a *resumed* handshake: haproxy's
   ``SslFrontendSessionReuse_pct`` right after the run shows it;
3. full TLS handshakes per second, one request each: ``openssl s_time -new -www /`` in
   ``--handshake-clients`` parallel processes (a new session every time: the reuse figure
   is about 0), the count over the measured wall-clock time.

It prints the medians, the TLS/plain ratios and the load average. Run as root from the
repository root: ``.venv/bin/python bench/tls_bench.py``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from api_bench import Target
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dataplane_bench import (
    COLLECTION,
    WRK_REPORT,
    Backend,
    BenchError,
    Load,
    Network,
    Service,
    Teardown,
    in_namespace,
    load_average,
    only_amphora,
    run_benchmark,
    run_wrk,
    set_up,
    wait_active,
)

HOST = "www.example.com"
WRK_CASES = (("http", "keep-alive"), ("https", "keep-alive"), ("http", "close"),
             ("https", "close"))
FULL = ("https", "full handshake")
CASES = (*WRK_CASES, FULL)
LABELS = {
    ("http", "keep-alive"): "HTTP requests/s, kept alive",
    ("https", "keep-alive"): "HTTPS requests/s, kept alive",
    ("http", "close"): "HTTP new connections/s",
    ("https", "close"): "HTTPS new connections/s, resumed TLS",
    FULL: "HTTPS new connections/s, full TLS",
}
S_TIME_COUNT = re.compile(r"^(\d+) connections in [0-9.]+s;", re.MULTILINE)


def certificate_files(workdir: Path) -> tuple[Path, Path]:
    """A self-signed P-256 certificate for ``HOST`` and its key, as an operator would bring."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .sign(key, hashes.SHA256()))
    cert_path, key_path = workdir / "tls.crt", workdir / "tls.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def lb_body(vips: Network, members: Network, backends: list[Backend], ref: str) -> dict:
    def pool(name: str) -> dict:
        return {"name": name, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                "members": [{"address": backend.address, "protocol_port": 80,
                             "subnet_id": members.subnet_id} for backend in backends]}
    return {"loadbalancer": {"name": "tls-bench", "vip_subnet_id": vips.subnet_id, "listeners": [
        {"protocol": "HTTP", "protocol_port": 80, "default_pool": pool("plain")},
        {"protocol": "TERMINATED_HTTPS", "protocol_port": 443,
         "default_tls_container_ref": ref, "default_pool": pool("terminated")}]}}


def close_script(workdir: Path) -> Path:
    """wrk's report, with every request asking for its connection to be closed."""
    script = workdir / "close.lua"
    script.write_text('wrk.headers["Connection"] = "close"\n' + WRK_REPORT)
    return script


def session_reuse(service: Service) -> str:
    """haproxy's SslFrontendSessionReuse_pct (over the last second), from the amphora's
    stats socket."""
    amphora = only_amphora(service)
    sockets = list(service.base_path.glob("*/*/haproxy.sock"))
    if not sockets:
        return "?"
    # Relative to its directory: the absolute path is longer than a socket address allows.
    output = subprocess.run(in_namespace(amphora, "socat", "-", "UNIX-CONNECT:haproxy.sock"),
                            input="show info\n", capture_output=True, text=True, check=False,
                            cwd=sockets[0].parent).stdout
    for line in output.splitlines():
        if line.startswith("SslFrontendSessionReuse_pct"):
            return line.split(":", 1)[1].strip() + " %"
    return "?"


def full_handshakes(client_ns: str, vip: str, clients: int, seconds: float) -> tuple[float, int]:
    """Full TLS handshakes per second (each with one ``GET /``) from ``clients`` parallel
    ``openssl s_time -new`` processes, and how many of them failed."""
    command = in_namespace(client_ns, "openssl", "s_time", "-connect", f"{vip}:443", "-new",
                           "-www", "/", "-time", str(max(1, round(seconds))))
    started = time.monotonic()
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True) for _ in range(clients)]
    outputs = [process.communicate(timeout=seconds + 60)[0] for process in processes]
    elapsed = time.monotonic() - started
    counts = [S_TIME_COUNT.search(output) for output in outputs]
    failed = sum(1 for process, count in zip(processes, counts, strict=True)
                 if process.returncode != 0 or count is None)
    return sum(int(count.group(1)) for count in counts if count) / elapsed, failed


@dataclass
class Figures:
    rates: dict[tuple[str, str], list[float]]
    errors: dict[tuple[str, str], int]
    reuse: dict[tuple[str, str], list[str]]


def run(args: argparse.Namespace, workdir: Path) -> list[Target]:
    load = Load(args.threads, args.connections, args.seconds)
    with Teardown() as stack:
        env = set_up(stack, workdir, args.save_log, 10)
        cert, key = certificate_files(workdir)
        ref = env.service.lbaas_json("secret", "store", "--name", "bench", "--certificate",
                                     str(cert), "--private-key", str(key))["id"]
        response = env.api.post(COLLECTION, json=lb_body(env.vips, env.members, env.backends, ref))
        if response.status_code != 201:
            raise BenchError(f"POST {COLLECTION}: {response.status_code} {response.text}")
        created = response.json()["loadbalancer"]
        wait_active(env.api, created["id"])
        vip = created["vip_address"]
        keepalive = workdir / "report.lua"
        keepalive.write_text(WRK_REPORT)
        scripts = {"keep-alive": keepalive, "close": close_script(workdir)}
        urls = {"http": f"http://{vip}/", "https": f"https://{vip}/"}
        print(f"\nfrom the client namespace, {args.rounds} rounds of: wrk -t{load.threads} "
              f"-c{load.connections} -d{load.seconds:g}s for "
              + ", ".join(f"{s} {c}" for s, c in WRK_CASES)
              + f"; {args.handshake_clients} x openssl s_time -new -time "
              f"{max(1, round(load.seconds))} for https full handshakes")
        print(f"  load average before: {load_average()}")
        for url in urls.values():  # warm-up
            run_wrk(env.client_ns, keepalive, [url], Load(load.threads, load.connections, 2))
        figures = Figures({case: [] for case in CASES}, {case: 0 for case in CASES},
                          {case: [] for case in CASES})
        for _ in range(args.rounds):
            for scheme, connection in WRK_CASES:
                (result,) = run_wrk(env.client_ns, scripts[connection], [urls[scheme]], load)
                figures.rates[scheme, connection].append(result.rate)
                figures.errors[scheme, connection] += result.errors
                if scheme == "https":
                    figures.reuse[scheme, connection].append(session_reuse(env.service))
            rate, failed = full_handshakes(env.client_ns, vip, args.handshake_clients,
                                           load.seconds)
            figures.rates[FULL].append(rate)
            figures.errors[FULL] += failed
            figures.reuse[FULL].append(session_reuse(env.service))
        print(f"  load average after: {load_average()}")
        print("\ncleaning up ...", flush=True)
    return report(figures)


def report(figures: Figures) -> list[Target]:
    median = {case: statistics.median(values) for case, values in figures.rates.items()}
    print()
    for case in CASES:
        reuse = (f"   TLS session reuse {', '.join(figures.reuse[case])}"
                 if figures.reuse[case] else "")
        print(f"  {LABELS[case]:<38} median {median[case]:>9.0f}   (runs "
              f"{', '.join(f'{rate:.0f}' for rate in figures.rates[case])})   "
              f"errors {figures.errors[case]}{reuse}")
    keepalive_ratio = median["https", "keep-alive"] / median["http", "keep-alive"]
    print(f"  HTTPS / HTTP: kept-alive requests {keepalive_ratio:.2f}, new connections "
          f"{median['https', 'close'] / median['http', 'close']:.2f} (resumed TLS), "
          f"{median[FULL] / median['http', 'close']:.2f} (full TLS; another client tool)")
    errors = sum(figures.errors.values())
    return [
        Target("full TLS handshakes/s (new connections)", median[FULL], "/s", "> 500",
               median[FULL] > 500),
        Target("TLS kept-alive requests/s vs plain HTTP", keepalive_ratio * 100, "%", ">= 50 %",
               keepalive_ratio >= 0.5),
        Target("failed requests", errors, "", "0", errors == 0),
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the five runs (default 3)")
    parser.add_argument("--handshake-clients", type=int, default=8,
                        help="parallel openssl s_time processes (default 8)")
    parser.add_argument("--save-log", type=Path, metavar="FILE",
                        help="copy the service's log to FILE")
    args = parser.parse_args(argv)
    if (args.threads < 1 or args.connections < args.threads or args.rounds < 1
            or args.seconds <= 0 or args.handshake_clients < 1):
        parser.error("--threads, --connections (>= threads), --rounds, --seconds and "
                     "--handshake-clients must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(run, parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
