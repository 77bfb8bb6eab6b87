"""Row-level helpers the type checker can follow.

``get_row`` reads a row that must be there (the load balancer a flow runs for, an
amphora it named in its store): ``Session.get`` answers None for a row that is gone, and
here that is an error naming the row, raised where it happens instead of an
``AttributeError`` on ``None`` a few lines later. ``changed`` runs an UPDATE or DELETE
and says how many rows it changed (conditional updates decide races by that count).
``table_of`` gives a model's table for bulk Core statements.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import CursorResult, Table
from sqlalchemy.orm import Session
from sqlalchemy.orm.interfaces import ORMOption
from sqlalchemy.sql.dml import UpdateBase

from lbaas.db.models import Base

RowT = TypeVar("RowT", bound=Base)


class RowGone(LookupError):
    """A row a flow or a job was started for no longer exists."""


def get_row(session: Session, model: type[RowT], row_id: str,
            options: Sequence[ORMOption] = ()) -> RowT:
    """The ``model`` row ``row_id``; :class:`RowGone` if there is none."""
    row = session.get(model, row_id, options=options)
    if row is None:
        raise RowGone(f"{model.__tablename__} row {row_id} does not exist")
    return row


def changed(session: Session, statement: UpdateBase,
            params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None) -> int:
    """Run the UPDATE or DELETE ``statement`` (with ``params`` for its bound parameters;
    a list of them: once for each); the number of rows it matched."""
    result = session.execute(statement, params)
    if not isinstance(result, CursorResult):  # DML always answers with a cursor's result
        raise TypeError(f"{type(result).__name__} has no row count")
    return result.rowcount


def table_of(model: type[Base]) -> Table:
    """The model's table (``__table__`` is declared as any FROM clause)."""
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to one table")
    return table
