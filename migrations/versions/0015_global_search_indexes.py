"""global search indexes: contacts by lower(last_name), lower(email) and phone (E.164), addresses by lower(city);
crm.search compares them by range, so a search is an index range scan on SQLite and PostgreSQL

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 22:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_crm_contact_phone', 'crm_contact', ['phone'])
    op.create_index('ix_crm_contact_last_name_lower', 'crm_contact', [sa.text('lower(last_name)')])
    op.create_index('ix_crm_contact_email_lower', 'crm_contact', [sa.text('lower(email)')])
    op.create_index('ix_crm_address_city_lower', 'crm_address', [sa.text('lower(city)')])


def downgrade() -> None:
    op.drop_index('ix_crm_address_city_lower', table_name='crm_address')
    op.drop_index('ix_crm_contact_email_lower', table_name='crm_contact')
    op.drop_index('ix_crm_contact_last_name_lower', table_name='crm_contact')
    op.drop_index('ix_crm_contact_phone', table_name='crm_contact')
