"""Scale benchmark (issue 19): a fleet of SINGLE load balancers built step by step on one
host, with what each step costs and how the control plane answers.

It sets up what ``dataplane_bench.py`` sets up (``lbaas up`` with the real drivers, the
health manager and housekeeping included, a member and a VIP network, two nginx
backends, a client namespace), on networks of its own large enough for the fleet, then
for each of ``--steps`` (say 100,250,500,1000):

1. Creation: the load balancers that the step adds, fully populated (HTTP listener, pool,
   two members; one POST each, VIPs from the pool), from ``--clients`` concurrent clients;
   the time from the first POST until all are ACTIVE and until each new VIP answered
   ``200`` to the client (a sweep over the VIPs from inside the client namespace).
2. Memory: Pss of every process in every amphora's namespace, and of the agent processes
   outside them (a zygote, the host's agent) split evenly among the amphorae.
3. The API with the fleet: ``GET /v2/lbaas/loadbalancers`` (first page of the default
   size) and ``GET .../{id}``, 50 times each (p50); a member's weight changed on the
   step's last load balancer and the time until it is ACTIVE again.
4. Steady state, for two heartbeat timeouts: heartbeats per second the health manager
   accepted (its counter in the database, between two of its flushes), its lag, the
   oldest ``amphora_health.last_update`` of the fleet (a heartbeat's age when the health
   manager looked), then whether every amphora is still the one built and ONLINE.
5. CPU seconds of each component during the creation and during the steady state (the
   API, worker, health manager and housekeeping threads of ``lbaas up``, the commands it
   ran, all haproxy and all agent processes, the whole machine) and the load average.

At the end it prints a table per step, deletes them all (cascade, concurrently) and checks
that no amphora namespace or directory remains. Everything it made is removed at the end,
also on error or Ctrl-C. Run as root from ``bench/``:
``../.venv/bin/python scale_bench.py --steps 100,250 --agent-launcher zygote``.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from api_bench import Target, percentile
from dataplane_bench import (
    COLLECTION,
    BenchError,
    Environment,
    Layout,
    Teardown,
    attempt,
    http_ok,
    in_namespace,
    lb_body,
    load_average,
    namespace_names,
    run_benchmark,
    set_up,
    sh,
)
from host_usage import COMPONENTS, MACHINE, Memory, cpu_between, read_memory, read_usage
from host_usage import service_pid as find_service_pid
from sqlalchemy import func, select

from lbaas import config as lbaas_config
from lbaas.db.engine import Database
from lbaas.db.models import AmphoraHealth, Metric
from lbaas.drivers.compute.netns import namespace_of

# Networks of its own, each a /20: the management network (the suite's tests draw /24s
# from 172.29.128-249, lbaas's default is 172.29.232.0/22, the other benchmarks' is
# 172.29.252.0/24), the members' and the VIPs' (the other benchmarks use 10.243.x). Every
# amphora takes an address on each: its management port, its port on the member subnet,
# and on the VIP subnet its VIP and its own port.
LAYOUT = Layout(management_cidr="172.29.112.0/20",
                member_cidr="10.246.0.0/20", member_pool="start=10.246.1.0,end=10.246.15.250",
                vip_cidr="10.245.0.0/20", vip_pool="start=10.245.1.0,end=10.245.15.250",
                backends=("10.246.0.11", "10.246.0.12"),
                client_vip_side="10.245.0.5", client_member_side="10.246.0.5")
# A Linux bridge holds at most 1,023 ports; the member network's has the two backends'
# and the client's besides one per amphora. (The /20s hold more: the VIP pool 3,835
# addresses, two per load balancer.)
MAX_COUNT = 1020
# A heartbeat timeout of five intervals, as upstream's defaults (10 s and 60 s) nearly are.
TIMEOUT_INTERVALS = 5


def heartbeat_options(interval: float) -> str:
    return (f"[health_manager]\nheartbeat_interval = {interval:g}\n"
            f"heartbeat_timeout = {TIMEOUT_INTERVALS * interval:g}\nhealth_check_interval = 1\n")


def steady_seconds(interval: float) -> float:
    """Two heartbeat timeouts and a bit: long enough for a false failover to show."""
    return 2 * TIMEOUT_INTERVALS * interval + 2


SAMPLE_S = 0.25
# Creating or deleting: a fixed allowance plus a share per load balancer.
DEADLINE_BASE_S, DEADLINE_PER_LB_S = 120.0, 2.0
PAGE = 1000  # upstream's pagination_max_limit
SWEEP_THREADS = 32
HTTP_REQUEST = b"GET / HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n"
LAUNCHER = [sys.executable, str(Path(__file__).with_name("named_threads.py"))]


def _deadline(count: int) -> float:
    return time.monotonic() + DEADLINE_BASE_S + DEADLINE_PER_LB_S * count


def _all_lbs(api: httpx.Client) -> dict[str, dict[str, Any]]:
    """Every load balancer (page after page): id -> its status and VIP."""
    found: dict[str, dict[str, Any]] = {}
    params = {"limit": str(PAGE),
              "fields": "id,provisioning_status,operating_status,vip_address"}
    while True:
        page = api.get(COLLECTION, params=params).raise_for_status().json()["loadbalancers"]
        found.update((lb["id"], lb) for lb in page)
        if len(page) < PAGE:
            return found
        params["marker"] = page[-1]["id"]


def _create(url: str, body: dict[str, Any]) -> str:
    with httpx.Client(base_url=url, timeout=60.0) as api:
        response = api.post(COLLECTION, json=body)
    if response.status_code != 201:
        raise BenchError(f"POST {COLLECTION}: {response.status_code} {response.text}")
    return str(response.json()["loadbalancer"]["id"])


def _delete(url: str, lb_id: str) -> None:
    response = httpx.delete(f"{url}{COLLECTION}/{lb_id}", params={"cascade": "true"},
                            timeout=60.0)
    if response.status_code not in (204, 404, 409):  # 409: already being deleted
        raise BenchError(f"DELETE {lb_id}: {response.status_code} {response.text}")


def delete_fleet(api: httpx.Client, clients: int) -> float:
    """Delete every load balancer (cascade, ``clients`` at once); seconds until none is
    left."""
    began = time.monotonic()
    ids = list(_all_lbs(api))
    deadline = _deadline(len(ids))
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda lb_id: _delete(str(api.base_url).rstrip("/"), lb_id), ids))
    while _all_lbs(api):
        if time.monotonic() > deadline:
            raise BenchError("load balancers left after the deadline")
        time.sleep(0.5)
    return time.monotonic() - began


def sweep(client_ns: str, vips: list[str], deadline: float) -> float:
    """Probe every VIP from the client namespace until each answered 200 once; the
    time.monotonic() the last one did."""
    seconds = max(deadline - time.monotonic(), 1.0)
    answer = json.loads(sh(*in_namespace(client_ns, sys.executable, str(Path(__file__).resolve()),
                                         "_sweep", "--seconds", f"{seconds:.0f}", *vips),
                           timeout=seconds + 60))
    if answer["missing"]:
        raise BenchError(f"{len(answer['missing'])} VIP(s) never answered: "
                         f"{answer['missing'][:5]}")
    return float(answer["last"])


def sweep_main(argv: list[str]) -> int:
    """``_sweep --seconds S VIP...``: run by the benchmark inside the client namespace."""
    parser = argparse.ArgumentParser(prog="scale_bench.py _sweep")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("vips", nargs="+")
    args = parser.parse_args(argv)
    end = time.monotonic() + args.seconds
    answered: dict[str, float] = {}

    def probe(vip: str) -> float | None:
        return time.monotonic() if http_ok(vip, 80, HTTP_REQUEST) else None

    with concurrent.futures.ThreadPoolExecutor(SWEEP_THREADS) as pool:
        while len(answered) < len(args.vips) and time.monotonic() < end:
            waiting = [vip for vip in args.vips if vip not in answered]
            answered.update((vip, at) for vip, at in zip(waiting, pool.map(probe, waiting),
                                                     strict=True) if at is not None)
    print(json.dumps({"last": max(answered.values(), default=0.0),
                      "missing": [vip for vip in args.vips if vip not in answered]}))
    return 0


def _p50(call: Callable[[], object], runs: int = 50) -> float:
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    return percentile(samples, 50)


class HealthReadings:
    """What the health manager keeps in the database, read straight from it: how many
    heartbeats it accepted (flushed every 10 s), its lag, the fleet's heartbeats' ages."""

    ACCEPTED = json.dumps({"result": "accepted"}, sort_keys=True)

    def __init__(self, config: Path) -> None:
        self.db = Database(lbaas_config.load(config, environ={}).database_url)

    def accepted(self) -> float:
        with self.db.read() as session:
            return float(session.scalar(select(Metric.value).where(
                Metric.name == "lbaas_heartbeats_total", Metric.labels == self.ACCEPTED)) or 0)

    def lag_s(self) -> float:
        with self.db.read() as session:
            return float(session.scalar(select(func.max(Metric.value)).where(
                Metric.name == "lbaas_health_manager_lag_seconds")) or 0)

    def oldest_heartbeat_s(self, amphorae: list[str]) -> tuple[float, int]:
        """The age of the fleet's oldest last heartbeat, and how many amphorae were heard."""
        with self.db.read() as session:
            oldest, heard = session.execute(
                select(func.min(AmphoraHealth.last_update), func.count()).where(
                    AmphoraHealth.amphora_id.in_(amphorae))).one()
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        return ((now - oldest).total_seconds() if oldest else float("inf")), int(heard)


