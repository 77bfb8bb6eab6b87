"""Amphora driver: the controller's side of the amphora agent."""
from __future__ import annotations

import abc

from lbaas.db.models import Amphora, LoadBalancer


class AmphoraDriver(abc.ABC):
    @abc.abstractmethod
    def wait_ready(self, amphora: Amphora) -> None:
        """Block until the amphora's agent answers (or raise)."""

    @abc.abstractmethod
    def update(self, load_balancer: LoadBalancer, amphora: Amphora) -> None:
        """Render the load balancer's whole configuration and make the amphora serve it."""

    @abc.abstractmethod
    def delete(self, load_balancer: LoadBalancer, amphora: Amphora) -> None:
        """Stop serving the load balancer on the amphora."""
