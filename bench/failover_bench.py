"""ACTIVE_STANDBY benchmark: VRRP failover and API failover on real amphorae.

Sets up the host as ``dataplane_bench.py`` does (``lbaas up`` with the real drivers, here
with ``[keepalived_vrrp] vrrp_advert_int`` from ``--advert-int``; a member and a VIP
network; two nginx backends; a client namespace) and a flavor whose profile says
``loadbalancer_topology: ACTIVE_STANDBY``, then measures:

1. the time from ``POST /v2/lbaas/loadbalancers`` (HTTP listener, pool, two members) to
   the first ``200`` through the VIP, polled every ~10 ms, over ``--runs`` load balancers
   (each deleted before the next; the last one is kept for what follows);
2. per run, with a prober in the client namespace sending one request every 10 ms
   through the VIP (a new connection each, given up after ``--timeout``):
   a. the traffic gap when the MASTER dies: every process of the amphora holding the VIP
      is killed and its namespace deleted; gap = last success before the kill to the
      first success after it, and the requests that failed;
   b. ``PUT .../failover`` after that crash (the pair rebuilt): its duration and failures;
   c. ``PUT .../failover`` of the healthy pair: its duration and failed requests;
3. ``--watch`` seconds of the healthy pair under the prober: failed requests, VIP moves
   (which amphora holds the VIP, sampled every 50 ms) and the MASTER transitions the
   amphorae's keepalived logged (a flap too short to sample shows there), to judge whether
   the advert interval is stable at this machine's load;
4. ``--idle`` seconds of the pair without traffic: the CPU its processes used (keepalived,
   haproxy, the agent), in percent of one core.

With several ``--advert-int`` values each gets a service of its own, one after the other,
and a table puts them side by side at the end.

Everything it made is removed at the end, also on error or Ctrl-C (see dataplane_bench).
Run as root from the repository root: ``.venv/bin/python bench/failover_bench.py``.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from api_bench import Target, percentile
from dataplane_bench import (
    COLLECTION,
    PREFIX,
    BenchError,
    Service,
    Teardown,
    bench_first_request,
    in_namespace,
    lb_body,
    load_average,
    ms,
    namespaces_cpu,
    run_benchmark,
    set_up,
    wait_status,
)

from lbaas.drivers.compute.netns import namespace_of

PROBE_INTERVAL_S = 0.01
FAILOVER_TIMEOUT_S = 120.0


# --- the prober (runs in the client namespace) ------------------------------------------

def probe(vip: str, port: int, timeout: float) -> int:
    """Until killed: one GET every 10 ms; prints ``<monotonic> <1|0>`` per request."""
    request = f"GET / HTTP/1.1\r\nHost: {vip}\r\nConnection: close\r\n\r\n".encode()
    print("ready", flush=True)
    next_at = time.monotonic()
    while True:
        try:
            with socket.create_connection((vip, port), timeout=timeout) as sock:
                sock.settimeout(timeout)
                sock.sendall(request)
                ok = sock.makefile("rb").readline(256).split()[1:2] == [b"200"]
        except OSError:
            ok = False
        print(f"{time.monotonic():.6f} {int(ok)}", flush=True)
        next_at += PROBE_INTERVAL_S
        time.sleep(max(0.0, next_at - time.monotonic()))


class Prober:
    """The prober in the client namespace, its answers collected by a thread."""

    def __init__(self, client_ns: str, vip: str, timeout: float) -> None:
        self.results: list[tuple[float, bool]] = []
        self.process = subprocess.Popen(
            in_namespace(client_ns, sys.executable, str(Path(__file__).resolve()), "_probe",
                         vip, "--timeout", str(timeout)),
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, bufsize=0)
        if self.process.stdout.readline().strip() != b"ready":
            raise BenchError("the prober in the client namespace did not start")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            at, ok = line.split()
            self.results.append((float(at), ok == b"1"))

    def wait_success_after(self, moment: float, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(ok and at > moment for at, ok in list(self.results)):
            if time.monotonic() > deadline:
                raise BenchError(f"no request through the VIP succeeded within {timeout:.0f} s")
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self.reader.join(5)

    def __enter__(self) -> Prober:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Outage:
    gap_s: float
    failed: int


def outage(results: list[tuple[float, bool]], start: float, end: float) -> Outage:
    """Requests sent between ``start`` and ``end``: the longest time between two
    successes and how many failed."""
    window = [(at, ok) for at, ok in results if start <= at <= end]
    successes = [at for at, ok in window if ok]
    gaps = [later - earlier for earlier, later in zip(successes, successes[1:], strict=False)]
    return Outage(max(gaps, default=end - start), sum(1 for _, ok in window if not ok))


# --- the amphorae -----------------------------------------------------------------------

def amphora_ids(service: Service) -> list[str]:
    return [path.name for path in service.base_path.iterdir()] if service.base_path.is_dir() else []


def vip_holder(service: Service, vip: str) -> str | None:
    """The amphora whose namespace has the VIP now (an observer's look, not the agent's)."""
    for amphora_id in amphora_ids(service):
        found = subprocess.run(["ip", "-n", namespace_of(amphora_id), "-br", "addr", "show"],
                               capture_output=True, text=True).stdout
        if f" {vip}/" in found:
            return amphora_id
    return None


def crash(amphora_id: str) -> None:
    """Every process of the amphora killed at once, then its namespace deleted."""
    namespace = namespace_of(amphora_id)
    for pid in subprocess.run(["ip", "netns", "pids", namespace], capture_output=True,
                              text=True).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    subprocess.run(["ip", "netns", "del", namespace], check=True)


def wait_holder(service: Service, vip: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while (holder := vip_holder(service, vip)) is None:
        if time.monotonic() > deadline:
            raise BenchError(f"no amphora holds the VIP {vip} after {timeout:.0f} s")
        time.sleep(0.05)
    return holder


def api_failover(api: httpx.Client, lb_id: str) -> float:
    """PUT .../failover and wait for ACTIVE; its duration."""
    started = time.monotonic()
    response = api.put(f"{COLLECTION}/{lb_id}/failover")
    if response.status_code != 202:
        raise BenchError(f"PUT failover: {response.status_code} {response.text}")
    time.sleep(0.05)
    status = wait_status(api, lb_id, lambda s: s in ("ACTIVE", "ERROR", None), "ACTIVE")
    if status != "ACTIVE":
        raise BenchError(f"failover left load balancer {lb_id} {status} (see the service log)")
    return time.monotonic() - started


def active_standby_flavor(api: httpx.Client) -> str:
    """A flavor (and its profile) for ACTIVE_STANDBY load balancers; its id. They go with
    the service's database."""
    profile = api.post("/v2/lbaas/flavorprofiles", json={"flavorprofile": {
        "name": f"{PREFIX}-active-standby", "provider_name": "amphora",
        "flavor_data": '{"loadbalancer_topology": "ACTIVE_STANDBY"}'}})
    if profile.status_code != 201:
        raise BenchError(f"POST flavorprofiles: {profile.status_code} {profile.text}")
    flavor = api.post("/v2/lbaas/flavors", json={"flavor": {
        "name": f"{PREFIX}-active-standby", "enabled": True,
        "flavor_profile_id": profile.json()["flavorprofile"]["id"]}})
    if flavor.status_code != 201:
        raise BenchError(f"POST flavors: {flavor.status_code} {flavor.text}")
    return flavor.json()["flavor"]["id"]


