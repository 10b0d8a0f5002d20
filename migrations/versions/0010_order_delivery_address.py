"""order delivery address: where the hardware goes and the line is installed, asked in the order review and read
by production (the supplier order), instead of a process variable no start path sets

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('crm_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery_name', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('delivery_street', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('delivery_postal_code', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('delivery_city', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('delivery_country', sa.String(length=2), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('crm_order', schema=None) as batch_op:
        for column in ('delivery_country', 'delivery_city', 'delivery_postal_code', 'delivery_street',
                       'delivery_name'):
            batch_op.drop_column(column)
