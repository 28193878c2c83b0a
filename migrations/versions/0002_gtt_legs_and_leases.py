"""gtt legs and leases

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 02:12:57.504751
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('gtt_legs',
    sa.Column('broker_id', sa.String(length=64), nullable=False),
    sa.Column('trigger_id', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('broker_id')
    )
    with op.batch_alter_table('gtt_legs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gtt_legs_trigger_id'), ['trigger_id'], unique=False)

    op.create_table('leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('leases')
    with op.batch_alter_table('gtt_legs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gtt_legs_trigger_id'))

    op.drop_table('gtt_legs')
