"""place_attempts: a place attempt is one row with an explicit state (domain/place_attempt.py)

It replaces the intent columns of request_records (plan, reserved_day, attempt_started_at) and
the lapsed_places table: "settling" and "lapsed" were read off nullable columns and a second
table; now they are states, moved by compare-and-set, each move one transaction.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 15:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'place_attempts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('record_id', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('plan', sa.JSON(), nullable=False),
        sa.Column('reserved_day', sa.Date(), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('holder', sa.String(length=128), nullable=False),
        sa.Column('trigger_id', sa.String(length=64), nullable=True),
        sa.Column('resolution', sa.String(length=255), nullable=True),
        sa.Column('late_gtt_ids', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('place_attempts') as batch:
        batch.create_index('ix_place_attempts_record_id', ['record_id'], unique=False)
        batch.create_index('ix_place_attempts_state', ['state'], unique=False)
    conn = op.get_bind()
    # Open intents become unsettled attempts: one still running (pending) is SENDING, one whose
    # outcome was unknown (fault) is SETTLING. Unresolved lapsed places become LAPSED.
    conn.execute(sa.text(
        "INSERT INTO place_attempts (record_id, state, plan, reserved_day, started_at, updated_at, holder) "
        "SELECT id, CASE WHEN state = 'pending' THEN 'sending' ELSE 'settling' END, plan, reserved_day, "
        "COALESCE(attempt_started_at, updated_at), updated_at, holder FROM request_records "
        "WHERE plan IS NOT NULL AND state IN ('pending', 'fault')"))
    conn.execute(sa.text(
        "INSERT INTO place_attempts (record_id, state, plan, reserved_day, started_at, updated_at, holder) "
        "SELECT record_id, 'lapsed', plan, NULL, attempt_started_at, lapsed_at, 'migration' FROM lapsed_places "
        "WHERE resolved_at IS NULL"))
    with op.batch_alter_table('lapsed_places') as batch:
        batch.drop_index('ix_lapsed_places_lapsed_at')
    op.drop_table('lapsed_places')
    # AUTOINCREMENT on SQLite: a purged record's id is never given to a new request, so an
    # attempt's record_id always names its own request (PostgreSQL's sequence never reuses one).
    sqlite = conn.dialect.name == 'sqlite'
    with op.batch_alter_table('request_records', recreate='always' if sqlite else 'auto',
                              table_kwargs={'sqlite_autoincrement': True}) as batch:
        batch.drop_column('plan')
        batch.drop_column('reserved_day')
        batch.drop_column('attempt_started_at')


def downgrade() -> None:
    with op.batch_alter_table('request_records') as batch:
        batch.add_column(sa.Column('attempt_started_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('reserved_day', sa.Date(), nullable=True))
        batch.add_column(sa.Column('plan', sa.JSON(), nullable=True))
    op.create_table(
        'lapsed_places',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('record_id', sa.Integer(), nullable=False),
        sa.Column('plan', sa.JSON(), nullable=False),
        sa.Column('attempt_started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('lapsed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('resolution', sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('lapsed_places') as batch:
        batch.create_index('ix_lapsed_places_lapsed_at', ['lapsed_at'], unique=False)
    op.drop_table('place_attempts')
