"""payout lifecycle: the owning run, transfer start, the provider's transfer state

Revision ID: a7c3e1f0b2d4
Revises: 24b7b8930692
Create Date: 2026-12-01 12:00:00

"""

import sqlalchemy as sa
from alembic import op

import estuary.models.base

revision = "a7c3e1f0b2d4"
down_revision = "24b7b8930692"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("payout", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run_id", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("transfer_started_at", estuary.models.base.UTCDateTime(), nullable=True)
        )
    with op.batch_alter_table("transfer", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=20), server_default="paid", nullable=False)
        )
        batch_op.add_column(
            sa.Column("settles_at", estuary.models.base.UTCDateTime(), nullable=True)
        )


def downgrade():
    with op.batch_alter_table("transfer", schema=None) as batch_op:
        batch_op.drop_column("settles_at")
        batch_op.drop_column("status")
    with op.batch_alter_table("payout", schema=None) as batch_op:
        batch_op.drop_column("transfer_started_at")
        batch_op.drop_column("run_id")
