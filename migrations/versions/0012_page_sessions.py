"""page sessions: the trader's page (api/dashboard) signs a browser in with an API key

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 18:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('page_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('api_key_id', sa.Integer(), nullable=False),
    sa.Column('api_key_name', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_index('ix_page_sessions_expires_at', 'page_sessions', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_page_sessions_expires_at', table_name='page_sessions')
    op.drop_table('page_sessions')
