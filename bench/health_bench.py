"""Health manager benchmarks.

``heartbeats``: how many heartbeats per second one health manager process records. The
database (SQLite in a temporary directory) holds ``--amphorae`` fake amphorae, each
serving a load balancer with one listener and a pool of two members; load generator
processes send signed version 3 heartbeats for them (about 1 in 100 reports a member
down, so statuses are written too) at each offered rate for ``--seconds``. A rate is
sustained when every heartbeat sent was received and recorded, with nothing left waiting
once the senders stop. No root needed: everything is on 127.0.0.1.

``failover``: the time from an amphora's death (every process of its namespace killed,
the namespace deleted) to the first 200 through the VIP from the replacement, for a SINGLE
load balancer, without any API call. Sets up ``lbaas up`` with the real drivers, networks,
nginx backends and a client namespace as ``dataplane_bench.py`` does (and removes them
all at the end); heartbeat_interval 1 s, heartbeat_timeout 3 s. Needs root.

Run from the repository root: ``.venv/bin/python bench/health_bench.py heartbeats`` or
``... failover``.
"""
from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from api_bench import machine, percentile
from sqlalchemy import insert

from lbaas import config, service
from lbaas.amphora.agent.status_message import amphora_key, wrap
from lbaas.db.models import Amphora, Listener, LoadBalancer, Member, Pool
from lbaas.drivers.compute.netns import namespace_of
from lbaas.health.manager import HealthManager
from lbaas.health.update import BATCH_WINDOW, MAX_WAITING

KEY = "bench-heartbeat-key"
DRAIN_TIMEOUT_S = 30.0
TICK_S = 0.01


# --- heartbeats/s -------------------------------------------------------------------------

def fake_fleet(services: service.Services, count: int) -> list[dict[str, Any]]:
    """``count`` ACTIVE load balancers with one amphora, listener, pool and two members each."""
    fleet = [{"lb": str(uuid.uuid4()), "amphora": str(uuid.uuid4()), "listener": str(uuid.uuid4()),
              "pool": str(uuid.uuid4()), "members": [str(uuid.uuid4()), str(uuid.uuid4())]}
             for _ in range(count)]
    common = {"provisioning_status": "ACTIVE", "operating_status": "ONLINE", "project_id": "bench"}
    with services.db.write() as session:
        session.execute(insert(LoadBalancer), [{"id": f["lb"], "topology": "SINGLE", **common}
                                               for f in fleet])
        session.execute(insert(Pool), [{"id": f["pool"], "load_balancer_id": f["lb"],
                                        "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", **common}
                                       for f in fleet])
        session.execute(insert(Listener), [{"id": f["listener"], "load_balancer_id": f["lb"],
                                            "protocol": "HTTP", "protocol_port": 80,
                                            "default_pool_id": f["pool"], **common} for f in fleet])
        session.execute(insert(Member), [{"id": m, "pool_id": f["pool"], "ip_address": f"10.0.{i}.1",
                                          "protocol_port": 80 + i, **common}
                                         for f in fleet for i, m in enumerate(f["members"])])
        session.execute(insert(Amphora), [{"id": f["amphora"], "load_balancer_id": f["lb"],
                                           "status": "ALLOCATED", "role": "STANDALONE"}
                                          for f in fleet])
    return fleet


def heartbeat(item: dict[str, Any], seq: int) -> dict[str, Any]:
    member_down = seq % 100 == 0
    return {"id": item["amphora"], "seq": seq, "ver": 3,
            "listeners": {item["listener"]: {"status": "OPEN", "stats": {
                "rx": 1200, "tx": 5400, "conns": 3, "totconns": 12, "ereq": 0}}},
            "pools": {f"{item['pool']}:{item['listener']}": {"status": "UP", "members": {
                item["members"][0]: "DOWN" if member_down else "UP", item["members"][1]: "UP"}}}}


def send_heartbeats(address: tuple[str, int], fleet: list[dict[str, Any]], rate: float,
                    seconds: float, sent: Any) -> None:
    """A load generator process: ``rate`` signed heartbeats/s round-robin over ``fleet``."""
    import socket
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # From the clock in milliseconds, as agents do (the health manager drops a sequence
    # far ahead of its clock); each amphora signs with its own key.
    seq = time.time_ns() // 1_000_000
    keys = {item["amphora"]: amphora_key(KEY, item["amphora"]) for item in fleet}
    started = time.monotonic()
    count = 0
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * rate) + 1
        while count < due:
            seq += 1
            item = fleet[count % len(fleet)]
            sock.sendto(wrap(heartbeat(item, seq), keys[item["amphora"]]), address)
            count += 1
        time.sleep(TICK_S)
    sent.value = count


