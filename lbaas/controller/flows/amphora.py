"""Flows that act on one amphora: the amphora admin API's (its failover is in
failover.py) and the spare pool's boot of a spare."""
from __future__ import annotations

from lbaas.controller.flow import Step
from lbaas.controller.tasks import amphora, amphora_admin


def delete(amphora_id: str) -> list[Step]:
    """``DELETE /v2/octavia/amphorae/{id}`` (an amphora in ERROR, or a spare)."""
    return [amphora_admin.delete_amphora(amphora_id)]


def update_config(amphora_id: str) -> list[Step]:
    """``PUT /v2/octavia/amphorae/{id}/config``."""
    return [amphora_admin.push_configuration(amphora_id)]


def build_spare(amphora_id: str) -> list[Step]:
    """A spare for the spare pool (housekeeping added its row with the job)."""
    return [amphora.build_spare(amphora_id)]
