"""sandbox broker

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 02:15:50.900454
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sandbox_fills',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.String(length=32), nullable=False),
    sa.Column('gtt_id', sa.String(length=32), nullable=False),
    sa.Column('strategy', sa.String(length=16), nullable=False),
    sa.Column('instrument_key', sa.String(length=64), nullable=False),
    sa.Column('transaction_type', sa.String(length=4), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('price', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('ltp', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('filled_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id')
    )
    with op.batch_alter_table('sandbox_fills', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_fills_gtt_id'), ['gtt_id'], unique=False)

    op.create_table('sandbox_gtts',
    sa.Column('gtt_id', sa.String(length=32), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('instrument_key', sa.String(length=64), nullable=False),
    sa.Column('trading_symbol', sa.String(length=128), nullable=False),
    sa.Column('transaction_type', sa.String(length=4), nullable=False),
    sa.Column('product', sa.String(length=8), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revision', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('gtt_id')
    )
    with op.batch_alter_table('sandbox_gtts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_gtts_revision'), ['revision'], unique=False)

    op.create_table('sandbox_meta',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('generation', sa.BigInteger(), nullable=False),
    sa.Column('gtt_seq', sa.BigInteger(), nullable=False),
    sa.Column('order_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('sandbox_quotes',
    sa.Column('instrument_key', sa.String(length=64), nullable=False),
    sa.Column('last_price', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('open', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('open_day', sa.Date(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revision', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('instrument_key')
    )
    with op.batch_alter_table('sandbox_quotes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_quotes_revision'), ['revision'], unique=False)

    op.create_table('sandbox_gtt_rules',
    sa.Column('gtt_id', sa.String(length=32), nullable=False),
    sa.Column('strategy', sa.String(length=16), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('trigger_type', sa.String(length=16), nullable=False),
    sa.Column('trigger_price', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('trailing_gap', sa.Numeric(precision=18, scale=6), nullable=True),
    sa.Column('market_protection', sa.Integer(), nullable=True),
    sa.Column('transaction_type', sa.String(length=4), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('order_id', sa.String(length=32), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['gtt_id'], ['sandbox_gtts.gtt_id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('gtt_id', 'strategy')
    )


def downgrade() -> None:
    op.drop_table('sandbox_gtt_rules')
    with op.batch_alter_table('sandbox_quotes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_quotes_revision'))

    op.drop_table('sandbox_quotes')
    op.drop_table('sandbox_meta')
    with op.batch_alter_table('sandbox_gtts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_gtts_revision'))

    op.drop_table('sandbox_gtts')
    with op.batch_alter_table('sandbox_fills', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_fills_gtt_id'))

    op.drop_table('sandbox_fills')
