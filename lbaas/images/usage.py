"""Which amphorae use which image: an image stays while any amphora row names it."""
from __future__ import annotations

from sqlalchemy import select

from lbaas import constants
from lbaas.db.engine import Database
from lbaas.db.models import Amphora


def amphorae_using(db: Database, image_id: str) -> list[str]:
    """The amphorae (any status but DELETED: an ERROR one may still run, or be failed
    over from) whose image is ``image_id``."""
    with db.read() as session:
        return list(session.scalars(select(Amphora.id).where(
            Amphora.image_id == image_id, Amphora.status != constants.DELETED)
            .order_by(Amphora.id)))
