"""network registry: networks, subnets and the ports (addresses) handed out on them

Revision ID: 0002
Revises: 0001
"""
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def _id_and_timestamps() -> list[sa.Column[Any]]:
    return [
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        'network',
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('project_id', sa.String(length=36), nullable=True),
        sa.Column('shared', sa.Boolean(), nullable=False),
        sa.Column('bridge', sa.String(length=15), nullable=False),
        sa.Column('physical_interface', sa.String(length=15), nullable=True),
        sa.Column('mtu', sa.Integer(), nullable=False),
        *_id_and_timestamps(),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
        sa.UniqueConstraint('bridge'),
        sa.UniqueConstraint('physical_interface'),
    )
    op.create_index(op.f('ix_network_created_at'), 'network', ['created_at'], unique=False)

    op.create_table(
        'subnet',
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('project_id', sa.String(length=36), nullable=True),
        sa.Column('network_id', sa.String(length=36), nullable=False),
        sa.Column('ip_version', sa.Integer(), nullable=False),
        sa.Column('cidr', sa.String(length=64), nullable=False),
        sa.Column('gateway_ip', sa.String(length=64), nullable=True),
        sa.Column('allocation_pools', sa.JSON(), nullable=False),
        *_id_and_timestamps(),
        sa.ForeignKeyConstraint(['network_id'], ['network.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    op.create_index(op.f('ix_subnet_created_at'), 'subnet', ['created_at'], unique=False)
    op.create_index(op.f('ix_subnet_network_id'), 'subnet', ['network_id'], unique=False)

    op.create_table(
        'port',
        sa.Column('subnet_id', sa.String(length=36), nullable=False),
        sa.Column('ip_address', sa.String(length=64), nullable=False),
        sa.Column('mac_address', sa.String(length=17), nullable=False),
        sa.Column('device_id', sa.String(length=255), nullable=False),
        sa.Column('device_owner', sa.String(length=255), nullable=False),
        *_id_and_timestamps(),
        sa.ForeignKeyConstraint(['subnet_id'], ['subnet.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('mac_address'),
        sa.UniqueConstraint('subnet_id', 'ip_address'),
    )
    op.create_index(op.f('ix_port_created_at'), 'port', ['created_at'], unique=False)
    op.create_index(op.f('ix_port_device_id'), 'port', ['device_id'], unique=False)


def downgrade() -> None:
    op.drop_table('port')
    op.drop_table('subnet')
    op.drop_table('network')