def offer(manager: HealthManager, fleet: list[dict[str, Any]], rate: float, seconds: float,
          senders: int) -> dict[str, float]:
    before = manager.counters.snapshot()
    slices = [fleet[index::senders] for index in range(senders)]
    values = [multiprocessing.Value("q", 0) for _ in range(senders)]
    processes = [multiprocessing.Process(target=send_heartbeats, args=(
        manager.receiver.address, part, rate / senders, seconds, value))
        for part, value in zip(slices, values, strict=True)]
    started, cpu = time.monotonic(), time.process_time()
    for process in processes:
        process.start()
    peak = 0
    while any(process.is_alive() for process in processes):
        peak = max(peak, manager.updater.queue.qsize())
        time.sleep(0.05)
    sent = sum(value.value for value in values)
    senders_done = time.monotonic()
    while (waiting(manager, before, sent) and time.monotonic() < senders_done + DRAIN_TIMEOUT_S):
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    cpu = time.process_time() - cpu
    after = manager.counters.snapshot()
    drain = time.monotonic() - senders_done
    # A sender's sequence runs ahead of the clock by what it sent beyond one heartbeat a
    # millisecond; the next run's senders start from the clock, so wait until it caught
    # up (else the health manager drops their heartbeats as replayed).
    time.sleep(max(0.0, sent / senders / 1000 - (time.monotonic() - started)))

    def delta(name: str) -> int:
        return after.get(name, 0) - before.get(name, 0)
    return {"offered": rate, "sent": sent, "received": delta("received"),
            "accepted": delta("accepted"), "overloaded": delta("overloaded"),
            "failed": delta("failed"), "elapsed": elapsed, "peak_waiting": peak,
            "drain": drain, "rate": delta("accepted") / elapsed,
            "cpu_us": cpu / max(1, delta("accepted")) * 1e6, "lag": manager.updater.lag}


def waiting(manager: HealthManager, before: dict[str, int], sent: int) -> bool:
    """Whether heartbeats sent are still unhandled (in the socket, queue or a batch)."""
    now = manager.counters.snapshot()
    handled = sum(now.get(k, 0) - before.get(k, 0)
                  for k in ("accepted", "overloaded", "failed", "replayed", "duplicate"))
    return handled < sent and now.get("received", 0) - before.get("received", 0) <= sent


def bench_heartbeats(args: argparse.Namespace) -> bool:
    print(f"1. heartbeats/s one health manager records: {args.amphorae} amphorae, "
          f"{args.senders} sender processes, {args.seconds:.0f} s per offered rate")
    with tempfile.TemporaryDirectory(prefix="lbaas-hm-bench-") as tmp:
        settings = config.load(environ={
            "LBAAS__DEFAULT__state_path": tmp,
            "LBAAS__controller_worker__compute_driver": "compute_noop_driver",
            "LBAAS__controller_worker__network_driver": "network_noop_driver",
            "LBAAS__controller_worker__amphora_driver": "amphora_noop_driver",
            "LBAAS__certificates__cert_generator": "cert_noop_generator",
            "LBAAS__health_manager__bind_ip": "127.0.0.1",
            "LBAAS__health_manager__bind_port": "0",
            "LBAAS__health_manager__heartbeat_key": KEY,
            "LBAAS__health_manager__heartbeat_interval": "10",
            "LBAAS__health_manager__failover_grace_period": "86400",
            "LBAAS__health_manager__sock_rlimit": str(8 * 1024 * 1024),
            "LBAAS__health_manager__health_update_threads": str(args.receiver_threads),
        })
        services = service.open_services(settings)
        fleet = fake_fleet(services, args.amphorae)
        manager = HealthManager(settings, services.db)
        manager.start()
        try:
            results = []
            for rate in args.rates:
                for window in args.batch_windows:
                    manager.updater.batch_window = window
                    results.append({**offer(manager, fleet, rate, args.seconds, args.senders),
                                    "window": window})
        finally:
            manager.stop()
            services.db.dispose()
    print(f"  {'window s':>8} {'offered/s':>9} {'sent':>7} {'recorded':>8} {'dropped':>7} "
          f"{'peak waiting':>12} {'backlog s':>9} {'recorded/s':>10} {'CPU us/hb':>9} "
          f"{'lag s':>6}")
    best = 0.0
    for r in results:
        # Sustained: everything recorded, and what was waiting when the senders stopped
        # took at most a second (the backlog did not grow without bound).
        sustained = r["sent"] == r["received"] == r["accepted"] and r["drain"] <= 1.0
        dropped = r["overloaded"] + r["failed"] + r["sent"] - r["received"]
        print(f"  {r['window']:>8.3f} {r['offered']:>9.0f} {r['sent']:>7} {r['accepted']:>8} "
              f"{dropped:>7} {r['peak_waiting']:>12} {r['drain']:>9.2f} {r['rate']:>10.0f} "
              f"{r['cpu_us']:>9.0f} {r['lag']:>6.3f}{'' if sustained else '  (not sustained)'}")
        if sustained:
            best = max(best, r["offered"])
    met = best >= 2000
    print(f"  sustained: {best:.0f} heartbeats/s (target >= 2,000/s): {'met' if met else 'MISSED'}")
    return met


# --- failover time ------------------------------------------------------------------------

def health_options(args: argparse.Namespace) -> str:
    return ("[health_manager]\n"
            f"heartbeat_interval = {args.heartbeat_interval}\n"
            f"heartbeat_timeout = {args.heartbeat_timeout}\n"
            f"health_check_interval = {args.health_check_interval}\n")


