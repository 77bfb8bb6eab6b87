"""The amphora agent runs inside an amphora, where only the standard library is
installed: it must import nothing else (and nothing of lbaas outside its package)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

AGENT = Path(__file__).resolve().parents[2] / "lbaas" / "amphora" / "agent"
OWN = "lbaas.amphora.agent"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_agent_imports_only_the_standard_library():
    foreign = {f"{path.name}: {name}" for path in AGENT.glob("*.py") for name in _imports(path)
               if name.split(".")[0] not in sys.stdlib_module_names
               and not (name == OWN or name.startswith(OWN + "."))
               and name != "__future__"}
    assert foreign == set()


def test_the_running_agent_loads_no_third_party_module():
    """Whatever the agent imports at run time, directly or not, with no site-packages
    at all (``-S``): an import of anything else fails."""
    probe = ("import sys, lbaas.amphora.agent.__main__, lbaas.amphora.agent.server; "
             "print('\\n'.join(sorted({name.split('.')[0] for name in sys.modules})))")
    loaded = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True,
                            text=True, check=True, cwd=AGENT.parents[2]).stdout.split()
    assert [name for name in loaded
            if name not in sys.stdlib_module_names and name not in ("lbaas", "__main__")] == []
