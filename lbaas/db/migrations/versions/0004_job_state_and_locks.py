"""job state for resumable flows, controller locks, longer compute ids

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.JSON(), nullable=True))
    with op.batch_alter_table('amphora', schema=None) as batch_op:
        batch_op.alter_column('compute_id', existing_type=sa.String(length=36),
                              type_=sa.String(length=255), existing_nullable=True)
    op.create_table('controller_lock',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('controller_lock')
    with op.batch_alter_table('amphora', schema=None) as batch_op:
        batch_op.alter_column('compute_id', existing_type=sa.String(length=255),
                              type_=sa.String(length=36), existing_nullable=True)
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_column('state')