def bench_failover(args: argparse.Namespace) -> bool:
    import dataplane_bench as dp

    dp.preflight()  # it shares dataplane_bench's names: one such run at a time on a host
    print(f"2. amphora death -> first 200 through the VIP from its replacement (SINGLE, "
          f"heartbeat_interval {args.heartbeat_interval} s, heartbeat_timeout "
          f"{args.heartbeat_timeout} s, health_check_interval {args.health_check_interval} s), "
          f"{args.runs} runs")
    print(f"  load average before: {dp.load_average()}")
    samples: list[float] = []
    with tempfile.TemporaryDirectory(prefix="lbaas-hm-bench-") as tmp, dp.Teardown() as stack:
        workdir = Path(tmp)
        svc = stack.enter_context(dp.lbaas_up(workdir, None, extra_config=health_options(args)))
        members = stack.enter_context(
            dp.registry_network(svc, f"{dp.PREFIX}-members", dp.MEMBER_CIDR, dp.MEMBER_POOL))
        vips = stack.enter_context(dp.registry_network(svc, f"{dp.PREFIX}-vips", dp.VIP_CIDR,
                                                       dp.VIP_POOL))
        backends = [stack.enter_context(dp.nginx_backend(workdir, members, index, address))
                    for index, address in enumerate(dp.BACKEND_ADDRESSES, start=1)]
        client_ns = stack.enter_context(dp.client_namespace(vips, members, 10))
        api = stack.enter_context(dp.api_client(svc))
        vip = str(dp.FIRST_VIP)
        lb_id = api.post(dp.COLLECTION, json=dp.lb_body(0, vip, vips, members, backends)
                         ).json()["loadbalancer"]["id"]
        dp.wait_active(api, lb_id)
        for run in range(args.runs):
            (amphora_id,) = os.listdir(svc.base_path)
            time.sleep(2 * args.heartbeat_interval)  # its heartbeats have reached the manager
            samples.append(time_failover(dp, client_ns, vip, amphora_id))
            print(f"  run {run + 1}: {samples[-1]:.2f} s", flush=True)
            dp.wait_active(api, lb_id)
            wait_replaced(svc.base_path, amphora_id)
        print("  cleaning up ...", flush=True)
    p50 = statistics.median(samples)
    met = p50 < 10
    print(f"  death -> traffic: p50 {p50:.2f} s, p90 {percentile(samples, 90):.2f} s, "
          f"max {max(samples):.2f} s (target p50 < 10 s): {'met' if met else 'MISSED'}")
    return met


def wait_replaced(base_path: Path, old: str, timeout: float = 60.0) -> None:
    """Until the old amphora's files are gone and exactly one amphora remains."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = os.listdir(base_path)
        if old not in names and len(names) == 1:
            return
        time.sleep(0.1)
    raise RuntimeError(f"amphora {old} was not replaced within {timeout:.0f} s")


def time_failover(dp: Any, client_ns: str, vip: str, amphora_id: str) -> float:
    """Kill the amphora, then poll the VIP from the client until a 200: seconds between."""
    namespace = namespace_of(amphora_id)
    pids = dp.sh("ip", "netns", "pids", namespace).split()
    dp.sh("kill", "-9", *pids)
    died = time.monotonic()
    dp.sh("ip", "netns", "del", namespace)
    poller = subprocess.run(dp.in_namespace(client_ns, sys.executable, dp.__file__, "_poll", vip,
                                            "--deadline", "120"),
                            capture_output=True, text=True, timeout=150)
    lines = poller.stdout.split()
    if poller.returncode != 0 or len(lines) < 3:
        raise RuntimeError(f"the VIP never answered again: {poller.stdout} {poller.stderr}")
    return float(lines[1]) - died


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("heartbeats", "failover"))
    parser.add_argument("--amphorae", type=int, default=5000)
    parser.add_argument("--rates", type=float, nargs="+", default=[1000, 2000, 3000, 4000],
                        help="offered heartbeats/s, one run each")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch-windows", type=float, nargs="+", default=[BATCH_WINDOW],
                        help="the health manager's batch windows to compare (seconds; "
                             f"default {BATCH_WINDOW})")
    parser.add_argument("--senders", type=int, default=2, help="load generator processes")
    parser.add_argument("--receiver-threads", type=int, default=1,
                        help="[health_manager] health_update_threads of the measured manager")
    parser.add_argument("--runs", type=int, default=5, help="failovers timed")
    parser.add_argument("--heartbeat-interval", type=float, default=1.0)
    parser.add_argument("--heartbeat-timeout", type=float, default=3.0)
    parser.add_argument("--health-check-interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.amphorae < 1 or args.seconds <= 0 or args.senders < 1 or args.runs < 1:
        parser.error("--amphorae, --seconds, --senders and --runs must be positive")
    if max(args.rates) * args.seconds > MAX_WAITING * 100:
        parser.error("an offered rate that high would only measure dropping")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    print(f"machine: {machine()}, kernel {os.uname().release}, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    met = bench_heartbeats(args) if args.what == "heartbeats" else bench_failover(args)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
