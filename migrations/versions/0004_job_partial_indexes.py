"""jobs: partial indexes for the worker's two questions and the admin's dead jobs

The index on (status, run_at) held every job ever run; the worker's OR-ed claim had to
walk its dead entries with a bitmap scan until VACUUM came. Each partial index below holds
only the rows its query looks for.

Revision ID: 0004_job_partial_indexes
Revises: d54d82cf7b76
Create Date: 2026-11-27 21:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0004_job_partial_indexes'
down_revision = 'd54d82cf7b76'
branch_labels = None
depends_on = None

PARTIAL = {
    'ix_jobs_queued_run_at': (['run_at', 'id'], "status = 'queued'"),
    'ix_jobs_running_locked_until': (['locked_until'], "status = 'running'"),
    'ix_jobs_dead_finished_at': (['finished_at'], "status = 'dead'"),
}


def upgrade():
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_status_run_at')
    for name, (columns, where) in PARTIAL.items():
        op.create_index(name, 'jobs', columns, unique=False,
                        postgresql_where=sa.text(where), sqlite_where=sa.text(where))


def downgrade():
    for name in PARTIAL:
        op.drop_index(name, table_name='jobs')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_status_run_at', ['status', 'run_at'], unique=False)
