"""payments: unique on what the bank signed, not on its unsigned transaction id

A payment is told apart by the signed fields of the bank's news (order, sum, time), kept
in `bank_key`. The bank's transactionId is not signed: it stays, indexed, to show and to
name a payment in a refund. A QR code or cash-link sale may now carry a second payment
(kept for review), so `activation_id` is no longer unique. Payments recorded before keep
a key of their own.

Revision ID: 0006_signed_payment_keys
Revises: 0005_install_id
Create Date: 2026-12-06 15:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0006_signed_payment_keys'
down_revision = '0005_install_id'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bank_key', sa.String(length=128), nullable=True))
    op.execute("UPDATE payments SET bank_key = 'recorded-before-keys-' || id")
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.alter_column('bank_key', existing_type=sa.String(length=128), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_payments_bank_key'), ['bank_key'])
        batch_op.drop_constraint('uq_payments_transaction_id', type_='unique')
        batch_op.drop_constraint('uq_payments_activation_id', type_='unique')
        batch_op.create_index(batch_op.f('ix_payments_transaction_id'), ['transaction_id'])
        batch_op.create_index(batch_op.f('ix_payments_activation_id'), ['activation_id'])


def downgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_activation_id'))
        batch_op.drop_index(batch_op.f('ix_payments_transaction_id'))
        batch_op.create_unique_constraint('uq_payments_activation_id', ['activation_id'])
        batch_op.create_unique_constraint('uq_payments_transaction_id', ['transaction_id'])
        batch_op.drop_constraint(batch_op.f('uq_payments_bank_key'), type_='unique')
        batch_op.drop_column('bank_key')
