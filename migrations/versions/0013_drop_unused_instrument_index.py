"""instruments: drop ix_instruments_exchange_symbol, which no query uses

Symbols are looked up in each process's in-memory index (store/instruments/index.py), built from
a full read of the table; the (exchange, symbol) index only cost every master load its upkeep.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 08:30:00
"""
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('instruments') as batch:
        batch.drop_index('ix_instruments_exchange_symbol')


def downgrade() -> None:
    with op.batch_alter_table('instruments') as batch:
        batch.create_index('ix_instruments_exchange_symbol', ['exchange', 'symbol'], unique=False)
