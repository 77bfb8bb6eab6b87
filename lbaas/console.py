"""The `lbaas` commands' consoles: messages on standard error, tables on standard output."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape

errors = Console(stderr=True, emoji=False)  # ":100:" in a message stays as written


def output() -> Console:
    """Standard output for tables of values: text as it is ("[certificates]
    ca_certificate" is no markup), its width the terminal's (or $COLUMNS) now."""
    return Console(markup=False, emoji=False)


def print_error(message: object) -> None:
    """Print ``error: <message>`` in red on one line (a terminal wraps it, grep still finds
    it); the message is text, not markup ("[section]" stays)."""
    errors.print(f"[red]error:[/red] {escape(str(message))}", soft_wrap=True)
