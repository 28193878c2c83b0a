"""request records

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 02:22:45.234674
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('request_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('api_key_name', sa.String(length=64), nullable=False),
    sa.Column('idem_key', sa.String(length=160), nullable=False),
    sa.Column('endpoint', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_body', sa.JSON(), nullable=True),
    sa.Column('plan', sa.JSON(), nullable=True),
    sa.Column('reserved_day', sa.Date(), nullable=True),
    sa.Column('attempt_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('api_key_name', 'idem_key', name='uq_request_records_key')
    )
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_records_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_request_records_updated_at'), ['updated_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('request_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_records_updated_at'))
        batch_op.drop_index(batch_op.f('ix_request_records_expires_at'))

    op.drop_table('request_records')
