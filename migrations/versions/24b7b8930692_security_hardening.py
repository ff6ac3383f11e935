"""security hardening: audit seq and key id, sign-in throttle

Existing audit rows get dense sequence numbers in id order and an empty key id: they
keep their unkeyed digests and are verified as the chain's unkeyed prefix; every new
row is signed with AUDIT_KEY.

Revision ID: 24b7b8930692
Revises: 4e4d5eadd486
Create Date: 2026-12-01 11:20:37.543530

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '24b7b8930692'
down_revision = '4e4d5eadd486'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('signin_throttle',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=330), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('window_start', sa.BigInteger(), nullable=False),
    sa.Column('next_allowed', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signin_throttle')),
    sa.UniqueConstraint('key', name=op.f('uq_signin_throttle_key'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column('key_id', sa.String(length=16), nullable=False, server_default='')
        )
    # Dense numbers: ids may have gaps (a retried append uses up an id).
    op.execute(
        "UPDATE audit_event SET seq = "
        "(SELECT COUNT(*) FROM audit_event AS earlier WHERE earlier.id <= audit_event.id)"
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column('key_id', existing_type=sa.String(length=16), server_default=None)
        batch_op.create_unique_constraint(batch_op.f('uq_audit_event_seq'), ['seq'])

    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('outcome', sa.String(length=20), nullable=False, server_default='failed')
        )
    op.execute("UPDATE login_attempt SET outcome = 'success' WHERE succeeded")
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.alter_column('outcome', existing_type=sa.String(length=20), server_default=None)


def downgrade():
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.drop_column('outcome')

    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_audit_event_seq'), type_='unique')
        batch_op.drop_column('key_id')
        batch_op.drop_column('seq')

    op.drop_table('signin_throttle')
