"""Imports run one way: from the command line and the services down to the API, the
controller, the drivers, and the building blocks below. A module imports only modules of
its own layer or of lower ones (API -> controller is fine, network -> CLI is not)."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "lbaas"
# Top-level modules and packages of lbaas, lowest layer first.
LAYERS = [
    {"constants", "crashpoint", "console", "keyfile", "config", "log", "firewall", "filelock",
     "compute_flavors", "host_limits"},
    {"db", "certs", "cert_manager"},
    {"network", "amphora", "images", "validate"},
    {"drivers"},
    {"controller", "health"},
    {"api", "host"},
    {"compute_agent", "service", "status_view", "systemd"},
    {"api_process"},
    {"cli"},
]
LAYER = {unit: number for number, units in enumerate(LAYERS) for unit in units}


def _unit(module: str) -> str:
    """``lbaas.api.listener`` -> ``api``."""
    return module.split(".")[1]


def _imports() -> list[tuple[str, str, str]]:
    """(importing file, its unit, the imported unit) of every import of lbaas."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        unit = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = ([f"lbaas.{alias.name}" for alias in node.names]
                         if node.module == "lbaas" else [node.module])
            else:
                continue
            found += [(str(path.relative_to(PACKAGE)), unit, _unit(name))
                      for name in names if name.startswith("lbaas.")]
    return found


def test_every_unit_has_a_layer():
    units = {path.name.removesuffix(".py") for path in PACKAGE.iterdir()
             if path.suffix == ".py" or (path / "__init__.py").exists()} - {"__init__"}
    assert units == set(LAYER)


def test_no_import_runs_upward():
    upward = sorted(f"{path} imports lbaas.{imported}"
                    for path, unit, imported in _imports() if LAYER[imported] > LAYER[unit])
    assert upward == []
