"""ipam pools and allocations

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 15:04:12.197525
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ipam_pool',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('network', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('ipam_allocation',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('pool', sa.String(length=100), nullable=False),
    sa.Column('network', sa.String(length=64), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=True),
    sa.Column('allocated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['pool'], ['ipam_pool.name'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key')
    )
    with op.batch_alter_table('ipam_allocation', schema=None) as batch_op:
        batch_op.create_index('ix_ipam_allocation_pool_active', ['pool', 'released_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('ipam_allocation', schema=None) as batch_op:
        batch_op.drop_index('ix_ipam_allocation_pool_active')

    op.drop_table('ipam_allocation')
    op.drop_table('ipam_pool')
