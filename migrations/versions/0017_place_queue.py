"""place_attempts.queued_at and request_id: a burst's places wait as QUEUED attempts

A place that cannot be sent within its caller's patience is queued (domain/place_attempt.py): its
attempt is written QUEUED, with the moment it was queued, and sent in arrival order as the order
pacer allows. `request_id` finds a request's attempts again (gttorderstatus by request_id).

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-07 19:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('place_attempts') as batch:
        batch.add_column(sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('request_id', sa.String(length=64), nullable=True))
        batch.create_index('ix_place_attempts_request_id', ['request_id'])


def downgrade() -> None:
    with op.batch_alter_table('place_attempts') as batch:
        batch.drop_index('ix_place_attempts_request_id')
        batch.drop_column('request_id')
        batch.drop_column('queued_at')
