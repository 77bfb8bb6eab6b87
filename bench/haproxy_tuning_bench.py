"""haproxy's CPU per request for variants of the configuration the renderer writes.

Takes a golden file of the renderer (tests/unit/golden/haproxy, an HTTP listener with a
round-robin pool of two members), points it at loopback, and serves one nginx (one
worker) through it in a namespace of its own. Each variant (the file as rendered, or with
a line changed) runs in turn for ``--rounds`` rounds of ``wrk -t2 -c64``; it prints the
median CPU time haproxy spent per request (user + system, from /proc/PID/stat) and the
median requests/s. CPU per request, unlike requests/s, hardly depends on what else the
host runs at the time. The namespace and processes are removed at the end.
Run as root from the repository root: ``.venv/bin/python bench/haproxy_tuning_bench.py``.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from api_bench import machine
from dataplane_bench import NGINX_CONF, load_average

from lbaas.amphora.haproxy_config import FDS_PER_CONNECTION, RESERVED_FDS

GOLDEN = Path(__file__).resolve().parents[1] / "tests/unit/golden/haproxy/http_listener_round_robin.cfg"
LISTEN = "127.0.0.1:8080"
SPLICE = "    option splice-request\n    option splice-response\n"
# name -> (text to replace in the rendered file, replacement)
VARIANTS = {
    "as rendered": ("", ""),
    "nbthread 2 (haproxy's default here)": ("    nbthread 1\n", "    nbthread 2\n"),
    "without splice options": (SPLICE, ""),
}


def configuration(workdir: Path, old: str, new: str) -> str:
    """The golden file on loopback (files in ``workdir``), with ``old`` replaced by ``new``."""
    text = GOLDEN.read_text()
    if old and old not in text:
        raise SystemExit(f"{GOLDEN.name} has no {old!r}: update the variants")
    text = text.replace(old, new) if old else text
    text = re.sub(r"(pidfile|server-state-file) \S+", rf"\1 {workdir}/haproxy.\1", text)
    text = re.sub(r"stats socket \S+", f"stats socket {workdir}/haproxy.sock", text)
    text = re.sub(r"bind \S+", f"bind {LISTEN}", text)
    # As the agent's fd_limit does for the renderer: maxconn within this process's file limit.
    cap = int((resource.getrlimit(resource.RLIMIT_NOFILE)[1] - RESERVED_FDS) / FDS_PER_CONNECTION)
    text = re.sub(r"maxconn (\d+)", lambda found: f"maxconn {min(int(found.group(1)), cap)}", text)
    return re.sub(r"(server \S+) \S+:8080", r"\1 127.0.0.1:80", text)


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wrk(namespace: str, seconds: int) -> tuple[int, float]:
    """(requests, requests/s) of one wrk run through haproxy."""
    output = subprocess.run(["ip", "netns", "exec", namespace, "wrk", "-t2", "-c64", f"-d{seconds}s",
                             f"http://{LISTEN}/"], capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    return requests, float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def measure(namespace: str, workdir: Path, text: str, seconds: int) -> tuple[float, float]:
    """(µs of haproxy CPU per request, requests/s) for one configuration."""
    config = workdir / "haproxy.cfg"
    config.write_text(text)
    pid_file = workdir / "haproxy.pid"
    subprocess.run(["ip", "netns", "exec", namespace, "haproxy", "-D", "-q", "-f", str(config),
                    "-p", str(pid_file)], check=True)
    pid = int(pid_file.read_text())
    try:
        wrk(namespace, 1)  # warm up
        before = cpu_ticks(pid)
        requests, rate = wrk(namespace, seconds)
        used_s = (cpu_ticks(pid) - before) / os.sysconf("SC_CLK_TCK")
    finally:
        os.kill(pid, 15)
        while Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/cmdline").read_bytes():
            time.sleep(0.05)
    return used_s / requests * 1e6, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs of each variant (default 5)")
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run (default 5)")
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds < 1:
        parser.error("--rounds and --seconds must be at least 1")
    namespace = f"lbaas-tune-{uuid.uuid4().hex[:6]}"
    print(f"machine: {machine()}\nload average before: {load_average()}")
    with tempfile.TemporaryDirectory(prefix="lbaas-tune-") as directory:
        workdir = Path(directory)
        (workdir / "tmp").mkdir()
        (workdir / "nginx.conf").write_text(
            NGINX_CONF.format(root=workdir, address="127.0.0.1", name="backend"))
        subprocess.run(["ip", "netns", "add", namespace], check=True)
        try:
            subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "up"], check=True)
            subprocess.run(["ip", "netns", "exec", namespace, "nginx", "-c",
                            str(workdir / "nginx.conf")], check=True)
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
            for round_number in range(1, args.rounds + 1):
                for name, (old, new) in VARIANTS.items():
                    cost, rate = measure(namespace, workdir, configuration(workdir, old, new), args.seconds)
                    results[name].append((cost, rate))
                    print(f"  round {round_number}: {name:<38} {cost:6.1f} us/request  {rate:9.0f} req/s")
        finally:
            nginx_pid = workdir / "nginx.pid"
            if nginx_pid.exists():
                subprocess.run(["kill", nginx_pid.read_text().strip()], check=False)
                time.sleep(0.5)
            subprocess.run(["ip", "netns", "del", namespace], check=False)
    print(f"load average after: {load_average()}")
    print(f"median of {args.rounds} rounds, wrk -t2 -c64 -d{args.seconds}s:")
    for name, values in results.items():
        print(f"  {name:<38} haproxy {statistics.median(v[0] for v in values):6.1f} us/request"
              f"   {statistics.median(v[1] for v in values):9.0f} req/s")


if __name__ == "__main__":
    main()
