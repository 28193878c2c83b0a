"""the notifications outbox (events and their per-URL deliveries) and the watcher's last view of
each trigger's rules

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 18:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('gtt_orders') as batch:
        batch.add_column(sa.Column('broker_state', sa.Text(), nullable=True))
    op.create_table(
        'notify_events',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('trigger_id', sa.String(length=64), nullable=True),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_notify_events_trigger_id', 'notify_events', ['trigger_id'])
    op.create_table(
        'notify_deliveries',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('url_id', sa.String(length=16), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_notify_deliveries_event_id', 'notify_deliveries', ['event_id'])
    op.create_index('ix_notify_deliveries_due', 'notify_deliveries', ['url_id', 'state', 'next_attempt_at'])


def downgrade() -> None:
    op.drop_index('ix_notify_deliveries_due', table_name='notify_deliveries')
    op.drop_index('ix_notify_deliveries_event_id', table_name='notify_deliveries')
    op.drop_table('notify_deliveries')
    op.drop_index('ix_notify_events_trigger_id', table_name='notify_events')
    op.drop_table('notify_events')
    with op.batch_alter_table('gtt_orders') as batch:
        batch.drop_column('broker_state')
