"""Running lbaas as an operator does: the status view, Prometheus scraping /metrics,
request ids, graceful stops, systemd units, and the one-line errors of a bad start."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers.service import (
    SUBNET,
    Service,
    clean_environment,
    free_port,
    lbaas_command,
    running,
    write_config,
)

REQUIRED = {"api", "worker", "health-manager", "housekeeping"}


def _wait(predicate, timeout: float = 30.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"{what} did not hold within {timeout:.0f} s")


def _lbaas(*args: str, env: dict[str, str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(lbaas_command()), *args], capture_output=True, text=True,
                          env=env or clean_environment(), stdin=subprocess.DEVNULL,
                          timeout=timeout)


def test_status_shows_every_service_and_nothing_to_attend(lbaas_service):
    def status() -> dict | None:
        data = json.loads(lbaas_service.lbaas("status", "--format", "json"))
        running_kinds = {s["kind"] for s in data["services"] if s["alive"]}
        return data if running_kinds == REQUIRED else None

    data = _wait(status, what="every service listed as running")
    assert data["attention"] == []
    assert all(s["pid"] > 0 and s["last_seen_age_seconds"] < 30 for s in data["services"])
    table = lbaas_service.lbaas("status")
    for heading in ("Services", "Amphorae", "Objects by status"):
        assert heading in table
    assert "Nothing needs attention." in table


def test_a_request_id_names_the_request_and_its_log_lines(lbaas_service):
    """The worker's lines about the flow a request queued carry the request's id."""
    response = httpx.post(lbaas_service.url + "/v2/lbaas/loadbalancers",
                          json={"loadbalancer": {"vip_subnet_id": SUBNET}}, timeout=10)
    assert response.status_code == 201
    request_id = response.headers["x-openstack-request-id"]
    assert request_id.startswith("req-")
    lb_id = response.json()["loadbalancer"]["id"]
    log = lbaas_service.workdir / "lbaas.log"
    _wait(lambda: any(request_id in line and lb_id in line and "ACTIVE" in line
                      for line in log.read_text().splitlines()),
          what="the worker's line with the request id")
    httpx.delete(f"{lbaas_service.url}/v2/lbaas/loadbalancers/{lb_id}", timeout=10)


PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: lbaas
    static_configs:
      - targets: ['127.0.0.1:{port}']
"""


def test_prometheus_scrapes_the_api(lbaas_service, tmp_path):
    port = int(lbaas_service.url.rsplit(":", 1)[1])
    (tmp_path / "prometheus.yml").write_text(PROMETHEUS_CONFIG.format(port=port))
    web = free_port()
    with open(tmp_path / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{web}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    try:
        def query(expression: str) -> list[dict]:
            try:
                answer = httpx.get(f"http://127.0.0.1:{web}/api/v1/query",
                                   params={"query": expression}, timeout=5).json()
            except (httpx.TransportError, ValueError):
                return []
            return answer.get("data", {}).get("result", [])

        up = _wait(lambda: query('up{job="lbaas"} == 1'), 60, "a successful scrape")
        assert up[0]["metric"]["instance"] == f"127.0.0.1:{port}"
        services = _wait(lambda: query("lbaas_service_up == 1"), 30, "lbaas_service_up")
        assert {s["metric"]["kind"] for s in services} >= REQUIRED
        assert _wait(lambda: query("lbaas_heartbeats_total >= 0 or lbaas_spare_amphorae >= 0"),
                     30, "the health manager's and housekeeping's figures")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def test_sigterm_stops_lbaas_up_gracefully(tmp_path):
    port = free_port()
    service = Service(url=f"http://127.0.0.1:{port}", workdir=tmp_path,
                      config=write_config(tmp_path, port))
    with running(service):
        pass  # running() stops it with SIGTERM on leaving
    log = (tmp_path / "lbaas.log").read_text()
    assert "lbaas stopped." in log and "Traceback" not in log


def test_a_taken_port_is_one_line_and_exit_2(lbaas_service):
    port = int(lbaas_service.url.rsplit(":", 1)[1])
    result = _lbaas("api", "--config-file", str(lbaas_service.config))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: 127.0.0.1:{port} is taken by another process; stop it or choose another "
        "[api_settings] bind_port"]


def test_a_bad_option_is_one_line_naming_it(tmp_path):
    config = write_config(tmp_path, free_port())
    config.write_text(config.read_text() + "[health_manager]\nheartbeat_interval = often\n")
    result = _lbaas("up", "--config-file", str(config))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: invalid configuration: {config}: [health_manager] "
                           "heartbeat_interval: ")


def test_real_drivers_need_root(tmp_path):
    """As a user other than root (a user namespace maps us to uid 1000)."""
    env = {**clean_environment(), "LBAAS__DEFAULT__state_path": str(tmp_path)}
    result = subprocess.run(["unshare", "--user", "--map-user=1000", "--map-group=1000",
                             str(lbaas_command()), "up"], capture_output=True, text=True,
                            env=env, stdin=subprocess.DEVNULL, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: the real drivers make bridges, namespaces and firewall rules: run lbaas as "
        "root, or choose the no-op drivers ([controller_worker] *_driver, README "
        "\"Configuration\") for API-only use"]


def test_installed_units_verify_and_their_command_runs(tmp_path):
    port = free_port()
    config = write_config(tmp_path, port)
    units = tmp_path / "units"
    result = _lbaas("install-units", "--config-file", str(config), "--unit-dir", str(units))
    assert result.returncode == 0, result.stderr
    names = sorted(path.name for path in units.iterdir())
    assert names == ["lbaas-api.service", "lbaas-health-manager.service",
                     "lbaas-housekeeping.service", "lbaas-worker.service", "lbaas.target"]
    verify = subprocess.run(["systemd-analyze", "verify", *map(str, sorted(units.iterdir()))],
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # What systemd would run for the worker (after the schema, as upstream's
    # octavia-db-manage upgrade head), and what reload and stop send it.
    assert _lbaas("db", "upgrade", "--config-file", str(config)).returncode == 0
    [exec_start] = [line.removeprefix("ExecStart=") for line in
                    (units / "lbaas-worker.service").read_text().splitlines()
                    if line.startswith("ExecStart=")]
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(exec_start.split(), stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=clean_environment())
    try:
        _wait(lambda: _stamped(config, "worker"), what="the worker listed by lbaas status")
        worker.send_signal(signal.SIGHUP)
        _wait(lambda: "SIGHUP: logging options reloaded" in log.read_text(),
              what="the reload")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert "Traceback" not in log.read_text()
    assert not _stamped(config, "worker")  # a stopped worker is no longer listed


def _stamped(config: Path, kind: str) -> bool:
    result = _lbaas("status", "--format", "json", "--config-file", str(config))
    return result.returncode == 0 and any(
        s["kind"] == kind for s in json.loads(result.stdout)["services"])


def test_units_need_an_existing_configuration(tmp_path):
    result = _lbaas("install-units", "--config-file", str(tmp_path / "missing.conf"),
                    "--unit-dir", str(tmp_path))
    assert result.returncode == 2
    assert "does not exist; the services need it" in result.stderr
