"""UDP data-plane benchmark: datagrams/s through a UDP listener (nftables in the amphora)
against the same two backends reached directly, side by side in one run.

Sets up what ``dataplane_bench.py`` sets up (``lbaas up`` with the real drivers, a member
and a VIP network, two backend namespaces, a client namespace with a leg on each network),
starts a UDP echo server in each backend namespace, and creates a load balancer with a UDP
listener, a ROUND_ROBIN pool and both backends as members. Then, in alternating rounds,
a load generator in the client namespace keeps ``--flows`` UDP flows (one socket each)
busy, each with one query outstanding, for ``--seconds``: through the VIP, then directly
to the backends (half the flows to each). It prints answered queries/s for both, their
ratio, and how many queries went unanswered (resent after 200 ms).

The echo servers and the load generator are Python, and everything shares the host's
CPUs: the figures compare the two paths under the same load, they are not the kernel's
limit. Everything it made is removed at the end, also on error or Ctrl-C. Run as root
from the repository root: ``.venv/bin/python bench/udp_bench.py``.
"""
from __future__ import annotations

import argparse
import contextlib
import select
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from api_bench import Target
from dataplane_bench import (
    COLLECTION,
    Backend,
    BenchError,
    Environment,
    Teardown,
    in_namespace,
    load_average,
    run_benchmark,
    set_up,
    wait_active,
)

LISTENER_PORT = 5353
MEMBER_PORT = 53
RESEND_AFTER_S = 0.2
ECHO = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
sock.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, peer = sock.recvfrom(2048)
    sock.sendto(data, peer)
"""


@contextlib.contextmanager
def echo_server(backend: Backend) -> Iterator[None]:
    process = subprocess.Popen(in_namespace(backend.namespace, sys.executable, "-c", ECHO,
                                            backend.address, str(MEMBER_PORT)))
    try:
        time.sleep(0.3)
        if process.poll() is not None:
            raise BenchError(f"the echo server of {backend.name} exited")
        yield
    finally:
        process.kill()
        process.wait()


def generate(targets: list[tuple[str, int]], flows: int, seconds: float) -> tuple[int, int]:
    """``flows`` sockets (spread over ``targets``), one query outstanding each, for
    ``seconds``: (answered, resent)."""
    sockets = []
    for index in range(flows):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect(targets[index % len(targets)])
        sock.setblocking(False)
        sockets.append(sock)
    sent_at = {sock: time.monotonic() for sock in sockets}
    for sock in sockets:
        sock.send(b"q" * 64)
    answered = resent = 0
    deadline = time.monotonic() + seconds
    while (now := time.monotonic()) < deadline:
        ready, _, _ = select.select(sockets, [], [], RESEND_AFTER_S / 2)
        for sock in ready:
            try:
                sock.recv(2048)
            except OSError:
                continue
            answered += 1
            sent_at[sock] = time.monotonic()
            sock.send(b"q" * 64)
        for sock in sockets:
            if now - sent_at[sock] > RESEND_AFTER_S:
                resent += 1
                sent_at[sock] = now
                with contextlib.suppress(OSError):
                    sock.send(b"q" * 64)
    for sock in sockets:
        sock.close()
    return answered, resent


def load(env: Environment, targets: list[tuple[str, int]], args: argparse.Namespace
         ) -> tuple[float, int]:
    """Run ``generate`` in the client namespace; (answered/s, resent)."""
    spec = ",".join(f"{host}:{port}" for host, port in targets)
    result = subprocess.run(
        in_namespace(env.client_ns, sys.executable, str(Path(__file__)), "_generate", spec,
                     str(args.flows), str(args.seconds)),
        capture_output=True, text=True, timeout=args.seconds + 30, check=True)
    answered, resent = (int(value) for value in result.stdout.split())
    return answered / args.seconds, resent


def create_udp_lb(env: Environment) -> str:
    body = {"loadbalancer": {
        "name": "udp-bench", "vip_subnet_id": env.vips.subnet_id,
        "listeners": [{
            "name": "udp-bench-dns", "protocol": "UDP", "protocol_port": LISTENER_PORT,
            "default_pool": {
                "name": "udp-bench-pool", "protocol": "UDP", "lb_algorithm": "ROUND_ROBIN",
                "members": [{"address": backend.address, "protocol_port": MEMBER_PORT,
                             "subnet_id": env.members.subnet_id}
                            for backend in env.backends]}}]}}
    response = env.api.post(COLLECTION, json=body)
    if response.status_code != 201:
        raise BenchError(f"creating the load balancer failed: {response.text}")
    lb = response.json()["loadbalancer"]
    wait_active(env.api, lb["id"])
    return lb["vip_address"]


def run(args: argparse.Namespace, workdir: Path) -> list[Target]:
    with Teardown() as stack:
        env = set_up(stack, workdir, None, 10)
        for backend in env.backends:
            stack.enter_context(echo_server(backend))
        vip = create_udp_lb(env)
        through = [(vip, LISTENER_PORT)]
        direct = [(backend.address, MEMBER_PORT) for backend in env.backends]
        load(env, through, argparse.Namespace(flows=args.flows, seconds=2.0))  # warm up
        print(f"\nUDP queries/s, {args.flows} flows with one query outstanding each, "
              f"{args.seconds:.0f} s per run, {args.rounds} rounds alternating")
        print(f"  load average before: {load_average()}")
        rates: dict[str, list[float]] = {"through the load balancer": [], "direct": []}
        lost: dict[str, int] = {name: 0 for name in rates}
        for round_ in range(1, args.rounds + 1):
            for name, targets in (("through the load balancer", through), ("direct", direct)):
                rate, resent = load(env, targets, args)
                rates[name].append(rate)
                lost[name] += resent
                print(f"  round {round_}: {name:<26} {rate:>9,.0f} queries/s, {resent} resent")
        print(f"  load average after: {load_average()}")
        through_rate = statistics.median(rates["through the load balancer"])
        direct_rate = statistics.median(rates["direct"])
        print(f"\n  median: through the load balancer {through_rate:,.0f}/s, direct "
              f"{direct_rate:,.0f}/s, ratio {through_rate / direct_rate:.2f}; unanswered "
              f"(resent) {lost['through the load balancer']} vs {lost['direct']}")
        print("\ncleaning up ...", flush=True)
    return [Target("UDP through the LB / direct (median)", through_rate / direct_rate * 100,
                   "%", ">= 50", through_rate / direct_rate >= 0.5)]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=32, help="UDP flows (sockets), default 32")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both runs (default 3)")
    args = parser.parse_args(argv)
    if args.flows < 2 or args.seconds <= 0 or args.rounds < 1:
        parser.error("--flows must be at least 2, --seconds and --rounds positive")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_generate"]:
        spec, flows, seconds = argv[1:4]
        targets = [(host, int(port)) for host, _, port in
                   (item.rpartition(":") for item in spec.split(","))]
        print(*generate(targets, int(flows), float(seconds)))
        return 0
    return run_benchmark(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
