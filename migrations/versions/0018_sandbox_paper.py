"""sandbox_orders, sandbox_trades, sandbox_positions: the sandbox's paper account (issue 27)

A fired sandbox rule becomes a paper order; a fill is a trade and moves a position.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 18:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

PRICE = sa.Numeric(18, 6)
AMOUNT = sa.Numeric(24, 6)


def upgrade() -> None:
    op.create_table(
        'sandbox_orders',
        sa.Column('order_id', sa.String(length=32), nullable=False),
        sa.Column('gtt_id', sa.String(length=32), nullable=False),
        sa.Column('strategy', sa.String(length=16), nullable=False),
        sa.Column('instrument_key', sa.String(length=64), nullable=False),
        sa.Column('symbol', sa.String(length=64), nullable=False),
        sa.Column('exchange', sa.String(length=16), nullable=False),
        sa.Column('product', sa.String(length=8), nullable=False),
        sa.Column('side', sa.String(length=4), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('pricetype', sa.String(length=8), nullable=False),
        sa.Column('price', PRICE, nullable=False),
        sa.Column('trigger_price', PRICE, nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('average_price', PRICE, nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('order_id'),
    )
    with op.batch_alter_table('sandbox_orders') as batch:
        batch.create_index('ix_sandbox_orders_gtt_id', ['gtt_id'], unique=False)
        batch.create_index('ix_sandbox_orders_status', ['status'], unique=False)
    op.create_table(
        'sandbox_trades',
        sa.Column('order_id', sa.String(length=32), nullable=False),
        sa.Column('instrument_key', sa.String(length=64), nullable=False),
        sa.Column('symbol', sa.String(length=64), nullable=False),
        sa.Column('exchange', sa.String(length=16), nullable=False),
        sa.Column('product', sa.String(length=8), nullable=False),
        sa.Column('side', sa.String(length=4), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('price', PRICE, nullable=False),
        sa.Column('traded_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('order_id'),
    )
    with op.batch_alter_table('sandbox_trades') as batch:
        batch.create_index('ix_sandbox_trades_traded_at', ['traded_at'], unique=False)
    op.create_table(
        'sandbox_positions',
        sa.Column('instrument_key', sa.String(length=64), nullable=False),
        sa.Column('product', sa.String(length=8), nullable=False),
        sa.Column('symbol', sa.String(length=64), nullable=False),
        sa.Column('exchange', sa.String(length=16), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('cost', AMOUNT, nullable=False),
        sa.Column('realised', AMOUNT, nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('instrument_key', 'product'),
    )


def downgrade() -> None:
    op.drop_table('sandbox_positions')
    with op.batch_alter_table('sandbox_trades') as batch:
        batch.drop_index('ix_sandbox_trades_traded_at')
    op.drop_table('sandbox_trades')
    with op.batch_alter_table('sandbox_orders') as batch:
        batch.drop_index('ix_sandbox_orders_status')
        batch.drop_index('ix_sandbox_orders_gtt_id')
    op.drop_table('sandbox_orders')