def with_flavor(body: dict[str, Any], flavor_id: str) -> dict[str, Any]:
    body["loadbalancer"]["flavor_id"] = flavor_id
    return body


# --- the run ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    crash: Outage
    rebuild_s: float
    rebuild: Outage
    failover_s: float
    failover: Outage


def one_run(api: httpx.Client, service: Service, client_ns: str, lb_id: str, vip: str,
            timeout: float) -> Run:
    with Prober(client_ns, vip, timeout) as prober:
        prober.wait_success_after(time.monotonic())
        time.sleep(1.0)
        master = wait_holder(service, vip)
        killed = time.monotonic()
        crash(master)
        prober.wait_success_after(killed)
        time.sleep(1.0)
        crashed = outage(prober.results, killed - 0.5, time.monotonic())
        started = time.monotonic()
        rebuild_s = api_failover(api, lb_id)
        time.sleep(1.0)
        rebuilt = outage(prober.results, started, time.monotonic())
        started = time.monotonic()
        failover_s = api_failover(api, lb_id)
        time.sleep(1.0)
        failed_over = outage(prober.results, started, time.monotonic())
    return Run(crashed, rebuild_s, rebuilt, failover_s, failed_over)


def master_transitions(service: Service) -> int:
    """How often the keepalived of the amphorae there now entered MASTER state so far."""
    count = 0
    for amphora_id in amphora_ids(service):
        log = service.base_path / amphora_id / "vrrp" / "keepalived.log"
        if log.exists():
            count += log.read_text(errors="replace").count("Entering MASTER STATE")
    return count