@dataclass(frozen=True)
class Steady:
    heartbeats_per_s: float
    lag_s: float  # the health manager's own figure, the largest seen
    oldest_heartbeat_s: float  # the largest seen
    unheard: int  # amphorae without a heartbeat at the end
    cpu: dict[str, float]  # CPU seconds per second


def steady_state(health: HealthReadings, amphorae: list[str], service: int,
                 seconds: float) -> Steady:
    """Watch the idle fleet for ``seconds``: the heartbeat rate between the health
    manager's first and last flush seen, the largest lag and heartbeat age."""
    flushes: list[tuple[float, float]] = []
    lag = oldest = 0.0
    heard = 0
    before = read_usage(service, amphorae)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        accepted = health.accepted()
        if not flushes or accepted != flushes[-1][1]:
            flushes.append((time.monotonic(), accepted))
        age, heard = health.oldest_heartbeat_s(amphorae)
        lag, oldest = max(lag, health.lag_s()), max(oldest, age)
        time.sleep(SAMPLE_S)
    after = read_usage(service, amphorae)
    counted = flushes[1:]  # the first reading is not a flush's moment
    rate = ((counted[-1][1] - counted[0][1]) / (counted[-1][0] - counted[0][0])
            if len(counted) > 1 else float("nan"))
    elapsed = after.at - before.at
    return Steady(rate, lag, oldest, len(amphorae) - heard,
                  {part: used / elapsed for part, used in cpu_between(before, after).items()})


