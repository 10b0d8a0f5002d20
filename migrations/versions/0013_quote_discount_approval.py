"""quote discount approval: who in management approved a discount over the limit, when and up to which percent,
recorded on the quote by the process step (crm.quotes.approve_discount) that sending and ordering check

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-09 15:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('crm_quote', schema=None) as batch_op:
        batch_op.add_column(sa.Column('discount_approved_by', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('discount_approved_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('discount_approved_percent', sa.Numeric(5, 2), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('crm_quote', schema=None) as batch_op:
        for column in ('discount_approved_percent', 'discount_approved_at', 'discount_approved_by'):
            batch_op.drop_column(column)
