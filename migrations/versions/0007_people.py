"""people: the shop's staff, requests for access, and the cashier of an order

Revision ID: 0007_people
Revises: 0006_signed_payment_keys
Create Date: 2026-12-06 17:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0007_people'
down_revision = '0006_signed_payment_keys'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('staff',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('telegram_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=True),
    sa.Column('is_cashier', sa.Boolean(), nullable=False),
    sa.Column('is_manager', sa.Boolean(), nullable=False),
    sa.Column('can_edit_catalog', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('till_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['till_id'], ['qr_codes.id'], name=op.f('fk_staff_till_id_qr_codes'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff')),
    sa.UniqueConstraint('telegram_id', name=op.f('uq_staff_telegram_id'))
    )
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_till_id'), ['till_id'], unique=False)

    op.create_table('access_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('telegram_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=True),
    sa.Column('username', sa.String(length=64), nullable=True),
    sa.Column('status', sa.Enum('pending', 'approved', 'refused', name='access_status', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['decided_by'], ['staff.id'], name=op.f('fk_access_requests_decided_by_staff')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_requests'))
    )
    with op.batch_alter_table('access_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_requests_decided_by'), ['decided_by'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_requests_telegram_id'), ['telegram_id'], unique=False)
        batch_op.create_index('ux_access_requests_pending', ['telegram_id'], unique=True,
                              postgresql_where=sa.text("status = 'pending'"),
                              sqlite_where=sa.text("status = 'pending'"))

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cashier_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_orders_cashier_id'), ['cashier_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_orders_cashier_id_staff'), 'staff', ['cashier_id'], ['id'])


def downgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_orders_cashier_id_staff'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_orders_cashier_id'))
        batch_op.drop_column('cashier_id')

    with op.batch_alter_table('access_requests', schema=None) as batch_op:
        batch_op.drop_index('ux_access_requests_pending',
                            postgresql_where=sa.text("status = 'pending'"),
                            sqlite_where=sa.text("status = 'pending'"))
        batch_op.drop_index(batch_op.f('ix_access_requests_telegram_id'))
        batch_op.drop_index(batch_op.f('ix_access_requests_decided_by'))

    op.drop_table('access_requests')
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_till_id'))

    op.drop_table('staff')
