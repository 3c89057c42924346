"""receipt submitted_at

Revision ID: d54d82cf7b76
Revises: 11e2c4ff6723
Create Date: 2026-11-27 19:52:35.267069

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd54d82cf7b76'
down_revision = '11e2c4ff6723'
branch_labels = None
depends_on = None


def upgrade():

    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True))




def downgrade():

    with op.batch_alter_table('receipts', schema=None) as batch_op:
        batch_op.drop_column('submitted_at')


