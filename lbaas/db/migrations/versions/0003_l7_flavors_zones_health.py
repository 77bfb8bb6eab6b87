"""l7 policies and rules, flavors, availability zones, amphora health

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('amphora_health',
    sa.Column('amphora_id', sa.String(length=36), nullable=False),
    sa.Column('last_update', sa.DateTime(), nullable=False),
    sa.Column('busy', sa.Boolean(), nullable=False),
    sa.Column('sequence', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('amphora_id')
    )
    with op.batch_alter_table('amphora_health', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_amphora_health_last_update'), ['last_update'], unique=False)

    op.create_table('availability_zone_profile',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('provider_name', sa.String(length=255), nullable=False),
    sa.Column('availability_zone_data', sa.String(length=4096), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('flavor_profile',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('provider_name', sa.String(length=255), nullable=False),
    sa.Column('flavor_data', sa.String(length=4096), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('availability_zone',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('availability_zone_profile_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['availability_zone_profile_id'], ['availability_zone_profile.id'], ),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('availability_zone', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_availability_zone_availability_zone_profile_id'),
                              ['availability_zone_profile_id'], unique=False)

    op.create_table('flavor',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('flavor_profile_id', sa.String(length=36), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['flavor_profile_id'], ['flavor_profile.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    with op.batch_alter_table('flavor', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flavor_flavor_profile_id'), ['flavor_profile_id'], unique=False)

    op.create_table('l7policy',
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('listener_id', sa.String(length=36), nullable=False),
    sa.Column('action', sa.String(length=36), nullable=False),
    sa.Column('redirect_pool_id', sa.String(length=36), nullable=True),
    sa.Column('redirect_url', sa.String(length=255), nullable=True),
    sa.Column('redirect_prefix', sa.String(length=255), nullable=True),
    sa.Column('redirect_http_code', sa.Integer(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('provisioning_status', sa.String(length=16), nullable=False),
    sa.Column('operating_status', sa.String(length=16), nullable=False),
    sa.Column('project_id', sa.String(length=36), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['listener_id'], ['listener.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['redirect_pool_id'], ['pool.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('l7policy', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_l7policy_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_l7policy_listener_id'), ['listener_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_l7policy_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_l7policy_provisioning_status'), ['provisioning_status'], unique=False)
        batch_op.create_index(batch_op.f('ix_l7policy_redirect_pool_id'), ['redirect_pool_id'], unique=False)

    op.create_table('l7rule',
    sa.Column('project_id', sa.String(length=36), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('l7policy_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=36), nullable=False),
    sa.Column('compare_type', sa.String(length=36), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=True),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.Column('invert', sa.Boolean(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('provisioning_status', sa.String(length=16), nullable=False),
    sa.Column('operating_status', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['l7policy_id'], ['l7policy.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('l7rule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_l7rule_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_l7rule_l7policy_id'), ['l7policy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_l7rule_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_l7rule_provisioning_status'), ['provisioning_status'], unique=False)



def downgrade() -> None:
    for table in ('l7rule', 'l7policy', 'flavor', 'availability_zone', 'flavor_profile',
                  'availability_zone_profile', 'amphora_health'):
        op.drop_table(table)