@dataclass(frozen=True)
class Step:
    count: int
    added: int
    posted_s: float
    active_s: float
    serving_s: float
    memory: Memory
    list_s: float  # right after the step's creates
    show_s: float
    steady_list_s: float  # after the steady period
    steady_show_s: float
    member_s: float
    steady: Steady
    not_online: int
    replaced: int
    create_cpu: dict[str, float]  # CPU seconds during the creation
    load: str

    @property
    def rate(self) -> float:
        return self.added / self.serving_s


class Fleet:
    """The load balancers built so far, and how to add a step's worth."""

    def __init__(self, env: Environment, clients: int, health: HealthReadings,
                 steady_s: float) -> None:
        self.env, self.clients, self.health = env, clients, health
        self.steady_s = steady_s
        self.api, self.url = env.api, env.service.url
        self.service = find_service_pid(env.service.config)
        self.ids: list[str] = []
        self.built: set[str] = set()  # every amphora seen, to check that none is left

    def amphorae(self) -> list[str]:
        """The amphorae of the service (each has a directory; none before the first)."""
        base = self.env.service.base_path
        found = sorted(path.name for path in base.iterdir()) if base.is_dir() else []
        self.built.update(found)
        return found

    def _body(self, index: int) -> dict[str, Any]:
        body = lb_body(index, "", self.env.vips, self.env.members, self.env.backends)
        del body["loadbalancer"]["vip_address"]  # from the pool
        return body

    def _create(self, count: int) -> tuple[list[str], float, float, float]:
        """The load balancers up to ``count``: their ids, and the seconds after the first
        POST until all were answered, all ACTIVE and all serving."""
        bodies = [self._body(index) for index in range(len(self.ids), count)]
        began = time.monotonic()
        deadline = _deadline(len(bodies))
        with concurrent.futures.ThreadPoolExecutor(self.clients) as pool:
            ids = list(pool.map(lambda body: _create(self.url, body), bodies))
        posted = time.monotonic()
        self.ids += ids
        while True:
            lbs = _all_lbs(self.api)
            states = [lbs[lb_id]["provisioning_status"] for lb_id in ids]
            if "ERROR" in states:
                raise BenchError(f"{states.count('ERROR')} load balancer(s) went ERROR")
            if all(state == "ACTIVE" for state in states):
                break
            if time.monotonic() > deadline:
                raise BenchError(f"not all ACTIVE after {deadline - began:.0f} s")
            time.sleep(1.0)
        active = time.monotonic()
        serving = sweep(self.env.client_ns, [lbs[lb_id]["vip_address"] for lb_id in ids],
                        deadline)
        return ids, posted - began, active - began, serving - began

    def _member_change(self, lb_id: str) -> float:
        """Change a member's weight on ``lb_id``; seconds until it is ACTIVE again."""
        pool_id = self.api.get(f"{COLLECTION}/{lb_id}/status").json()["statuses"][
            "loadbalancer"]["listeners"][0]["pools"][0]["id"]
        member = self.api.get(f"/v2/lbaas/pools/{pool_id}/members").json()["members"][0]
        changed = time.monotonic()
        self.api.put(f"/v2/lbaas/pools/{pool_id}/members/{member['id']}",
                     json={"member": {"weight": member["weight"] % 10 + 1}}).raise_for_status()
        while self.api.get(f"{COLLECTION}/{lb_id}").json()["loadbalancer"][
                "provisioning_status"] != "ACTIVE":
            if time.monotonic() > changed + 60:
                raise BenchError(f"load balancer {lb_id} not ACTIVE 60 s after a member change")
            time.sleep(0.02)
        return time.monotonic() - changed

    def step(self, count: int) -> Step:
        added = count - len(self.ids)
        print(f"\nstep to {count}: {added} more from {self.clients} concurrent clients, "
              f"load average {load_average()}", flush=True)
        before = read_usage(self.service, self.amphorae())
        ids, posted, active, serving = self._create(count)
        amphorae = self.amphorae()
        create_cpu = cpu_between(before, read_usage(self.service, amphorae))
        print(f"  POSTs answered {posted:.1f} s, all ACTIVE {active:.1f} s, all serving "
              f"{serving:.1f} s after the first POST ({added / serving:.1f} per second)",
              flush=True)
        memory = read_memory(amphorae)
        print(f"  {memory.amphorae} amphorae, Pss {memory.total_mb:.0f} MB in all, "
              f"{memory.per_amphora_mb:.1f} MB each (agent {memory.agent_mb:.1f}, haproxy "
              f"{memory.haproxy_mb:.1f})", flush=True)
        listing, show = self._reads(ids[-1])
        member = self._member_change(ids[-1])
        print(f"  list p50 {listing * 1000:.1f} ms, show p50 {show * 1000:.1f} ms, member "
              f"change -> ACTIVE {member:.2f} s", flush=True)
        steady = steady_state(self.health, amphorae, self.service, self.steady_s)
        lbs = _all_lbs(self.api)
        not_online = sum(lbs[lb_id]["operating_status"] != "ONLINE" for lb_id in self.ids)
        replaced = len(set(amphorae) ^ set(self.amphorae()))
        steady_list, steady_show = self._reads(ids[-1])
        print(f"  when steady: list p50 {steady_list * 1000:.1f} ms, show p50 "
              f"{steady_show * 1000:.1f} ms", flush=True)
        print(f"  heartbeats {steady.heartbeats_per_s:.1f}/s accepted, health manager lag "
              f"{steady.lag_s:.2f} s, oldest heartbeat {steady.oldest_heartbeat_s:.1f} s, "
              f"{steady.unheard} unheard; after {self.steady_s:g} s: {not_online} not ONLINE, "
              f"{replaced} amphorae replaced", flush=True)
        return Step(count, added, posted, active, serving, memory, listing, show, steady_list,
                    steady_show, member, steady, not_online, replaced, create_cpu,
                    load_average())

    def _reads(self, lb_id: str) -> tuple[float, float]:
        """p50 seconds of the list's first page and of a show of ``lb_id``."""
        return (_p50(lambda: self.api.get(COLLECTION).raise_for_status()),
                _p50(lambda: self.api.get(f"{COLLECTION}/{lb_id}").raise_for_status()))


