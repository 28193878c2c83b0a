"""places whose outcome stayed unknown past the settling window, kept to match a very late GTT

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 18:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lapsed_places',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('plan', sa.JSON(), nullable=False),
    sa.Column('attempt_started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lapsed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution', sa.String(length=255), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('lapsed_places', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lapsed_places_lapsed_at'), ['lapsed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('lapsed_places', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lapsed_places_lapsed_at'))
    op.drop_table('lapsed_places')
