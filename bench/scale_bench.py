"""Scale benchmark (issue 19), first step: a burst of load balancers created at once on one
host, then what a fleet of that size costs and how the control plane answers.

It sets up what ``dataplane_bench.py`` sets up (``lbaas up`` with the real drivers, the
health manager and housekeeping included, a member and a VIP network, two nginx
backends, a client namespace), then:

1. ``--count`` fully populated load balancers (HTTP listener, pool, two members; one POST
   each, VIPs from the pool) from ``--clients`` concurrent clients; the time from the
   first POST until every one is ACTIVE and until every VIP answers ``200`` to the client
   (a sweep over all VIPs, repeated until each answered once).
2. Memory: Pss of every process in every amphora's namespace (per amphora, averaged).
3. The control plane with the fleet: ``GET /v2/lbaas/loadbalancers`` (first page of the
   default size) and ``GET .../{id}``, 50 times each (p50); a member's weight changed on
   one load balancer and the time until it is ACTIVE again; after two heartbeat timeouts,
   whether every amphora is still the one built (no false failover) and ONLINE.
4. Deleting them all (cascade, concurrently): the time until none is left, and that no
   amphora namespace or directory remains.

Everything it made is removed at the end, also on error or Ctrl-C. Run as root from
``bench/``: ``../.venv/bin/python scale_bench.py --count 100``. Its load balancers get
their VIPs from a /20 network of its own (each SINGLE one takes two addresses there: its
VIP and its amphora's port), which the client reaches through a second leg; the
management network (a /24) holds up to 240 amphorae.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from api_bench import Target, percentile
from dataplane_bench import (
    COLLECTION,
    PREFIX,
    BenchError,
    Teardown,
    add_leg,
    amphora_processes,
    in_namespace,
    lb_body,
    load_average,
    namespace_names,
    registry_network,
    run_benchmark,
    set_up,
    sh,
)

from lbaas.drivers.compute.netns import NAMESPACE_PREFIX, namespace_of

# The VIPs' network: room for 2,000 addresses (the suite's test networks are 10.240.x, the
# other benchmarks' 10.243.x).
SCALE_VIP_CIDR, SCALE_VIP_POOL = "10.245.0.0/20", "start=10.245.1.0,end=10.245.15.250"
SCALE_CLIENT = "10.245.0.5"
MAX_COUNT = 240  # the management network's free addresses
HEARTBEAT_OPTIONS = ("[health_manager]\nheartbeat_interval = 2\nheartbeat_timeout = 10\n"
                     "health_check_interval = 1\n")
DEADLINE_S = 300.0


def _statuses(api: httpx.Client) -> dict[str, dict[str, Any]]:
    return {lb["id"]: lb for lb in api.get(COLLECTION, params={"limit": 1000})
            .json()["loadbalancers"]}


def _create(url: str, body: dict[str, Any]) -> str:
    with httpx.Client(base_url=url, timeout=60.0) as api:
        response = api.post(COLLECTION, json=body)
    if response.status_code != 201:
        raise BenchError(f"POST {COLLECTION}: {response.status_code} {response.text}")
    return str(response.json()["loadbalancer"]["id"])


def _sweep(client_ns: str, vips: list[str], deadline: float) -> float:
    """Probe every VIP until each answered once; the time the last one did."""
    waiting = set(vips)
    while waiting:
        if time.monotonic() > deadline:
            raise BenchError(f"{len(waiting)} VIP(s) never answered: {sorted(waiting)[:5]}")
        for vip in sorted(waiting):
            answer = sh(*in_namespace(client_ns, "curl", "-s", "-o", "/dev/null", "-w",
                                      "%{http_code}", "--max-time", "1", f"http://{vip}/"),
                        check=False)
            if answer.strip() == "200":
                waiting.discard(vip)
    return time.monotonic()


def _timed(call: Any, runs: int = 50) -> float:
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    return percentile(samples, 50)


def run(args: argparse.Namespace, workdir: Path) -> list[Target]:
    extra = HEARTBEAT_OPTIONS + f"[haproxy_amphora]\nagent_launcher = {args.agent_launcher}\n"
    with Teardown() as stack:
        env = set_up(stack, workdir, None, 10, extra)
        api, url = env.api, env.service.url
        vips = stack.enter_context(registry_network(env.service, f"{PREFIX}-scale-vips",
                                                    SCALE_VIP_CIDR, SCALE_VIP_POOL))
        add_leg(env.client_ns, "lbb-cs", "eth2", vips.bridge, f"{SCALE_CLIENT}/{vips.prefix}")
        bodies = [lb_body(index, "", vips, env.members, env.backends)
                  for index in range(args.count)]
        for body in bodies:
            del body["loadbalancer"]["vip_address"]  # from the pool
        print(f"\n1. {args.count} load balancers from {args.clients} concurrent clients, "
              f"load average {load_average()}", flush=True)
        began = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
            ids = list(pool.map(lambda body: _create(url, body), bodies))
        posted = time.monotonic()
        deadline = began + DEADLINE_S
        while True:
            statuses = _statuses(api)
            states = [statuses[lb_id]["provisioning_status"] for lb_id in ids]
            if "ERROR" in states:
                raise BenchError(f"{states.count('ERROR')} load balancer(s) went ERROR")
            if all(state == "ACTIVE" for state in states):
                break
            if time.monotonic() > deadline:
                raise BenchError(f"not all ACTIVE after {DEADLINE_S:.0f} s")
            time.sleep(0.5)
        active = time.monotonic()
        vips = [statuses[lb_id]["vip_address"] for lb_id in ids]
        serving = _sweep(env.client_ns, vips, deadline)
        print(f"  POSTs answered {posted - began:.1f} s, all ACTIVE {active - began:.1f} s, "
              f"all serving {serving - began:.1f} s after the first POST "
              f"({args.count / (serving - began):.1f} load balancers/s)", flush=True)

        amphorae = [path.name for path in env.service.base_path.iterdir()]
        pss = [sum(process.pss_kib for process in amphora_processes(namespace_of(a)))
               for a in amphorae]
        per_amphora = sum(pss) / len(pss) / 1024
        print(f"\n2. {len(amphorae)} amphorae, Pss per amphora {per_amphora:.1f} MB "
              f"(agent_launcher = {args.agent_launcher}), load average {load_average()}")

        listing = _timed(lambda: api.get(COLLECTION).raise_for_status())
        show = _timed(lambda: api.get(f"{COLLECTION}/{ids[0]}").raise_for_status())
        pool_id = api.get(f"{COLLECTION}/{ids[0]}/status").json()["statuses"]["loadbalancer"][
            "listeners"][0]["pools"][0]["id"]
        member = api.get(f"/v2/lbaas/pools/{pool_id}/members").json()["members"][0]["id"]
        changed = time.monotonic()
        api.put(f"/v2/lbaas/pools/{pool_id}/members/{member}",
                json={"member": {"weight": 5}}).raise_for_status()
        while _statuses(api)[ids[0]]["provisioning_status"] != "ACTIVE":
            time.sleep(0.02)
        member_s = time.monotonic() - changed
        print(f"\n3. with {args.count}: list p50 {listing * 1000:.1f} ms, show p50 "
              f"{show * 1000:.1f} ms, member change -> ACTIVE {member_s:.2f} s", flush=True)
        time.sleep(2 * 10 + 2)  # two heartbeat timeouts
        statuses = _statuses(api)
        offline = [lb_id for lb_id in ids if statuses[lb_id]["operating_status"] != "ONLINE"]
        replaced = set(amphorae) ^ {path.name for path in env.service.base_path.iterdir()}
        print(f"  after two heartbeat timeouts: {len(offline)} not ONLINE, "
              f"{len(replaced)} amphorae replaced", flush=True)

        print(f"\n4. deleting all {args.count}", flush=True)
        began_delete = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(lambda lb_id: httpx.delete(f"{url}{COLLECTION}/{lb_id}",
                                                     params={"cascade": "true"}, timeout=60),
                          ids))
        while _statuses(api):
            if time.monotonic() > began_delete + DEADLINE_S:
                raise BenchError("load balancers left after the deadline")
            time.sleep(0.5)
        gone = time.monotonic() - began_delete
        left = [name for name in namespace_names() if name.startswith(NAMESPACE_PREFIX)]
        left_dirs = list(env.service.base_path.iterdir())
        print(f"  all gone in {gone:.1f} s; amphora namespaces left: {len(left)}, "
              f"directories left: {len(left_dirs)}", flush=True)
        print("  cleaning up ...", flush=True)
    within = serving - began
    return [
        Target(f"{args.count} created at once -> all serving", within, "s", "< 60 s",
               within < 60),
        Target("amphora memory (Pss)", per_amphora, "MB", "< 10 MB", per_amphora < 10),
        Target(f"list first page with {args.count}", listing * 1000, "ms", "< 50 ms",
               listing < 0.05),
        Target(f"show with {args.count}", show * 1000, "ms", "< 5 ms", show < 0.005),
        Target("member change -> ACTIVE", member_s, "s", "< 1 s", member_s < 1),
        Target("amphorae not ONLINE or replaced", len(offline) + len(replaced), "", "0",
               not offline and not replaced),
        Target("left after deleting all", len(left) + len(left_dirs), "", "0",
               not left and not left_dirs),
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100,
                        help=f"load balancers (at most {MAX_COUNT})")
    parser.add_argument("--clients", type=int, default=10, help="concurrent API clients")
    parser.add_argument("--agent-launcher", choices=("exec", "zygote"), default="exec")
    args = parser.parse_args(argv)
    if not 1 <= args.count <= MAX_COUNT or args.clients < 1:
        parser.error(f"--count between 1 and {MAX_COUNT}, --clients at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(run, parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
