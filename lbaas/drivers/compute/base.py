"""Compute driver: makes and removes amphorae and plugs ports into them.

Every method may be called again for the same amphora or port (after a crash, by the
flow run again): each makes what is missing and leaves alone what is already there.
``host`` names where the amphora runs (its row's ``cached_zone``); a driver that runs
amphorae on one machine only does not need it.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass

from lbaas.compute_flavors import Resources
from lbaas.drivers.network.base import Port


@dataclass
class ComputeInstance:
    compute_id: str
    lb_network_ip: str | None
    host: str | None = None


class HostUnreachable(Exception):
    """The amphora's host does not answer (down, or cut off): what runs there cannot be
    changed now; the reconciler finishes the job when the host is back."""


class ComputeDriver(abc.ABC):
    @abc.abstractmethod
    def compute_id(self, amphora_id: str) -> str:
        """The id the amphora's instance has once built (written in its row beforehand)."""

    @abc.abstractmethod
    def hosts(self) -> list[str]:
        """The hosts a new amphora may be placed on now."""

    def reconciled_hosts(self) -> list[str | None]:
        """The hosts whose instances the reconciler compares with the rows, one at a time
        (None: this driver's single machine, whatever the amphorae's host labels)."""
        return [None]

    @abc.abstractmethod
    def build(self, amphora_id: str, *, management_port: Port, files: dict[str, bytes],
              host: str | None = None, image_id: str | None = None,
              resources: Resources | None = None) -> ComputeInstance:
        """Create the amphora on ``management_port`` with ``files`` (its "config drive")
        and start its agent; returns without waiting for the agent to answer. On a
        half-built amphora, it finishes it. ``image_id``: run it from that image of the
        host's store, within ``resources`` (None: the host's own binaries, no limits)."""

    @abc.abstractmethod
    def delete(self, compute_id: str, host: str | None = None) -> None:
        """Remove the amphora and everything it ran; removing a removed one is no error."""

    @abc.abstractmethod
    def instances(self, host: str | None = None) -> dict[str, bool] | None:
        """The amphorae this driver finds made on ``host``, wholly or in part, by id, each
        with whether it runs (the reconciler removes those that no live row owns, and fails
        over live rows whose amphora does not run); None if it cannot tell."""

    def release(self) -> None:  # noqa: B027 - optional: most drivers run nothing of their own
        """No amphora is left here (``lbaas down --all``): stop what this driver ran to
        serve amphorae. Nothing by default."""

    @abc.abstractmethod
    def attach_port(self, compute_id: str, port: Port, host: str | None = None) -> str:
        """Plug ``port`` into the amphora as a new interface (if it is not plugged yet);
        returns its MAC address."""

    @abc.abstractmethod
    def detach_port(self, compute_id: str, port: Port, host: str | None = None) -> None:
        """Unplug ``port``; unplugging an unplugged port is not an error."""
