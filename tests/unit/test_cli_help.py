"""``lbaas ... --help`` shows what the help texts say, configuration sections included."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import typer
from typer.testing import CliRunner

from lbaas.cli import app

# Rich takes "[" and a lowercase word for a style tag ("[DEFAULT]" is left alone).
SECTION = re.compile(r"\\?\[([a-z_]+)\]")


def commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command under ``group`` (typer's own click classes), with its words."""
    yield path, group
    for name, command in getattr(group, "commands", {}).items():
        yield from commands(command, (*path, name))


def test_help_keeps_the_section_names_it_gives():
    """Rich markup takes an unescaped "[networking]" for a style tag and drops it: an
    operator read "its local_ip" where the text says "its [compute_agent] local_ip"."""
    checked = 0
    for path, command in commands(typer.main.get_command(app)):
        texts = [command.help or "", *(getattr(param, "help", None) or "" for param in command.params)]
        sections = set(SECTION.findall(" ".join(texts)))
        if not sections:
            continue
        shown = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "400"}).output
        for name in sections:
            assert f"[{name}]" in shown, f"`lbaas {' '.join(path)} --help` lost [{name}]"
        checked += 1
    assert checked >= 6
