"""Messages of the ``lbaas`` commands on standard error."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape

errors = Console(stderr=True, emoji=False)  # ":100:" in a message stays as written


def print_error(message: object) -> None:
    """Print ``error: <message>`` in red on one line (a terminal wraps it, grep still finds
    it); the message is text, not markup ("[section]" stays)."""
    errors.print(f"[red]error:[/red] {escape(str(message))}", soft_wrap=True)
