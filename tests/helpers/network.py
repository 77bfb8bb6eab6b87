"""Stand-ins for the host's network when a test checks only the registry."""
from __future__ import annotations

from collections.abc import Collection


class RecordingBridges:
    """Stands in for Bridges: remembers the bridge and address it was asked for."""

    def __init__(self) -> None:
        self.bridges: dict[str, list[str]] = {}

    def ensure(self, name: str, *, mtu: int | None = None) -> None:
        self.bridges.setdefault(name, [])

    def set_address(self, name: str, address: str, replacing: Collection[str] = ()) -> None:
        kept = [item for item in self.bridges[name] if item.split("/")[0] not in replacing]
        self.bridges[name] = [*kept, *([address] if address not in kept else [])]
