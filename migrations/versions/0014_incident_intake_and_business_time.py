"""incidents from mail and business time: an incident from an unknown sender has no account yet (triage) but the
sender's address (reporter_email); pending_since holds when the clock stopped for a pending incident

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 22:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('crm_incident', schema=None) as batch_op:
        batch_op.alter_column('account_id', existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column('reporter_email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('pending_since', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('crm_incident', schema=None) as batch_op:
        batch_op.drop_column('pending_since')
        batch_op.drop_column('reporter_email')
        batch_op.alter_column('account_id', existing_type=sa.Integer(), nullable=False)
