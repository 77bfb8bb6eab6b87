"""Compute flavors, as Nova's: the memory and CPUs an amphora may use, by name
(``[compute] flavors``). An amphora's row records its flavor's name (``compute_flavor``);
the compute driver turns the resources into cgroup limits of the amphora's container."""
from __future__ import annotations

from dataclasses import dataclass

from lbaas.config import Settings


@dataclass(frozen=True)
class Resources:
    """What an amphora run from an image may use: memory in MiB and CPUs, which may be a
    fraction."""

    ram_mb: int
    vcpus: float


class FlavorNotFound(LookupError):
    pass


def flavors(settings: Settings) -> dict[str, Resources]:
    """Every configured flavor by name (the format was checked when the settings loaded)."""
    found = {}
    for entry in settings.compute.flavors:
        name, ram_mb, vcpus = entry.split(":")
        found[name] = Resources(ram_mb=int(ram_mb), vcpus=float(vcpus))
    return found


def resources(settings: Settings, name: str) -> Resources:
    """The resources of flavor ``name``; FlavorNotFound in upstream's words if none."""
    try:
        return flavors(settings)[name]
    except KeyError:
        raise FlavorNotFound(f"Nova flavor {name} not found.") from None