def _cpu_row(part: str, readings: Callable[[Step], dict[str, float]],
             scale: float) -> tuple[str, Callable[[Step], str]]:
    return part, lambda step: f"{readings(step)[part] * scale:.1f}"


def print_tables(steps: list[Step]) -> None:
    """The steps side by side (Markdown, as docs/benchmarks.md takes them)."""
    def table(title: str, rows: list[tuple[str, Callable[[Step], str]]]) -> None:
        print(f"\n| {title} | " + " | ".join(f"{step.count:,}" for step in steps) + " |")
        print("|---|" + "---:|" * len(steps))
        for label, cell in rows:
            print(f"| {label} | " + " | ".join(cell(step) for step in steps) + " |")

    table("load balancers", [
        ("added in the step", lambda s: f"{s.added}"),
        ("POSTs answered", lambda s: f"{s.posted_s:.1f} s"),
        ("all ACTIVE", lambda s: f"{s.active_s:.1f} s"),
        ("all serving", lambda s: f"{s.serving_s:.1f} s"),
        ("rate", lambda s: f"{s.rate:.1f}/s"),
        ("Pss in all", lambda s: f"{s.memory.total_mb:.0f} MB"),
        ("Pss per amphora", lambda s: f"{s.memory.per_amphora_mb:.1f} MB"),
        ("  agent", lambda s: f"{s.memory.agent_mb:.1f} MB"),
        ("  haproxy", lambda s: f"{s.memory.haproxy_mb:.1f} MB"),
        ("list first page p50", lambda s: f"{s.list_s * 1000:.1f} ms"),
        ("show p50", lambda s: f"{s.show_s * 1000:.1f} ms"),
        ("list p50, steady", lambda s: f"{s.steady_list_s * 1000:.1f} ms"),
        ("show p50, steady", lambda s: f"{s.steady_show_s * 1000:.1f} ms"),
        ("member change -> ACTIVE", lambda s: f"{s.member_s:.2f} s"),
        ("heartbeats accepted", lambda s: f"{s.steady.heartbeats_per_s:.1f}/s"),
        ("health manager lag (max)", lambda s: f"{s.steady.lag_s:.2f} s"),
        ("oldest heartbeat (max)", lambda s: f"{s.steady.oldest_heartbeat_s:.1f} s"),
        ("not ONLINE / replaced", lambda s: f"{s.not_online} / {s.replaced}"),
        ("load average after", lambda s: s.load),
    ])
    table("CPU s while creating", [_cpu_row(part, lambda s: s.create_cpu, 1)
                                   for part in COMPONENTS])
    table("CPU % when steady", [_cpu_row(part, lambda s: s.steady.cpu, 100)
                                for part in COMPONENTS])
    print(f"(CPU: {MACHINE} counts every CPU; 100 % is one CPU busy)")


