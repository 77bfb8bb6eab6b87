"""hosts, network types

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('host',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('agent_url', sa.String(length=255), nullable=True),
    sa.Column('tunnel_ip', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('last_seen', sa.DateTime(), nullable=True),
    sa.Column('amphorae', sa.Integer(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('network', schema=None) as batch_op:
        batch_op.add_column(sa.Column('network_type', sa.String(length=16), nullable=False,
                                      server_default='local'))
        batch_op.add_column(sa.Column('segmentation_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('physical_network', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_network_segmentation_id'),
                                          ['segmentation_id'])


def downgrade() -> None:
    with op.batch_alter_table('network', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_network_segmentation_id'), type_='unique')
        batch_op.drop_column('physical_network')
        batch_op.drop_column('segmentation_id')
        batch_op.drop_column('network_type')
    op.drop_table('host')
