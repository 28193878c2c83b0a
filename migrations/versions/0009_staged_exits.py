"""Kite: staged exits (a bracket's exit, placed once its entry fills, claimed before the broker
call), and whose instrument master each load was

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 18:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'staged_exits',
        sa.Column('trigger_id', sa.String(length=64), primary_key=True),
        sa.Column('entry_gtt_id', sa.String(length=64), nullable=False),
        sa.Column('entry_order_id', sa.String(length=64), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('exit_gtt_id', sa.String(length=64), nullable=True),
        sa.Column('message', sa.Text(), nullable=True),
        sa.Column('holder', sa.String(length=128), nullable=False),
        sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table('instrument_loads') as batch:
        batch.add_column(sa.Column('broker', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('instrument_loads') as batch:
        batch.drop_column('broker')
    op.drop_table('staged_exits')
