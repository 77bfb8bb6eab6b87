"""tls secrets of the local certificate manager

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tls_secret',
    sa.Column('project_id', sa.String(length=36), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('secret_type', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('expiration', sa.DateTime(), nullable=True),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('tls_secret', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tls_secret_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_tls_secret_project_id'), ['project_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tls_secret', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tls_secret_project_id'))
        batch_op.drop_index(batch_op.f('ix_tls_secret_created_at'))
    op.drop_table('tls_secret')