@dataclass(frozen=True)
class Watched:
    outage: Outage
    moves: int
    transitions: int


def watch(service: Service, client_ns: str, vip: str, seconds: float,
          timeout: float) -> Watched:
    """The healthy pair for ``seconds``: the prober's failures, how often the VIP moved,
    and the MASTER transitions keepalived logged meanwhile."""
    moves, holder = 0, wait_holder(service, vip)
    transitions = master_transitions(service)
    with Prober(client_ns, vip, timeout) as prober:
        started = time.monotonic()
        while time.monotonic() < started + seconds:
            now = vip_holder(service, vip)
            if now != holder:
                moves, holder = moves + 1, now
            time.sleep(0.05)
        return Watched(outage(prober.results, started, time.monotonic()), moves,
                       master_transitions(service) - transitions)


def idle_pair_cpu(service: Service, seconds: float) -> dict[str, float]:
    """The pair without traffic for ``seconds``: per command, the CPU of its processes in
    percent of one core (see ``dataplane_bench.namespaces_cpu``)."""
    return namespaces_cpu([namespace_of(amphora_id) for amphora_id in amphora_ids(service)],
                          seconds)


@dataclass(frozen=True)
class Result:
    """What one advert interval measured."""

    advert_int: float
    runs: list[Run]
    posts: list[float]
    watched: Watched
    idle: dict[str, float]


def stats(values: list[float]) -> str:
    return (f"p50 {ms(percentile(values, 50))}, max {ms(max(values))}"
            if len(values) > 1 else ms(values[0]))


def report(result: Result, watch_s: float, idle_s: float) -> None:
    runs = result.runs
    for index, run in enumerate(runs, start=1):
        print(f"  run {index}: MASTER killed -> gap {ms(run.crash.gap_s)} ({run.crash.failed} "
              f"failed); rebuild {run.rebuild_s:.2f} s ({run.rebuild.failed} failed, longest gap "
              f"{ms(run.rebuild.gap_s)}); healthy failover {run.failover_s:.2f} s "
              f"({run.failover.failed} failed, longest gap {ms(run.failover.gap_s)})")
    print(f"  MASTER killed: gap {stats([run.crash.gap_s for run in runs])}; failed requests "
          f"{sorted(run.crash.failed for run in runs)}")
    print(f"  API failover of the healthy pair: {stats([r.failover_s for r in runs])}; "
          f"failed requests {sorted(run.failover.failed for run in runs)}, longest gap "
          f"{stats([r.failover.gap_s for r in runs])}")
    print(f"  API failover after the crash: {stats([r.rebuild_s for r in runs])}; "
          f"failed requests {sorted(run.rebuild.failed for run in runs)}")
    watched = result.watched
    print(f"  {watch_s:.0f} s of the healthy pair: {watched.outage.failed} failed requests, "
          f"VIP moved {watched.moves} times, {watched.transitions} MASTER transitions logged")
    print(f"  {idle_s:.0f} s of the idle pair: CPU "
          + ", ".join(f"{command} {share:.2f} %" for command, share in sorted(result.idle.items()))
          + f"; total {sum(result.idle.values()):.2f} % of one core")


def side_by_side(results: list[Result]) -> None:
    """One column per advert interval."""
    rows = [
        ("POST -> first 200, p50", lambda r: ms(percentile(r.posts, 50))),
        ("MASTER killed: gap p50", lambda r: ms(percentile([x.crash.gap_s for x in r.runs], 50))),
        ("MASTER killed: gap max", lambda r: ms(max(x.crash.gap_s for x in r.runs))),
        ("healthy failover: failed requests",
         lambda r: " ".join(str(x.failover.failed) for x in r.runs)),
        ("healthy failover: longest gap p50",
         lambda r: ms(percentile([x.failover.gap_s for x in r.runs], 50))),
        ("watched pair: VIP moves / MASTER transitions",
         lambda r: f"{r.watched.moves} / {r.watched.transitions}"),
        ("idle pair: CPU, % of one core", lambda r: f"{sum(r.idle.values()):.2f}"),
    ]
    print("\n| advert_int | " + " | ".join(f"{r.advert_int:g} s" for r in results) + " |")
    print("|---|" + "---:|" * len(results))
    for name, value in rows:
        print(f"| {name} | " + " | ".join(value(r) for r in results) + " |")


