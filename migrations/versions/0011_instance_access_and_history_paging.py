"""instance access and history paging: process definitions carry a confidential flag (HR processes are need-to-know;
the shipped sick-note, vacation-request, time-sheet and travel-expenses are marked, also their older versions);
indexes to find the instances a person or group is concerned with (started by, task held or completed by); an index
that reads an instance's completed elements without every history row

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 12:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

CONFIDENTIAL_KEYS = ('sick-note', 'vacation-request', 'time-sheet', 'travel-expenses')


def upgrade() -> None:
    with op.batch_alter_table('process_definition', schema=None) as batch_op:
        batch_op.add_column(sa.Column('confidential', sa.Boolean(), server_default=sa.false(), nullable=False))
    definitions = sa.table('process_definition', sa.column('key', sa.String), sa.column('confidential', sa.Boolean))
    op.execute(definitions.update().where(definitions.c.key.in_(CONFIDENTIAL_KEYS)).values(confidential=True))

    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.create_index('ix_process_instance_started_by', ['started_by'], unique=False)

    with op.batch_alter_table('user_task', schema=None) as batch_op:
        batch_op.create_index('ix_user_task_assignee_instance', ['assignee', 'instance_id'], unique=False)
        batch_op.create_index('ix_user_task_completed_by_instance', ['completed_by', 'instance_id'], unique=False)

    with op.batch_alter_table('history_event', schema=None) as batch_op:
        batch_op.create_index('ix_history_event_instance_type', ['instance_id', 'type', 'element_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('history_event', schema=None) as batch_op:
        batch_op.drop_index('ix_history_event_instance_type')

    with op.batch_alter_table('user_task', schema=None) as batch_op:
        batch_op.drop_index('ix_user_task_completed_by_instance')
        batch_op.drop_index('ix_user_task_assignee_instance')

    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.drop_index('ix_process_instance_started_by')

    # a plain DROP COLUMN (SQLite >= 3.35 has it): batch mode would copy process_definition, and dropping the
    # old table breaks the foreign keys of process_instance on SQLite
    op.drop_column('process_definition', 'confidential')
