"""Steps the amphora admin API asks for on one amphora: remove it, push its configuration."""
from __future__ import annotations

from sqlalchemy import update

from lbaas import constants
from lbaas.controller.flow import FlowContext, Step
from lbaas.controller.tasks.amphora import destroy
from lbaas.db.models import Amphora


def _set_status(ctx: FlowContext, amphora_id: str, status: str) -> None:
    with ctx.write() as session:
        session.execute(update(Amphora).where(Amphora.id == amphora_id).values(status=status)
                        .execution_options(synchronize_session=False))


def delete_amphora(amphora_id: str) -> Step:
    """Remove an amphora the API set PENDING_DELETE (a failed one, or a spare): its
    instance and addresses go and the row is DELETED. On failure it is ERROR again, so
    that the operator can retry the delete."""
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            amphora = session.get(Amphora, amphora_id)
        if amphora is not None:
            destroy(ctx, amphora)
            _set_status(ctx, amphora_id, constants.DELETED)

    def revert(ctx: FlowContext) -> None:
        _set_status(ctx, amphora_id, constants.ERROR)
    return Step("delete-amphora", execute, revert)


def push_configuration(amphora_id: str) -> Step:
    """Render the amphora's load balancer again and make the amphora serve it (a spare,
    or an amphora on its way out, has nothing to serve)."""
    def execute(ctx: FlowContext) -> None:
        with ctx.db.read() as session:
            amphora = session.get(Amphora, amphora_id)
            if amphora is None or amphora.status != constants.ALLOCATED:
                return
            if amphora.load_balancer is not None:
                ctx.drivers.amphora.update(amphora.load_balancer, amphora)
    return Step("push-amphora-configuration", execute)
