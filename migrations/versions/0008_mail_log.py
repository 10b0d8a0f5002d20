"""mail log: the messages the mail connector has sent, by idempotency key (a retried job sends no second mail)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 10:12:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mail_log',
    sa.Column('idempotency_key', sa.String(length=250), nullable=False),
    sa.Column('message_id', sa.String(length=300), nullable=False),
    sa.Column('template', sa.String(length=100), nullable=False),
    sa.Column('recipients', sa.Text(), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('attachments', sa.Text(), nullable=True),
    sa.Column('activity_id', sa.Integer(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('idempotency_key')
    )


def downgrade() -> None:
    op.drop_table('mail_log')
