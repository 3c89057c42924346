"""jobs.request_id: the id of the request (or job) that enqueued a job, for its log lines

Revision ID: 0016_job_request_id
Revises: 0015_storefront
Create Date: 2026-12-06 23:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '0016_job_request_id'
down_revision = '0015_storefront'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_id', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('request_id')
