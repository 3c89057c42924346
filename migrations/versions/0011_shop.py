"""admin panel, shop: one-time links of an admin's Telegram account

Revision ID: 0011_shop
Revises: 0010_accounts
Create Date: 2026-12-07 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0011_shop'
down_revision = '0010_accounts'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('admin_telegram_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('admin_user_id', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('used_by_telegram_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['admin_user_id'], ['admin_users.id'], name=op.f('fk_admin_telegram_links_admin_user_id_admin_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_telegram_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_admin_telegram_links_token_hash'))
    )
    with op.batch_alter_table('admin_telegram_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admin_telegram_links_admin_user_id'), ['admin_user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('admin_telegram_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_admin_telegram_links_admin_user_id'))

    op.drop_table('admin_telegram_links')