@contextlib.contextmanager
def fleet_removed(api: httpx.Client, clients: int) -> Iterator[None]:
    """On the way out (an error, Ctrl-C), the fleet is deleted concurrently: the common
    clean-up deletes one load balancer at a time."""
    try:
        yield
    finally:
        attempt("deleting the fleet", lambda: delete_fleet(api, clients))


def run(args: argparse.Namespace, workdir: Path) -> list[Target]:
    extra = (heartbeat_options(args.heartbeat_interval)
             + f"[haproxy_amphora]\nagent_launcher = {args.agent_launcher}\n"
             + f"[DEFAULT]\ndebug = {args.debug}\n")
    with Teardown() as stack:
        env = set_up(stack, workdir, None, 10, extra, LAYOUT, LAUNCHER)
        stack.enter_context(fleet_removed(env.api, args.clients))
        health = HealthReadings(env.service.config)
        stack.callback(health.db.dispose)
        fleet = Fleet(env, args.clients, health, steady_seconds(args.heartbeat_interval))
        steps = [fleet.step(count) for count in args.steps]
        print(f"\ndeleting all {len(fleet.ids)}", flush=True)
        gone = delete_fleet(env.api, args.clients)
        left = {namespace_of(amphora) for amphora in fleet.built} & namespace_names()
        left_dirs = fleet.amphorae()
        print(f"  all gone in {gone:.1f} s; amphora namespaces left: {len(left)}, "
              f"directories left: {len(left_dirs)}", flush=True)
        print_tables(steps)
        print(f"\nagent_launcher = {args.agent_launcher}, debug = {args.debug}; cleaning up ...",
              flush=True)
    first, last = steps[0], steps[-1]
    memory = last.memory.per_amphora_mb
    burst = [Target(f"{first.count} created at once -> all serving", first.serving_s, "s",
                    "< 60 s", first.serving_s < 60)] if first.count <= 100 else []
    return [
        *burst,
        Target(f"amphora memory (Pss) with {last.count}", memory, "MB", "< 10 MB",
               memory < 10),
        Target(f"list first page with {last.count}", last.list_s * 1000, "ms", "< 50 ms",
               last.list_s < 0.05),
        Target(f"show with {last.count}", last.show_s * 1000, "ms", "< 5 ms",
               last.show_s < 0.005),
        Target(f"member change -> ACTIVE with {last.count}", last.member_s, "s", "< 1 s",
               last.member_s < 1),
        Target("amphorae not ONLINE or replaced (all steps)",
               sum(step.not_online + step.replaced for step in steps), "", "0",
               not any(step.not_online or step.replaced for step in steps)),
        Target("left after deleting all", len(left) + len(left_dirs), "", "0",
               not left and not left_dirs),
    ]


