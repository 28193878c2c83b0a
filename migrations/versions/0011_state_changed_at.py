"""gtt_orders.state_changed_at: every state change has a time, wherever it happened

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 18:55:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('gtt_orders') as batch:
        batch.add_column(sa.Column('state_changed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('gtt_orders') as batch:
        batch.drop_column('state_changed_at')
