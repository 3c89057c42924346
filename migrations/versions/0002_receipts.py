"""receipts

Revision ID: 11e2c4ff6723
Revises: 7651769e2720
Create Date: 2026-11-27 18:05:52.286497

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '11e2c4ff6723'
down_revision = '7651769e2720'
branch_labels = None
depends_on = None


def upgrade():

    op.create_table('receipts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.Enum('sell', 'sell_refund', name='receipt_kind', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('status', sa.Enum('pending', 'wait', 'done', 'failed', name='receipt_status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('refund_id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('external_id', sa.String(length=128), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.String(length=64), nullable=True),
    sa.Column('total_kopecks', sa.BigInteger(), nullable=False),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('customer_email', sa.String(length=64), nullable=True),
    sa.Column('customer_phone', sa.String(length=20), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('fn_number', sa.String(length=16), nullable=True),
    sa.Column('fiscal_document_number', sa.BigInteger(), nullable=True),
    sa.Column('fiscal_document_attribute', sa.BigInteger(), nullable=True),
    sa.Column('receipt_datetime', sa.DateTime(timezone=True), nullable=True),
    sa.Column('shift_number', sa.Integer(), nullable=True),
    sa.Column('fiscal_receipt_number', sa.Integer(), nullable=True),
    sa.Column('ecr_registration_number', sa.String(length=20), nullable=True),
    sa.Column('fns_site', sa.String(length=64), nullable=True),
    sa.Column('ofd_inn', sa.String(length=12), nullable=True),
    sa.Column('ofd_receipt_url', sa.String(length=500), nullable=True),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('attempt >= 1', name=op.f('ck_receipts_attempt_positive')),
    sa.CheckConstraint('total_kopecks > 0', name=op.f('ck_receipts_total_positive')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_receipts_payment_id_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_receipts')),
    sa.UniqueConstraint('external_id', name=op.f('uq_receipts_external_id')),
    sa.UniqueConstraint('payment_id', 'kind', 'refund_id', name='uq_receipts_source'),
    sa.UniqueConstraint('token', name=op.f('uq_receipts_token'))
    )
    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_receipts_payment_id'), ['payment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_receipts_provider_id'), ['provider_id'], unique=False)
        batch_op.create_index('ix_receipts_status_created', ['status', 'created_at'], unique=False)

    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lines', sa.JSON(), nullable=True))




def downgrade():

    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_column('lines')

    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.drop_index('ix_receipts_status_created')
        batch_op.drop_index(batch_op.f('ix_receipts_provider_id'))
        batch_op.drop_index(batch_op.f('ix_receipts_payment_id'))

    op.drop_table('receipts')

