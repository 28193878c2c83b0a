"""order_fills: the order each fired GTT leg placed, and its fill (issue 27)

Looked up when the fire is seen, kept, and looked up again only while the order is open: the
"triggered" message, gttorderstatus and the page read it from here.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08 00:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'order_fills',
        sa.Column('broker_id', sa.String(length=64), nullable=False),
        sa.Column('leg', sa.String(length=16), nullable=False),
        sa.Column('trigger_id', sa.String(length=64), nullable=False),
        sa.Column('order_id', sa.String(length=64), nullable=True),
        sa.Column('action', sa.String(length=4), nullable=True),
        sa.Column('quantity', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('filled_quantity', sa.Integer(), nullable=False),
        sa.Column('average_price', sa.Numeric(18, 6), nullable=True),
        sa.Column('message', sa.Text(), nullable=True),
        sa.Column('final', sa.Boolean(), nullable=False),
        sa.Column('checks', sa.Integer(), nullable=False),
        sa.Column('fired_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('broker_id', 'leg'),
    )
    with op.batch_alter_table('order_fills') as batch:
        batch.create_index('ix_order_fills_trigger_id', ['trigger_id'], unique=False)
        batch.create_index('ix_order_fills_final', ['final'], unique=False)


def downgrade() -> None:
    op.drop_table('order_fills')
