"""admin monitor: indexes for the list of payments and unpaid orders

The list (app/admin/queries.py) pages by keyset: each sort reads one index in order and
stops after a page, however many rows there are. The index on payments (status,
created_at) gains id, the keyset's tie-break.

Revision ID: 0013_admin_monitor
Revises: 0012_health
Create Date: 2026-12-06 18:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0013_admin_monitor'
down_revision = '0012_health'
branch_labels = None
depends_on = None

OPEN_ORDERS = "status IN ('new', 'pending', 'expired', 'cancelled')"
# Unpaid orders (no payment yet), by date, sum and status: partial, as small as they are few.
OPEN_ORDER_INDEXES = {
    'ix_orders_open_created': ['created_at', 'id'],
    'ix_orders_open_total': ['total_kopecks', 'id'],
    'ix_orders_open_status': ['status', 'created_at', 'id'],
}
PAYMENT_INDEXES = {
    'ix_payments_created': ['created_at', 'id'],
    'ix_payments_amount': ['amount_kopecks', 'id'],
    'ix_payments_status_amount': ['status', 'amount_kopecks', 'id'],
}


def upgrade():
    op.drop_index('ix_payments_status_created', table_name='payments')
    op.create_index('ix_payments_status_created', 'payments', ['status', 'created_at', 'id'])
    for name, columns in PAYMENT_INDEXES.items():
        op.create_index(name, 'payments', columns)
    for name, columns in OPEN_ORDER_INDEXES.items():
        op.create_index(name, 'orders', columns, postgresql_where=sa.text(OPEN_ORDERS),
                        sqlite_where=sa.text(OPEN_ORDERS))


def downgrade():
    for name in OPEN_ORDER_INDEXES:
        op.drop_index(name, table_name='orders')
    for name in PAYMENT_INDEXES:
        op.drop_index(name, table_name='payments')
    op.drop_index('ix_payments_status_created', table_name='payments')
    op.create_index('ix_payments_status_created', 'payments', ['status', 'created_at'])
