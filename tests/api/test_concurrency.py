"""Two writers racing for one load balancer: exactly one wins, the others get 409."""
from __future__ import annotations

from tests.helpers.api import race_updates


def test_concurrent_updates_never_both_win(api_only, services):
    race_updates(api_only, services)