def _steps(text: str) -> list[int]:
    try:
        steps = [int(item) for item in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: counts separated by commas") from exc
    if not all(1 <= step <= MAX_COUNT for step in steps) or steps != sorted(set(steps)):
        raise argparse.ArgumentTypeError(
            f"{text!r}: growing counts between 1 and {MAX_COUNT}, such as 100,250,500,1000")
    return steps


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--steps", type=_steps, default=[100],
                       help=f"fleet sizes to build one after the other (at most {MAX_COUNT}; "
                            "default 100)")
    sizes.add_argument("--count", type=_steps, dest="steps",
                       help="one step: the same as --steps COUNT")
    parser.add_argument("--clients", type=int, default=10, help="concurrent API clients")
    parser.add_argument("--heartbeat-interval", type=float, default=2.0,
                        help="[health_manager] heartbeat_interval (default 2 s; the timeout "
                             f"is {TIMEOUT_INTERVALS} of them)")
    parser.add_argument("--agent-launcher", choices=("exec", "zygote", "host"), default="exec",
                        help="[haproxy_amphora] agent_launcher")
    parser.add_argument("--debug", action="store_true",
                        help="[DEFAULT] debug = true (default: off, as a fleet runs; the "
                             "debug log costs the service CPU with every request and flow)")
    args = parser.parse_args(argv)
    if args.clients < 1:
        parser.error("--clients must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_sweep"]:
        return sweep_main(argv[1:])
    return run_benchmark(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
