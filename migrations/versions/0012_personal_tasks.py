"""personal tasks: a user task the model gives to one person (assignee="${employee}") is marked personal, and the
people who may not work on it (the requester of an approval) are kept with it, so claim, assign, complete and the
inbox refuse or hide it without loading the instance (engine/assignment.py)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-09 12:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('personal', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('excluded_users', sa.String(length=1000), nullable=True))


def downgrade() -> None:
    # a plain ALTER TABLE … DROP COLUMN (SQLite >= 3.35): a batch copy of user_task would trip the foreign key
    # that user_task_group holds on it
    op.drop_column('user_task', 'excluded_users')
    op.drop_column('user_task', 'personal')
