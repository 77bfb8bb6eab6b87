"""Flows of the amphora admin API that act on one amphora (its failover is in failover.py)."""
from __future__ import annotations

from lbaas.controller.flow import Step
from lbaas.controller.tasks import amphora_admin


def delete(amphora_id: str) -> list[Step]:
    """``DELETE /v2/octavia/amphorae/{id}`` (an amphora in ERROR, or a spare)."""
    return [amphora_admin.delete_amphora(amphora_id)]


def update_config(amphora_id: str) -> list[Step]:
    """``PUT /v2/octavia/amphorae/{id}/config``."""
    return [amphora_admin.push_configuration(amphora_id)]
