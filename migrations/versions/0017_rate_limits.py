"""rate limits: counters shared by every web process (app/ratelimit)

Revision ID: 0017_rate_limits
Revises: 0015_storefront
Create Date: 2026-12-06 23:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0017_rate_limits'
down_revision = '0016_job_request_id'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('rate_limit_counters',
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_limit_counters'))
    )
    with op.batch_alter_table('rate_limit_counters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_limit_counters_expires_at'), ['expires_at'], unique=False)
    # PostgreSQL: counters need no crash safety; without WAL a hit's commit does not wait
    # for the disk (after a crash the table is empty and every window starts again).
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE rate_limit_counters SET UNLOGGED')


def downgrade():
    with op.batch_alter_table('rate_limit_counters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_limit_counters_expires_at'))

    op.drop_table('rate_limit_counters')
