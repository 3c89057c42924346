"""constructor API: API clients, their orders, callback deliveries

Revision ID: 0014_integrations
Revises: 0013_admin_monitor
Create Date: 2026-12-06 19:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0014_integrations'
down_revision = '0013_admin_monitor'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('api_clients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('key_prefix', sa.String(length=12), nullable=False),
    sa.Column('preset', sa.Enum('salebot', 'puzzlebot', 'leadteh', 'smartbot', 'botmother', 'bothelp', 'webhook', name='callback_preset', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('callback_url', sa.String(length=512), nullable=True),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_clients')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_clients_key_hash'))
    )
    op.create_table('callback_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('api_client_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('url', sa.String(length=1024), nullable=False),
    sa.Column('request_body', sa.Text(), nullable=True),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('response_excerpt', sa.String(length=1024), nullable=True),
    sa.Column('error', sa.String(length=512), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['api_client_id'], ['api_clients.id'], name=op.f('fk_callback_deliveries_api_client_id_api_clients')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_callback_deliveries_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callback_deliveries'))
    )
    with op.batch_alter_table('callback_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_callback_deliveries_client_at', ['api_client_id', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_callback_deliveries_order_id'), ['order_id'], unique=False)

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('api_client_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('external_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('client_ref', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('checkout_token', sa.String(length=43), nullable=True))
        batch_op.create_index(batch_op.f('ix_orders_api_client_id'), ['api_client_id'], unique=False)
        batch_op.create_unique_constraint('uq_orders_api_client_external', ['api_client_id', 'external_id'])
        batch_op.create_unique_constraint(batch_op.f('uq_orders_checkout_token'), ['checkout_token'])
        batch_op.create_foreign_key(batch_op.f('fk_orders_api_client_id_api_clients'), 'api_clients', ['api_client_id'], ['id'])



def downgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_orders_api_client_id_api_clients'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_orders_checkout_token'), type_='unique')
        batch_op.drop_constraint('uq_orders_api_client_external', type_='unique')
        batch_op.drop_index(batch_op.f('ix_orders_api_client_id'))
        batch_op.drop_column('checkout_token')
        batch_op.drop_column('client_ref')
        batch_op.drop_column('external_id')
        batch_op.drop_column('api_client_id')

    with op.batch_alter_table('callback_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_callback_deliveries_order_id'))
        batch_op.drop_index('ix_callback_deliveries_client_at')

    op.drop_table('callback_deliveries')
    op.drop_table('api_clients')