def targets(results: list[Result]) -> list[Target]:
    found = []
    for result in results:
        gap = percentile([run.crash.gap_s for run in result.runs], 50)
        post = percentile(result.posts, 50)
        cpu = sum(result.idle.values())
        at = f" ({result.advert_int:g} s)"
        found += [
            Target(f"POST -> first request p50{at}", post * 1000, "ms", "< 2000 ms", post < 2.0),
            Target(f"MASTER killed: gap p50{at}", gap * 1000, "ms", "< 300 ms", gap < 0.3),
            Target(f"idle pair: VIP moves + flaps{at}",
                   result.watched.moves + result.watched.transitions, "", "0",
                   result.watched.moves + result.watched.transitions == 0),
            Target(f"idle pair: CPU{at}", cpu, "%", "< 1 %", cpu < 1.0),
        ]
    return found


def measure(args: argparse.Namespace, workdir: Path, advert_int: float) -> Result:
    """Everything above with ``vrrp_advert_int = advert_int``, on a service of its own."""
    extra = f"[keepalived_vrrp]\nvrrp_advert_int = {advert_int:g}\n"
    with Teardown() as stack:
        env = set_up(stack, workdir, args.save_log, 10, extra)
        service, members, vips, backends = env.service, env.members, env.vips, env.backends
        client_ns, api = env.client_ns, env.api
        print(f"ACTIVE_STANDBY load balancers, advert_int {advert_int:g} s")
        flavor_id = active_standby_flavor(api)

        print(f"\n1. POST -> first 200 through the VIP ({args.runs} ACTIVE_STANDBY load balancers)")
        print(f"  load average before: {load_average()}")
        lb_id, samples = bench_first_request(
            api, client_ns, args.runs,
            lambda index, vip: with_flavor(lb_body(index, vip, vips, members, backends), flavor_id))
        vip = api.get(f"{COLLECTION}/{lb_id}").json()["loadbalancer"]["vip_address"]

        print(f"\n2. a request every {PROBE_INTERVAL_S * 1000:.0f} ms through the VIP "
              f"(timeout {args.timeout:g} s); {args.runs} runs of: kill the MASTER, "
              "API failover to rebuild, API failover of the healthy pair")
        print(f"  load average before: {load_average()}")
        runs = []
        for _ in range(args.runs):
            runs.append(one_run(api, service, client_ns, lb_id, vip, args.timeout))
            print(f"  run {len(runs)} done", flush=True)
        print(f"\n3. the healthy pair for {args.watch:.0f} s")
        print(f"  load average before: {load_average()}", flush=True)
        watched = watch(service, client_ns, vip, args.watch, args.timeout)
        print(f"\n4. the idle pair for {args.idle:.0f} s")
        print(f"  load average before: {load_average()}", flush=True)
        idle = idle_pair_cpu(service, args.idle)
        result = Result(advert_int, runs, [s.first_request_s for s in samples], watched, idle)
        report(result, args.watch, args.idle)
        print("\ncleaning up ...", flush=True)
    return result


def run(args: argparse.Namespace, workdir: Path) -> list[Target]:
    results = []
    for index, advert_int in enumerate(args.advert_int):
        if index:
            print()
        (workdir / str(index)).mkdir()
        results.append(measure(args, workdir / str(index), advert_int))
    side_by_side(results)
    return targets(results)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, choices=range(2, 21), metavar="2..20",
                        help="load balancers created, and crash/failover runs (default 5)")
    parser.add_argument("--advert-int", type=float, nargs="+", default=[0.2],
                        help="[keepalived_vrrp] vrrp_advert_int in seconds; several are "
                             "measured one after the other and compared (default 0.2)")
    parser.add_argument("--timeout", type=float, default=0.1,
                        help="the prober's connect and answer timeout (default 0.1 s: a lost "
                             "SYN costs a try, not TCP's 1 s retransmission)")
    parser.add_argument("--watch", type=float, default=30.0,
                        help="seconds the healthy pair is watched at the end (default 30)")
    parser.add_argument("--idle", type=float, default=30.0,
                        help="seconds the pair's CPU is measured without traffic (default 30)")
    parser.add_argument("--save-log", type=Path, metavar="FILE",
                        help="copy the service's log to FILE")
    args = parser.parse_args(argv)
    if args.timeout <= 0 or args.watch <= 0 or args.idle <= 0:
        parser.error("--timeout, --watch and --idle must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_probe"]:
        parser = argparse.ArgumentParser(prog="failover_bench.py _probe")
        parser.add_argument("vip")
        parser.add_argument("--port", type=int, default=80)
        parser.add_argument("--timeout", type=float, default=0.1)
        probe_args = parser.parse_args(argv[1:])
        return probe(probe_args.vip, probe_args.port, probe_args.timeout)
    return run_benchmark(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
