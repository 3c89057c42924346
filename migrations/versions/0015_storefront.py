"""storefront: shop settings, categories, customers, product photos, the bank directory,
storefront orders (customer, delivery, fulfilment, stock) and the order channel "storefront"

Revision ID: 0015_storefront
Revises: 0014_integrations
Create Date: 2026-12-06 20:23:12.712226

"""
from alembic import op
import sqlalchemy as sa


revision = '0015_storefront'
down_revision = '0014_integrations'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('bank_directory',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('banks', sa.JSON(), nullable=False),
    sa.Column('source_url', sa.String(length=255), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_bank_directory_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_directory'))
    )
    op.create_table('categories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_categories')),
    sa.UniqueConstraint('name', name=op.f('uq_categories_name'))
    )
    op.create_table('customers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('telegram_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=True),
    sa.Column('username', sa.String(length=64), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('email', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customers')),
    sa.UniqueConstraint('telegram_id', name=op.f('uq_customers_telegram_id'))
    )
    op.create_table('shop_settings',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('storefront_enabled', sa.Boolean(), nullable=False),
    sa.Column('pickup_enabled', sa.Boolean(), nullable=False),
    sa.Column('pickup_address', sa.String(length=255), nullable=True),
    sa.Column('delivery_enabled', sa.Boolean(), nullable=False),
    sa.Column('delivery_terms', sa.String(length=500), nullable=True),
    sa.Column('welcome_text', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_shop_settings_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shop_settings'))
    )
    op.create_table('product_photos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=16), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('image', sa.LargeBinary(), nullable=False),
    sa.Column('thumb', sa.LargeBinary(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_product_photos_product_id_products'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_product_photos')),
    sa.UniqueConstraint('product_id', name=op.f('uq_product_photos_product_id'))
    )
    op.create_table('order_manager_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('chat_id', sa.BigInteger(), nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_manager_messages_order_id_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_manager_messages')),
    sa.UniqueConstraint('order_id', 'chat_id', name='uq_order_manager_messages_order_chat')
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('delivery', sa.Enum('pickup', 'delivery', name='delivery_method', native_enum=False, create_constraint=True, length=24), nullable=True))
        batch_op.add_column(sa.Column('delivery_address', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('customer_comment', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('fulfilment', sa.Enum('new', 'accepted', 'ready', 'shipped', 'handed_over', 'cancelled', name='fulfilment_status', native_enum=False, create_constraint=True, length=24), nullable=True))
        batch_op.add_column(sa.Column('stock_deducted', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index(batch_op.f('ix_orders_customer_id'), ['customer_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_orders_customer_id_customers'), 'customers', ['customer_id'], ['id'])
        batch_op.drop_constraint(batch_op.f('ck_orders_order_channel'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_orders_order_channel'),
            "channel IN ('miniapp', 'api', 'admin', 'cli', 'storefront')")

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_published', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('category_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('description', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('stock_milli', sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f('ix_products_category_id'), ['category_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_products_category_id_categories'), 'categories', ['category_id'], ['id'], ondelete='SET NULL')



def downgrade():
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_products_category_id_categories'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_products_category_id'))
        batch_op.drop_column('stock_milli')
        batch_op.drop_column('description')
        batch_op.drop_column('category_id')
        batch_op.drop_column('is_published')

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_orders_order_channel'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_orders_order_channel'), "channel IN ('miniapp', 'api', 'admin', 'cli')")
        batch_op.drop_constraint(batch_op.f('fk_orders_customer_id_customers'), type_='foreignkey')
        # SQLite's batch copy keeps a CHECK it reflected even when its column goes.
        batch_op.drop_constraint(batch_op.f('ck_orders_fulfilment_status'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_orders_delivery_method'), type_='check')
        batch_op.drop_index(batch_op.f('ix_orders_customer_id'))
        batch_op.drop_column('stock_deducted')
        batch_op.drop_column('fulfilment')
        batch_op.drop_column('customer_comment')
        batch_op.drop_column('delivery_address')
        batch_op.drop_column('delivery')
        batch_op.drop_column('customer_id')

    op.drop_table('order_manager_messages')
    op.drop_table('product_photos')
    op.drop_table('shop_settings')
    op.drop_table('customers')
    op.drop_table('categories')
    op.drop_table('bank_directory')
