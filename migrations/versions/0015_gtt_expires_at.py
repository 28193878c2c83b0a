"""gtt_orders.expires_at: the caller's own expiry of a GTT (expires_at on place)

The watcher's lease holder cancels a trigger at the broker once this time has passed and records
it as expired (services/expiry.py). NULL: no expiry of the caller's; the broker's own applies.
Indexed for the watcher's look-up of what is due.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 18:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('gtt_orders') as batch:
        batch.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
        batch.create_index('ix_gtt_orders_expires_at', ['expires_at'])


def downgrade() -> None:
    with op.batch_alter_table('gtt_orders') as batch:
        batch.drop_index('ix_gtt_orders_expires_at')
        batch.drop_column('expires_at')
