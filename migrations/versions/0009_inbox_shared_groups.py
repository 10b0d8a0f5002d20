"""inbox shared groups: flag the group rows of tasks offered to several groups (an inbox total without DISTINCT);
the due-date inbox index ends with the id, the sort's tie-break, so a page needs no sort; the assignee index holds
the candidate groups, so a clerk's count of the unassigned or of their own tasks is index-only

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 17:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user_task', schema=None) as batch_op:
        batch_op.drop_index('ix_user_task_state_due')
        batch_op.create_index('ix_user_task_state_due', ['state', 'due_at', 'id'], unique=False)
        batch_op.drop_index('ix_user_task_state_assignee')
        batch_op.create_index('ix_user_task_state_assignee', ['state', 'assignee', 'candidate_groups'], unique=False)

    with op.batch_alter_table('user_task_group', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shared', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.drop_index('ix_user_task_group_inbox')
        batch_op.create_index('ix_user_task_group_inbox', ['group_name', 'state', 'shared', 'task_id'], unique=False)
    op.execute("UPDATE user_task_group SET shared = true WHERE task_id IN "
               "(SELECT task_id FROM user_task_group GROUP BY task_id HAVING count(*) > 1)")


def downgrade() -> None:
    with op.batch_alter_table('user_task_group', schema=None) as batch_op:
        batch_op.drop_index('ix_user_task_group_inbox')
        batch_op.create_index('ix_user_task_group_inbox', ['group_name', 'state', 'task_id'], unique=False)
        batch_op.drop_column('shared')

    with op.batch_alter_table('user_task', schema=None) as batch_op:
        batch_op.drop_index('ix_user_task_state_due')
        batch_op.create_index('ix_user_task_state_due', ['state', 'due_at'], unique=False)
        batch_op.drop_index('ix_user_task_state_assignee')
        batch_op.create_index('ix_user_task_state_assignee', ['state', 'assignee'], unique=False)
