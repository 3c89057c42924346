"""orders: the till an order was sold at

Revision ID: 0008_order_till
Revises: 0007_people
Create Date: 2026-12-06 18:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0008_order_till'
down_revision = '0007_people'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('till_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_orders_till_id'), ['till_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_orders_till_id_qr_codes'), 'qr_codes',
                                    ['till_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_orders_till_id_qr_codes'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_orders_till_id'))
        batch_op.drop_column('till_id')
