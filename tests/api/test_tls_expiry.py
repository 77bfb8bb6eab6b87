"""Certificates in use and when they expire: ``lbaas secret expiry`` and the warning
housekeeping logs."""
from __future__ import annotations

import json
import logging

from typer.testing import CliRunner

from lbaas.cert_manager import expiry
from lbaas.cli import app
from tests.helpers import NOOP_DRIVERS, PROJECT
from tests.helpers.api import create_lb, create_listener, create_pool, store_tls_refs


def test_certificates_in_use_are_listed_and_the_expiring_ones_logged(client, services, caplog):
    refs = store_tls_refs(services.api_state.cert_manager, PROJECT)  # valid for 10 days
    lb = create_lb(client)
    listener = create_listener(client, lb["id"], "TERMINATED_HTTPS", 443,
                               default_tls_container_ref=refs["default"],
                               sni_container_refs=[refs["sni-a"]])
    create_pool(client, lb["id"], "HTTP", listener_id=listener["id"], tls_enabled=True,
                ca_tls_container_ref=refs["ca"])
    env = {**NOOP_DRIVERS, "LBAAS__DEFAULT__state_path": str(services.settings.DEFAULT.state_path)}
    result = CliRunner().invoke(app, ["secret", "expiry", "-f", "json"], env=env)
    assert result.exit_code == 0, result.output
    rows = {row["Reference"]: row for row in json.loads(result.output)}
    assert set(rows) == {refs["default"], refs["sni-a"], refs["ca"]}
    assert rows[refs["default"]]["Used by"] == [f"listener {listener['id']}"]
    assert rows[refs["sni-a"]]["Subject"] == "CN=sni-a.example.com"
    later = CliRunner().invoke(app, ["secret", "expiry", "--within", "5", "-f", "json"], env=env)
    assert json.loads(later.output) == []
    with caplog.at_level(logging.WARNING, logger=expiry.__name__):
        # The two certificates (10 days left); the CA has 30.
        assert expiry.log_expiring(services.db, services.api_state.cert_manager) == 2
    assert f"certificate {refs['default']} (CN=default.example.com) used by listener " \
           f"{listener['id']} expires on" in caplog.text
