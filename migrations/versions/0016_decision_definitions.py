"""decision definitions: DMN decisions deployed beside BPMN files (key = decision id, version, checksum), and the
decision versions each process version was parsed with (process_definition.decision_versions, JSON)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'decision_definition',
        sa.Column('id', sa.String(36), primary_key=True),
        sa.Column('deployment_id', sa.String(36), sa.ForeignKey('deployment.id'), nullable=False),
        sa.Column('key', sa.String(200), nullable=False),
        sa.Column('version', sa.Integer, nullable=False),
        sa.Column('name', sa.String(500), nullable=True),
        sa.Column('file_name', sa.String(500), nullable=True),
        sa.Column('checksum', sa.String(64), nullable=False),
        sa.Column('dmn_xml', sa.Text, nullable=False),
        sa.Column('deployed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('deployed_by', sa.String(200), nullable=True),
        sa.UniqueConstraint('key', 'version', name='uq_decision_definition_key_version'),
    )
    op.add_column('process_definition', sa.Column('decision_versions', sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column('process_definition', 'decision_versions')
    op.drop_table('decision_definition')
