"""staff time zone

Revision ID: c5d1e7a9f3b2
Revises: a7c3e1f0b2d4
Create Date: 2026-12-01 14:15:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c5d1e7a9f3b2'
down_revision = 'a7c3e1f0b2d4'
branch_labels = None
depends_on = None


def upgrade():
    # The IANA zone each staff member reads times in; empty until their browser says
    # (or they choose one on their profile).
    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('staff_user', schema=None) as batch_op:
        batch_op.drop_column('time_zone')
