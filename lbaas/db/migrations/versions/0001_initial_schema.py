"""initial schema

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('job',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sa.String(length=255), nullable=True),
    sa.Column('lease_expires', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_lease_expires'), ['lease_expires'], unique=False)

    op.create_table('listener_statistics',
    sa.Column('listener_id', sa.String(length=36), nullable=False),
    sa.Column('amphora_id', sa.String(length=36), nullable=False),
    sa.Column('bytes_in', sa.BigInteger(), nullable=False),
    sa.Column('bytes_out', sa.BigInteger(), nullable=False),
    sa.Column('active_connections', sa.Integer(), nullable=False),
    sa.Column('total_connections', sa.BigInteger(), nullable=False),
    sa.Column('request_errors', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('listener_id', 'amphora_id')
    )
    op.create_table('load_balancer',
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('topology', sa.String(length=36), nullable=True),
    sa.Column('server_group_id', sa.String(length=36), nullable=True),
    sa.Column('provider', sa.String(length=64), nullable=True),
    sa.Column('flavor_id', sa.String(length=36), nullable=True),
    sa.Column('availability_zone', sa.String(length=255), nullable=True),
    sa.Column('vip_address', sa.String(length=64), nullable=True),
    sa.Column('vip_port_id', sa.String(length=36), nullable=True),
    sa.Column('vip_subnet_id', sa.String(length=36), nullable=True),
    sa.Column('vip_network_id', sa.String(length=36), nullable=True),
    sa.Column('vip_qos_policy_id', sa.String(length=36), nullable=True),
    sa.Column('vip_vnic_type', sa.String(length=64), nullable=False),
    sa.Column('vip_sg_ids', sa.JSON(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('provisioning_status', sa.String(length=16), nullable=False),
    sa.Column('operating_status', sa.String(length=16), nullable=False),
    sa.Column('project_id', sa.String(length=36), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('load_balancer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_load_balancer_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_load_balancer_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_load_balancer_provisioning_status'), ['provisioning_status'], unique=False)

    op.create_table('quotas',
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('load_balancer', sa.Integer(), nullable=True),
    sa.Column('listener', sa.Integer(), nullable=True),
    sa.Column('pool', sa.Integer(), nullable=True),
    sa.Column('health_monitor', sa.Integer(), nullable=True),
    sa.Column('member', sa.Integer(), nullable=True),
    sa.Column('l7policy', sa.Integer(), nullable=True),
    sa.Column('l7rule', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('project_id')
    )
    op.create_table('tags',
    sa.Column('resource_id', sa.String(length=36), nullable=False),
    sa.Column('tag', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('resource_id', 'tag')
    )
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tags_tag'), ['tag'], unique=False)

    op.create_table('additional_vip',
    sa.Column('load_balancer_id', sa.String(length=36), nullable=False),
    sa.Column('subnet_id', sa.String(length=36), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=True),
    sa.Column('ip_address', sa.String(length=64), nullable=True),
    sa.Column('port_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['load_balancer_id'], ['load_balancer.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('load_balancer_id', 'subnet_id')
    )
    op.create_table('amphora',
    sa.Column('compute_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.String(length=36), nullable=False),
    sa.Column('load_balancer_id', sa.String(length=36), nullable=True),
    sa.Column('lb_network_ip', sa.String(length=64), nullable=True),
    sa.Column('vrrp_ip', sa.String(length=64), nullable=True),
    sa.Column('ha_ip', sa.String(length=64), nullable=True),
    sa.Column('vrrp_port_id', sa.String(length=36), nullable=True),
    sa.Column('ha_port_id', sa.String(length=36), nullable=True),
    sa.Column('role', sa.String(length=36), nullable=True),
    sa.Column('cert_expiration', sa.DateTime(), nullable=True),
    sa.Column('cert_busy', sa.Boolean(), nullable=False),
    sa.Column('vrrp_interface', sa.String(length=16), nullable=True),
    sa.Column('vrrp_id', sa.Integer(), nullable=True),
    sa.Column('vrrp_priority', sa.Integer(), nullable=True),
    sa.Column('cached_zone', sa.String(length=255), nullable=True),
    sa.Column('image_id', sa.String(length=36), nullable=True),
    sa.Column('compute_flavor', sa.String(length=255), nullable=True),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['load_balancer_id'], ['load_balancer.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('amphora', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_amphora_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_amphora_load_balancer_id'), ['load_balancer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_amphora_status'), ['status'], unique=False)

    op.create_table('pool',
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('load_balancer_id', sa.String(length=36), nullable=False),
    sa.Column('protocol', sa.String(length=16), nullable=False),
    sa.Column('lb_algorithm', sa.String(length=255), nullable=False),
    sa.Column('session_persistence', sa.JSON(), nullable=True),
    sa.Column('tls_enabled', sa.Boolean(), nullable=False),
    sa.Column('tls_certificate_id', sa.String(length=255), nullable=True),
    sa.Column('ca_tls_certificate_id', sa.String(length=255), nullable=True),
    sa.Column('crl_container_id', sa.String(length=255), nullable=True),
    sa.Column('tls_ciphers', sa.String(length=2048), nullable=True),
    sa.Column('tls_versions', sa.JSON(), nullable=True),
    sa.Column('alpn_protocols', sa.JSON(), nullable=True),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('provisioning_status', sa.String(length=16), nullable=False),
    sa.Column('operating_status', sa.String(length=16), nullable=False),
    sa.Column('project_id', sa.String(length=36), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['load_balancer_id'], ['load_balancer.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('pool', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pool_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_pool_load_balancer_id'), ['load_balancer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pool_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pool_provisioning_status'), ['provisioning_status'], unique=False)

    op.create_table('health_monitor',
    sa.Column('pool_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=36), nullable=False),
    sa.Column('delay', sa.Integer(), nullable=False),
    sa.Column('timeout', sa.Integer(), nullable=False),
    sa.Column('fall_threshold', sa.Integer(), nullable=False),
    sa.Column('rise_threshold', sa.Integer(), nullable=False),
    sa.Column('http_method', sa.String(length=16), nullable=True),
    sa.Column('url_path', sa.String(length=2048), nullable=True),
    sa.Column('expected_codes', sa.String(length=64), nullable=True),
    sa.Column('http_version', sa.Float(), nullable=True),
    sa.Column('domain_name', sa.String(length=255), nullable=True),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('provisioning_status', sa.String(length=16), nullable=False),
    sa.Column('operating_status', sa.String(length=16), nullable=False),
    sa.Column('project_id', sa.String(length=36), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['pool_id'], ['pool.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('health_monitor', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_health_monitor_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_health_monitor_pool_id'), ['pool_id'], unique=True)
        batch_op.create_index(batch_op.f('ix_health_monitor_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_health_monitor_provisioning_status'),
                              ['provisioning_status'], unique=False)

    op.create_table('listener',
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('load_balancer_id', sa.String(length=36), nullable=False),
    sa.Column('protocol', sa.String(length=16), nullable=False),
    sa.Column('protocol_port', sa.Integer(), nullable=False),
    sa.Column('connection_limit', sa.Integer(), nullable=True),
    sa.Column('default_pool_id', sa.String(length=36), nullable=True),
    sa.Column('tls_certificate_id', sa.String(length=255), nullable=True),
    sa.Column('sni_container_refs', sa.JSON(), nullable=False),
    sa.Column('client_ca_tls_certificate_id', sa.String(length=255), nullable=True),
    sa.Column('client_authentication', sa.String(length=10), nullable=False),
    sa.Column('client_crl_container_id', sa.String(length=255), nullable=True),
    sa.Column('timeout_client_data', sa.Integer(), nullable=True),
    sa.Column('timeout_member_connect', sa.Integer(), nullable=True),
    sa.Column('timeout_member_data', sa.Integer(), nullable=True),
    sa.Column('timeout_tcp_inspect', sa.Integer(), nullable=True),
    sa.Column('insert_headers', sa.JSON(), nullable=False),
    sa.Column('allowed_cidrs', sa.JSON(), nullable=False),
    sa.Column('tls_ciphers', sa.String(length=2048), nullable=True),
    sa.Column('tls_versions', sa.JSON(), nullable=True),
    sa.Column('alpn_protocols', sa.JSON(), nullable=True),
    sa.Column('hsts_max_age', sa.Integer(), nullable=True),
    sa.Column('hsts_include_subdomains', sa.Boolean(), nullable=False),
    sa.Column('hsts_preload', sa.Boolean(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('provisioning_status', sa.String(length=16), nullable=False),
    sa.Column('operating_status', sa.String(length=16), nullable=False),
    sa.Column('project_id', sa.String(length=36), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['default_pool_id'], ['pool.id'], ),
    sa.ForeignKeyConstraint(['load_balancer_id'], ['load_balancer.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('load_balancer_id', 'protocol', 'protocol_port')
    )
    with op.batch_alter_table('listener', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_listener_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_listener_default_pool_id'), ['default_pool_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_listener_load_balancer_id'), ['load_balancer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_listener_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_listener_provisioning_status'), ['provisioning_status'], unique=False)

    op.create_table('member',
    sa.Column('pool_id', sa.String(length=36), nullable=False),
    sa.Column('ip_address', sa.String(length=64), nullable=False),
    sa.Column('protocol_port', sa.Integer(), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.Column('backup', sa.Boolean(), nullable=False),
    sa.Column('subnet_id', sa.String(length=36), nullable=True),
    sa.Column('monitor_address', sa.String(length=64), nullable=True),
    sa.Column('monitor_port', sa.Integer(), nullable=True),
    sa.Column('vnic_type', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('provisioning_status', sa.String(length=16), nullable=False),
    sa.Column('operating_status', sa.String(length=16), nullable=False),
    sa.Column('project_id', sa.String(length=36), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['pool_id'], ['pool.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('pool_id', 'ip_address', 'protocol_port')
    )
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_member_pool_id'), ['pool_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_member_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_member_provisioning_status'), ['provisioning_status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_provisioning_status'))
        batch_op.drop_index(batch_op.f('ix_member_project_id'))
        batch_op.drop_index(batch_op.f('ix_member_pool_id'))
        batch_op.drop_index(batch_op.f('ix_member_created_at'))

    op.drop_table('member')
    with op.batch_alter_table('listener', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_listener_provisioning_status'))
        batch_op.drop_index(batch_op.f('ix_listener_project_id'))
        batch_op.drop_index(batch_op.f('ix_listener_load_balancer_id'))
        batch_op.drop_index(batch_op.f('ix_listener_default_pool_id'))
        batch_op.drop_index(batch_op.f('ix_listener_created_at'))

    op.drop_table('listener')
    with op.batch_alter_table('health_monitor', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_health_monitor_provisioning_status'))
        batch_op.drop_index(batch_op.f('ix_health_monitor_project_id'))
        batch_op.drop_index(batch_op.f('ix_health_monitor_pool_id'))
        batch_op.drop_index(batch_op.f('ix_health_monitor_created_at'))

    op.drop_table('health_monitor')
    with op.batch_alter_table('pool', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pool_provisioning_status'))
        batch_op.drop_index(batch_op.f('ix_pool_project_id'))
        batch_op.drop_index(batch_op.f('ix_pool_load_balancer_id'))
        batch_op.drop_index(batch_op.f('ix_pool_created_at'))

    op.drop_table('pool')
    with op.batch_alter_table('amphora', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_amphora_status'))
        batch_op.drop_index(batch_op.f('ix_amphora_load_balancer_id'))
        batch_op.drop_index(batch_op.f('ix_amphora_created_at'))

    op.drop_table('amphora')
    op.drop_table('additional_vip')
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tags_tag'))

    op.drop_table('tags')
    op.drop_table('quotas')
    with op.batch_alter_table('load_balancer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_load_balancer_provisioning_status'))
        batch_op.drop_index(batch_op.f('ix_load_balancer_project_id'))
        batch_op.drop_index(batch_op.f('ix_load_balancer_created_at'))

    op.drop_table('load_balancer')
    op.drop_table('listener_statistics')
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_lease_expires'))

    op.drop_table('job')
