"""inbox indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 14:42:11.452867
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user_task', schema=None) as batch_op:
        batch_op.create_index('ix_user_task_state_created', ['state', 'created_at', 'id'], unique=False)

    with op.batch_alter_table('user_task_group', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.String(length=20), server_default='open', nullable=False))
        batch_op.drop_index(batch_op.f('ix_user_task_group_group'))
        batch_op.create_index('ix_user_task_group_inbox', ['group_name', 'state', 'task_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('user_task_group', schema=None) as batch_op:
        batch_op.drop_index('ix_user_task_group_inbox')
        batch_op.create_index(batch_op.f('ix_user_task_group_group'), ['group_name'], unique=False)
        batch_op.drop_column('state')

    with op.batch_alter_table('user_task', schema=None) as batch_op:
        batch_op.drop_index('ix_user_task_state_created')

