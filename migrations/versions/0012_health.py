"""provider health: last successful call and last error of the bank, the register, the bot

Revision ID: 0012_health
Revises: 0011_shop
Create Date: 2026-12-07 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0012_health'
down_revision = '0011_shop'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('provider_health',
    sa.Column('service', sa.String(length=16), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_ok_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('service', name=op.f('pk_provider_health'))
    )


def downgrade():
    op.drop_table('provider_health')
