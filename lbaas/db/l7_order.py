"""The order of a listener's L7 policies: ``position`` runs 1..n without gaps, as upstream."""
from __future__ import annotations

from collections.abc import Iterable

from lbaas.db.models import L7Policy


def renumber(policies: Iterable[L7Policy], moved: L7Policy | None = None,
             position: int | None = None) -> None:
    """Number ``policies`` 1..n in their order, with ``moved`` (new or re-placed) at ``position``.

    A position past the end appends, as upstream's ``MAX_POLICY_POSITION`` default does.
    """
    ordered = sorted((policy for policy in policies if policy is not moved),
                     key=lambda policy: policy.position)
    if moved is not None:
        at = len(ordered) if position is None else min(position, len(ordered) + 1) - 1
        ordered.insert(at, moved)
    for number, policy in enumerate(ordered, start=1):
        policy.position = number
