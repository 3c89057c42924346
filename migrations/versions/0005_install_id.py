"""installation: one row holding this installation's id (receipts' external ids carry it);
products and order_items: measure fits every measure name ("square_centimeter" is 17 long)

Revision ID: 0005_install_id
Revises: 0004_job_partial_indexes
Create Date: 2026-12-06 15:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0005_install_id'
down_revision = '0004_job_partial_indexes'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'installation',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('install_id', sa.String(length=8), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('id = 1', name=op.f('ck_installation_single_row')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_installation')),
    )
    for table in ('products', 'order_items'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('measure', existing_type=sa.String(length=16),
                                  type_=sa.String(length=24), existing_nullable=False)


def downgrade():
    for table in ('products', 'order_items'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('measure', existing_type=sa.String(length=24),
                                  type_=sa.String(length=16), existing_nullable=False)
    op.drop_table('installation')
