"""the named locks' rows, made once here

Revision ID: 0009
Revises: 0008

A lock's row was made by its first user. Two controllers making it at once could
deadlock on MariaDB (both hold the gap lock where the row goes, both wait to insert),
and the loser's transaction was lost with its work.
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

LOCKS = ('cleanup', 'metrics', 'spare_pool')


def upgrade() -> None:
    table = sa.table('controller_lock', sa.column('name', sa.String(64)))
    present = set(op.get_bind().scalars(sa.select(table.c.name)))
    missing = [{'name': name} for name in LOCKS if name not in present]
    if missing:
        op.bulk_insert(table, missing)


def downgrade() -> None:
    pass  # the rows are harmless to the older code, which makes them when missing
