"""Multi-host benchmark: amphorae on other hosts, joined by VXLAN, and hosts that die.

Sets up the multi-host tests' cluster (tests/multihost/cluster.py): three compute hosts
and a web machine as network namespaces on an underlay bridge, each compute host running
``lbaas compute-agent``; the controller (API, worker, health manager with heartbeats every
0.5 s, a 3 s timeout, host checks every second) in this process; VXLAN networks for the
VIPs and the members; two nginx backends on the web machine; the client on the
controller's side of the VIP network. Then it measures:

1. POST of a fully populated load balancer -> first 200 through the VIP (polled every
   ~10 ms), its amphora on another host than the client and the backends;
2. an ACTIVE_STANDBY pair (on two hosts) whose MASTER's host dies (its agent, amphorae
   and interfaces gone at once): the longest gap in a request every 10 ms through the
   VIP; the host is brought back between runs;
3. a SINGLE load balancer whose host dies: the longest gap in a request every 10 ms,
   until its replacement on another host serves (the health manager's failover);
4. requests/s and latency with wrk through that load balancer (client -> VXLAN ->
   amphora -> VXLAN -> nginx) against the same through a load balancer of ``lbaas up``
   on one host (dataplane_bench's set-up: no VXLAN), one after the other in this run.

Targets (issue 11): 1 p50 < 1 s; 2 p50 < 1 s; 3 p50 < 10 s; 4 is a comparison.
Run as root from the repository root: ``.venv/bin/python bench/multihost_bench.py``.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from api_bench import Target, percentile
from dataplane_bench import (
    NGINX_CONF,
    WRK_REPORT,
    BenchError,
    Load,
    Teardown,
    in_namespace,
    lb_body,
    load_average,
    run_wrk,
    set_up,
    time_first_request,
    wait_active,
    wait_for_backend,
)
from dataplane_bench import Backend as Nginx
from dataplane_bench import run_benchmark as run_dataplane_benchmark
from failover_bench import Prober, outage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.dataplane import netns  # noqa: E402 - the tests' namespace helpers
from tests.multihost.cluster import Cluster, running_cluster  # noqa: E402

LBS = "/v2/lbaas/loadbalancers"
NGINX_ADDRESSES = ("10.241.1.21", "10.241.1.22")
# VIPs 10.241.2.10 and up (outside the VIP subnet's pool .100-.200, below the client's
# .50 and above it): each measurement has its own range of run indexes.
FIRST_VIP = 10
PAIR_RUNS, SINGLE_RUNS, WRK_RUN = 20, 50, 70
PROBE_TIMEOUT_S = 0.1


@contextlib.contextmanager
def nginx_on(cluster: Cluster, workdir: Path, index: int, address: str) -> Iterator[Nginx]:
    """nginx in a namespace on the web machine's member bridge."""
    name = f"nginx-{index}"
    root = workdir / name
    (root / "tmp").mkdir(parents=True)
    (root / "nginx.conf").write_text(NGINX_CONF.format(root=root, address=address, name=name))
    with netns.namespace(f"lbt-{name}-{netns.short_id()}", cluster.members.bridge,
                         f"{address}/24", host=cluster.web) as namespace:
        process = subprocess.Popen(
            in_namespace(namespace, "nginx", "-p", str(root), "-c", str(root / "nginx.conf"),
                         "-e", str(root / "error.log"), "-g", "daemon off;"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            backend = Nginx(name, address, namespace)
            wait_for_backend(backend, process)
            yield backend
        finally:
            process.terminate()
            process.wait(10)


def body(cluster: Cluster, index: int, addresses: tuple[str, ...], **fields: Any) -> dict[str, Any]:
    return {"loadbalancer": {
        "vip_subnet_id": cluster.vips.subnet_id, "vip_address": f"10.241.2.{FIRST_VIP + index}",
        **fields, "listeners": [{"protocol": "HTTP", "protocol_port": 80, "default_pool": {
            "name": f"web-{index}", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
            "members": [{"address": address, "protocol_port": 80,
                         "subnet_id": cluster.members.subnet_id} for address in addresses]}}]}}


def delete(cluster: Cluster, lb_id: str) -> None:
    cluster.api.delete(f"{LBS}/{lb_id}?cascade=true")
    deadline = time.monotonic() + 60
    while cluster.api.get(f"{LBS}/{lb_id}").status_code != 404:
        if time.monotonic() > deadline:
            raise BenchError(f"load balancer {lb_id} was not deleted in 60 s")
        time.sleep(0.1)


def revive(cluster: Cluster, name: str) -> None:
    """The dead host comes back (a new namespace, its agent) and is UP again."""
    cluster.hosts[name].boot()
    deadline = time.monotonic() + 60
    while cluster.host_status(name) != "UP":
        if time.monotonic() > deadline:
            raise BenchError(f"host {name} did not come back UP in 60 s")
        time.sleep(0.2)


def pair_flavor(cluster: Cluster) -> str:
    profile = cluster.api.post("/v2/lbaas/flavorprofiles", json={"flavorprofile": {
        "name": "bench-pair", "provider_name": "amphora",
        "flavor_data": '{"loadbalancer_topology": "ACTIVE_STANDBY"}'}}).json()["flavorprofile"]
    return cluster.api.post("/v2/lbaas/flavors", json={"flavor": {
        "name": "bench-pair", "flavor_profile_id": profile["id"]}}).json()["flavor"]["id"]


def vip_holder(cluster: Cluster, lb_id: str, vip: str) -> Any:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for amphora in cluster.amphorae(lb_id):
            found = netns.ip("-n", f"amphora-{amphora.id}", "-o", "addr", "show",
                             check=False).stdout
            if f" {vip}/" in found:
                return amphora
        time.sleep(0.1)
    raise BenchError(f"no amphora of {lb_id} holds {vip}")


def first_requests(cluster: Cluster, runs: int, addresses: tuple[str, ...]) -> list[float]:
    samples = []
    for index in range(runs):
        lb_id, sample = time_first_request(cluster.api, cluster.client,
                                           body(cluster, index, addresses))
        samples.append(sample.first_request_s)
        (amphora,) = cluster.amphorae(lb_id)
        print(f"  run {index + 1}: first 200 after {sample.first_request_s:.3f} s "
              f"(amphora on {amphora.cached_zone})", flush=True)
        delete(cluster, lb_id)
    return samples


def host_deaths(cluster: Cluster, runs: int, addresses: tuple[str, ...],
                flavor: str | None) -> list[float]:
    """Kill the host of the (MASTER) amphora; the gap (pair) or death -> first 200 (SINGLE)."""
    samples = []
    for index in range(runs):
        request = body(cluster, (PAIR_RUNS if flavor else SINGLE_RUNS) + index, addresses,
                       **({"flavor_id": flavor} if flavor else {}))
        response = cluster.api.post(LBS, json=request)
        if response.status_code != 201:
            raise BenchError(f"POST: {response.status_code} {response.text}")
        lb_id, vip = response.json()["loadbalancer"]["id"], request["loadbalancer"]["vip_address"]
        try:
            wait_active(cluster.api, lb_id)
        except BenchError as exc:
            raise BenchError(f"{exc}; hosts: " + ", ".join(
                f"{name} {cluster.host_status(name)}" for name in cluster.hosts)) from exc
        victim = vip_holder(cluster, lb_id, vip).cached_zone
        with Prober(cluster.client, vip, PROBE_TIMEOUT_S) as prober:
            prober.wait_success_after(time.monotonic())
            dying = time.monotonic()
            cluster.hosts[victim].die()
            # Served again: a success once the host is wholly gone (its agent, amphorae
            # and interfaces); what users saw is the longest gap since it began to die.
            prober.wait_success_after(time.monotonic(), timeout=60)
            time.sleep(0.5)
            measured = outage(prober.results, dying, time.monotonic())
        samples.append(measured.gap_s)
        print(f"  run {index + 1}: host {victim} died; longest gap {samples[-1]:.2f} s "
              f"({measured.failed} requests failed)", flush=True)
        wait_active(cluster.api, lb_id)
        revive(cluster, victim)
        delete(cluster, lb_id)
    return samples


def throughput(client: str, url: str, script: Path, load: Load) -> tuple[float, float]:
    (result,) = run_wrk(client, script, [url], load)
    return result.rate, result.p50_ms


def report(name: str, samples: list[float], goal: float | None) -> Target:
    p50 = statistics.median(samples)
    print(f"  {name}: p50 {p50:.3f} s, p90 {percentile(samples, 90):.3f} s, "
          f"max {max(samples):.3f} s")
    return Target(f"{name}, p50", p50, "s", f"< {goal:g} s" if goal else "-",
                  goal is None or p50 < goal)


def run(args: argparse.Namespace, workdir: Path) -> list[Target]:
    load = Load(2, 32, args.seconds)
    script = workdir / "report.lua"
    script.write_text(WRK_REPORT)
    targets = []
    with running_cluster(workdir / "cluster") as cluster, contextlib.ExitStack() as nginx:
        addresses = tuple(nginx.enter_context(nginx_on(cluster, workdir, index, address)).address
                          for index, address in enumerate(NGINX_ADDRESSES, start=1))
        print(f"\n1. POST -> first 200 through the VIP, amphora on another host "
              f"({args.runs} runs; load {load_average()})")
        targets.append(report("remote amphora: POST -> first 200",
                              first_requests(cluster, args.runs, addresses), 1.0))
        print(f"\n2. the MASTER's host of an ACTIVE_STANDBY pair dies ({args.runs} runs; "
              f"load {load_average()})")
        flavor = pair_flavor(cluster)
        targets.append(report("MASTER's host killed: longest gap",
                              host_deaths(cluster, args.runs, addresses, flavor), 1.0))
        print(f"\n3. the host of a SINGLE amphora dies ({args.runs} runs; load {load_average()})")
        targets.append(report("SINGLE amphora's host killed: longest gap",
                              host_deaths(cluster, args.runs, addresses, None), 10.0))
        print(f"\n4. wrk ({load.connections} connections, {load.seconds:g} s) through a remote "
              f"amphora over VXLAN (load {load_average()})")
        request = body(cluster, WRK_RUN, addresses)
        lb_id = cluster.api.post(LBS, json=request).json()["loadbalancer"]["id"]
        wait_active(cluster.api, lb_id)
        remote = throughput(cluster.client, f"http://{request['loadbalancer']['vip_address']}/",
                            script, load)
        delete(cluster, lb_id)
    print(f"   ... and through a local one (lbaas up, one host; load {load_average()})")
    (workdir / "local").mkdir()
    with Teardown() as stack:
        env = set_up(stack, workdir / "local", None, 10)
        lb_id, _ = time_first_request(env.api, env.client_ns, lb_body(
            0, "10.243.2.10", env.vips, env.members, env.backends))
        wait_active(env.api, lb_id)
        local = throughput(env.client_ns, "http://10.243.2.10/", script, load)
    print(f"  VXLAN: {remote[0]:.0f} req/s, p50 {remote[1]:.2f} ms; "
          f"local: {local[0]:.0f} req/s, p50 {local[1]:.2f} ms")
    targets.append(Target("requests/s through VXLAN / local", remote[0] / local[0], "", "-",
                          True))
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, choices=range(2, 21), metavar="2..20",
                        help="runs of each of 1-3 (default 5)")
    parser.add_argument("--seconds", type=float, default=10.0, help="each wrk run's length")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return run_dataplane_benchmark(run, args)


if __name__ == "__main__":
    sys.exit(main())
