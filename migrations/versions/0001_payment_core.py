"""payment core: catalog, orders, QR codes, payments, refunds, bank events, jobs

Revision ID: 7651769e2720
Revises: 
Create Date: 2026-11-27 17:56:23.703524

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7651769e2720'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():

    op.create_table('bank_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('event_key', sa.String(length=128), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('qr_id', sa.String(length=32), nullable=True),
    sa.Column('transaction_id', sa.String(length=64), nullable=True),
    sa.Column('payment_status', sa.String(length=20), nullable=True),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_events')),
    sa.UniqueConstraint('provider', 'event_key', name='uq_bank_events_provider_key')
    )
    with op.batch_alter_table('bank_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bank_events_qr_id'), ['qr_id'], unique=False)
        batch_op.create_index('ix_bank_events_received', ['received_at'], unique=False)

    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('key', sa.String(length=160), nullable=True),
    sa.Column('status', sa.Enum('queued', 'running', 'done', 'dead', name='job_status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('run_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('locked_by', sa.String(length=64), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_jobs_attempts_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs')),
    sa.UniqueConstraint('key', name=op.f('uq_jobs_key'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_status_run_at', ['status', 'run_at'], unique=False)

    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.Enum('new', 'pending', 'paid', 'partially_refunded', 'refunded', 'expired', 'cancelled', name='order_status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('channel', sa.Enum('miniapp', 'api', 'admin', 'cli', name='order_channel', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('total_kopecks', sa.BigInteger(), nullable=False),
    sa.Column('description', sa.String(length=140), nullable=True),
    sa.Column('customer_email', sa.String(length=64), nullable=True),
    sa.Column('customer_phone', sa.String(length=20), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('total_kopecks > 0', name=op.f('ck_orders_total_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('public_id', name=op.f('uq_orders_public_id'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_status_created', ['status', 'created_at'], unique=False)

    op.create_table('products',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('price_kopecks', sa.BigInteger(), nullable=False),
    sa.Column('vat', sa.String(length=8), nullable=False),
    sa.Column('payment_object', sa.String(length=32), nullable=False),
    sa.Column('measure', sa.String(length=16), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('price_kopecks > 0', name=op.f('ck_products_price_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_products'))
    )
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.create_index('ix_products_active_name', ['is_active', 'name'], unique=False)

    op.create_table('order_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('price_kopecks', sa.BigInteger(), nullable=False),
    sa.Column('quantity_milli', sa.Integer(), nullable=False),
    sa.Column('amount_kopecks', sa.BigInteger(), nullable=False),
    sa.Column('vat', sa.String(length=8), nullable=False),
    sa.Column('payment_object', sa.String(length=32), nullable=False),
    sa.Column('measure', sa.String(length=16), nullable=False),
    sa.CheckConstraint('amount_kopecks >= 0', name=op.f('ck_order_items_amount_not_negative')),
    sa.CheckConstraint('price_kopecks >= 0', name=op.f('ck_order_items_price_not_negative')),
    sa.CheckConstraint('quantity_milli > 0', name=op.f('ck_order_items_quantity_positive')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_items_order_id_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_order_items_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_items'))
    )
    with op.batch_alter_table('order_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_items_order_id'), ['order_id'], unique=False)

    op.create_table('qr_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('dynamic', 'static', 'cash_link', name='qr_kind', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('status', sa.Enum('active', 'inactive', 'paid', 'expired', 'cancelled', name='qr_status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('qr_id', sa.String(length=32), nullable=False),
    sa.Column('bank_order', sa.String(length=40), nullable=False),
    sa.Column('amount_kopecks', sa.BigInteger(), nullable=True),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('description', sa.String(length=140), nullable=True),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('needs_review', sa.Boolean(), nullable=False),
    sa.Column('review_reason', sa.String(length=255), nullable=True),
    sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_kopecks IS NULL OR amount_kopecks > 0', name=op.f('ck_qr_codes_amount_positive')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_qr_codes_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qr_codes')),
    sa.UniqueConstraint('bank_order', name=op.f('uq_qr_codes_bank_order')),
    sa.UniqueConstraint('qr_id', name=op.f('uq_qr_codes_qr_id'))
    )
    with op.batch_alter_table('qr_codes', schema=None) as batch_op:
        batch_op.create_index('ix_qr_codes_kind_status', ['kind', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_qr_codes_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_qr_codes_status_created', ['status', 'created_at'], unique=False)

    op.create_table('cash_link_activations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('qr_code_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('bank_order_id', sa.String(length=40), nullable=False),
    sa.Column('amount_kopecks', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.Enum('active', 'paid', 'expired', 'cancelled', name='activation_status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_kopecks > 0', name=op.f('ck_cash_link_activations_amount_positive')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_cash_link_activations_order_id_orders')),
    sa.ForeignKeyConstraint(['qr_code_id'], ['qr_codes.id'], name=op.f('fk_cash_link_activations_qr_code_id_qr_codes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cash_link_activations')),
    sa.UniqueConstraint('bank_order_id', name=op.f('uq_cash_link_activations_bank_order_id'))
    )
    with op.batch_alter_table('cash_link_activations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cash_link_activations_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cash_link_activations_qr_code_id'), ['qr_code_id'], unique=False)
        batch_op.create_index('ix_cash_link_activations_status_expires', ['status', 'expires_at'], unique=False)

    op.create_table('payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('qr_code_id', sa.Integer(), nullable=False),
    sa.Column('activation_id', sa.Integer(), nullable=True),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('transaction_id', sa.String(length=64), nullable=True),
    sa.Column('amount_kopecks', sa.BigInteger(), nullable=False),
    sa.Column('refunded_kopecks', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.Enum('paid', 'partially_refunded', 'refunded', 'review', name='payment_status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('review_reason', sa.String(length=255), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_kopecks > 0', name=op.f('ck_payments_amount_positive')),
    sa.CheckConstraint('refunded_kopecks >= 0 AND refunded_kopecks <= amount_kopecks', name=op.f('ck_payments_refunded_within_amount')),
    sa.ForeignKeyConstraint(['activation_id'], ['cash_link_activations.id'], name=op.f('fk_payments_activation_id_cash_link_activations')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_payments_order_id_orders')),
    sa.ForeignKeyConstraint(['qr_code_id'], ['qr_codes.id'], name=op.f('fk_payments_qr_code_id_qr_codes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments')),
    sa.UniqueConstraint('activation_id', name=op.f('uq_payments_activation_id')),
    sa.UniqueConstraint('transaction_id', name=op.f('uq_payments_transaction_id'))
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_qr_code_id'), ['qr_code_id'], unique=False)
        batch_op.create_index('ix_payments_status_created', ['status', 'created_at'], unique=False)

    op.create_table('refunds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('refund_id', sa.String(length=40), nullable=False),
    sa.Column('amount_kopecks', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'in_progress', 'completed', 'declined', name='refund_status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('reason', sa.String(length=140), nullable=True),
    sa.Column('error', sa.String(length=255), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_kopecks > 0', name=op.f('ck_refunds_amount_positive')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_refunds_payment_id_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds')),
    sa.UniqueConstraint('refund_id', name=op.f('uq_refunds_refund_id'))
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_payment_id'), ['payment_id'], unique=False)
        batch_op.create_index('ix_refunds_status_created', ['status', 'created_at'], unique=False)




def downgrade():

    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index('ix_refunds_status_created')
        batch_op.drop_index(batch_op.f('ix_refunds_payment_id'))

    op.drop_table('refunds')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('ix_payments_status_created')
        batch_op.drop_index(batch_op.f('ix_payments_qr_code_id'))
        batch_op.drop_index(batch_op.f('ix_payments_order_id'))

    op.drop_table('payments')
    with op.batch_alter_table('cash_link_activations', schema=None) as batch_op:
        batch_op.drop_index('ix_cash_link_activations_status_expires')
        batch_op.drop_index(batch_op.f('ix_cash_link_activations_qr_code_id'))
        batch_op.drop_index(batch_op.f('ix_cash_link_activations_order_id'))

    op.drop_table('cash_link_activations')
    with op.batch_alter_table('qr_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_qr_codes_status_created')
        batch_op.drop_index(batch_op.f('ix_qr_codes_order_id'))
        batch_op.drop_index('ix_qr_codes_kind_status')

    op.drop_table('qr_codes')
    with op.batch_alter_table('order_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_items_order_id'))

    op.drop_table('order_items')
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index('ix_products_active_name')

    op.drop_table('products')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_status_created')

    op.drop_table('orders')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_status_run_at')

    op.drop_table('jobs')
    with op.batch_alter_table('bank_events', schema=None) as batch_op:
        batch_op.drop_index('ix_bank_events_received')
        batch_op.drop_index(batch_op.f('ix_bank_events_qr_id'))

    op.drop_table('bank_events')

