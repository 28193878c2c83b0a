"""api key identifiers and the pepper check

Keys issued from now on are `<public_id>.<secret>`; `public_id` finds a presented key's one row.
Keys issued before have no identifier: `lookup_hmac` is filled at their first successful use
(the plaintext is needed, so the migration cannot). `api_key_pepper_check` holds one row,
HMAC(pepper, "openalgo-gtt pepper check"), written by the first process that uses the database.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_id', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('lookup_hmac', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_api_keys_public_id'), ['public_id'], unique=True)
        batch_op.create_index(batch_op.f('ix_api_keys_lookup_hmac'), ['lookup_hmac'], unique=True)
    op.create_table('api_key_pepper_check',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('check_value', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('api_key_pepper_check')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_lookup_hmac'))
        batch_op.drop_index(batch_op.f('ix_api_keys_public_id'))
        batch_op.drop_column('lookup_hmac')
        batch_op.drop_column('public_id')
