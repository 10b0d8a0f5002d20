"""crm lifecycle: booked services, incident log, opportunities, campaigns, activities, appointments,
contracts, documents, staff requests; account kind and search key, invoice reminders

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 15:26:18.151590
"""
from alembic import op
import sqlalchemy as sa


def _name_key_type() -> sa.types.TypeEngine:
    """Byte-order collation on PostgreSQL, so a prefix is one index range scan (as on SQLite)."""
    return sa.String(length=300).with_variant(sa.String(length=300, collation='C'), 'postgresql')


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('crm_campaign',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('crm_expense_claim',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('employee', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('purpose', sa.String(length=300), nullable=False),
    sa.Column('trip_start', sa.Date(), nullable=False),
    sa.Column('trip_end', sa.Date(), nullable=False),
    sa.Column('total', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('crm_expense_claim', schema=None) as batch_op:
        batch_op.create_index('ix_crm_expense_claim_employee', ['employee'], unique=False)

    op.create_table('crm_time_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('employee', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('work_date', sa.Date(), nullable=False),
    sa.Column('project', sa.String(length=100), nullable=False),
    sa.Column('hours', sa.Numeric(precision=4, scale=2), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('crm_time_entry', schema=None) as batch_op:
        batch_op.create_index('ix_crm_time_entry_employee_date', ['employee', 'work_date'], unique=False)

    op.create_table('crm_vacation_entitlement',
    sa.Column('employee', sa.String(length=200), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('days', sa.Numeric(precision=5, scale=1), nullable=False),
    sa.PrimaryKeyConstraint('employee', 'year')
    )
    op.create_table('crm_vacation_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('employee', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('days', sa.Numeric(precision=5, scale=1), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('crm_vacation_request', schema=None) as batch_op:
        batch_op.create_index('ix_crm_vacation_request_employee', ['employee', 'first_day'], unique=False)

    op.create_table('crm_contract',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=30), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('term_months', sa.Integer(), nullable=False),
    sa.Column('notice_months', sa.Integer(), nullable=False),
    sa.Column('auto_renewal', sa.Boolean(), nullable=False),
    sa.Column('renewal_months', sa.Integer(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('notice_deadline', sa.Date(), nullable=False),
    sa.Column('reminder_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reminded_on', sa.Date(), nullable=True),
    sa.Column('notice_received_on', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['crm_account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    with op.batch_alter_table('crm_contract', schema=None) as batch_op:
        batch_op.create_index('ix_crm_contract_account', ['account_id'], unique=False)
        batch_op.create_index('ix_crm_contract_reminder', ['status', 'reminder_date'], unique=False)

    op.create_table('crm_activity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['crm_account.id'], ),
    sa.ForeignKeyConstraint(['campaign_id'], ['crm_campaign.id'], ),
    sa.ForeignKeyConstraint(['contact_id'], ['crm_contact.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('crm_activity', schema=None) as batch_op:
        batch_op.create_index('ix_crm_activity_account_time', ['account_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_crm_activity_contact_time', ['contact_id', 'occurred_at'], unique=False)

    op.create_table('crm_appointment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('place', sa.String(length=300), nullable=True),
    sa.Column('topic', sa.String(length=300), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['crm_account.id'], ),
    sa.ForeignKeyConstraint(['contact_id'], ['crm_contact.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('crm_campaign_member',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['crm_campaign.id'], ),
    sa.ForeignKeyConstraint(['contact_id'], ['crm_contact.id'], ),
    sa.PrimaryKeyConstraint('campaign_id', 'contact_id')
    )
    with op.batch_alter_table('crm_campaign_member', schema=None) as batch_op:
        batch_op.create_index('ix_crm_campaign_member_contact', ['contact_id'], unique=False)

    op.create_table('crm_opportunity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('expected_revenue', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('probability', sa.Integer(), nullable=False),
    sa.Column('expected_close', sa.Date(), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['crm_account.id'], ),
    sa.ForeignKeyConstraint(['campaign_id'], ['crm_campaign.id'], ),
    sa.ForeignKeyConstraint(['contact_id'], ['crm_contact.id'], ),
    sa.ForeignKeyConstraint(['product_id'], ['crm_product.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('crm_opportunity', schema=None) as batch_op:
        batch_op.create_index('ix_crm_opportunity_account', ['account_id'], unique=False)
        batch_op.create_index('ix_crm_opportunity_pipeline', ['stage', 'expected_close', 'expected_revenue', 'probability'], unique=False)

    op.create_table('crm_appointment_participant',
    sa.Column('appointment_id', sa.Integer(), nullable=False),
    sa.Column('participant', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['appointment_id'], ['crm_appointment.id'], ),
    sa.PrimaryKeyConstraint('appointment_id', 'participant')
    )
    with op.batch_alter_table('crm_appointment_participant', schema=None) as batch_op:
        batch_op.create_index('ix_crm_appointment_participant', ['participant'], unique=False)

    op.create_table('crm_booked_service',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('order_position_id', sa.Integer(), nullable=True),
    sa.Column('quantity', sa.Numeric(precision=12, scale=3), nullable=False),
    sa.Column('billing_period', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=True),
    sa.Column('contract_end', sa.Date(), nullable=True),
    sa.Column('domain_name', sa.String(length=253), nullable=True),
    sa.Column('ip_address', sa.String(length=49), nullable=True),
    sa.Column('modem_serial', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['crm_account.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['crm_order.id'], ),
    sa.ForeignKeyConstraint(['order_position_id'], ['crm_order_position.id'], ),
    sa.ForeignKeyConstraint(['product_id'], ['crm_product.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('crm_booked_service', schema=None) as batch_op:
        batch_op.create_index('ix_crm_booked_service_account', ['account_id'], unique=False)
        batch_op.create_index('ix_crm_booked_service_order', ['order_id'], unique=False)

    op.create_table('crm_document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('quote_id', sa.Integer(), nullable=True),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('activity_id', sa.Integer(), nullable=True),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('mime_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['crm_account.id'], ),
    sa.ForeignKeyConstraint(['activity_id'], ['crm_activity.id'], ),
    sa.ForeignKeyConstraint(['invoice_id'], ['crm_invoice.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['crm_order.id'], ),
    sa.ForeignKeyConstraint(['quote_id'], ['crm_quote.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('crm_document', schema=None) as batch_op:
        batch_op.create_index('ix_crm_document_account', ['account_id'], unique=False)
        batch_op.create_index('ix_crm_document_sha256', ['sha256'], unique=False)

    op.create_table('crm_contract_service',
    sa.Column('contract_id', sa.Integer(), nullable=False),
    sa.Column('booked_service_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['booked_service_id'], ['crm_booked_service.id'], ),
    sa.ForeignKeyConstraint(['contract_id'], ['crm_contract.id'], ),
    sa.PrimaryKeyConstraint('contract_id', 'booked_service_id')
    )
    op.create_table('crm_expense_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('expense_claim_id', sa.Integer(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('receipt_document_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['expense_claim_id'], ['crm_expense_claim.id'], ),
    sa.ForeignKeyConstraint(['receipt_document_id'], ['crm_document.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('crm_expense_item', schema=None) as batch_op:
        batch_op.create_index('ix_crm_expense_item_claim', ['expense_claim_id'], unique=False)

    op.create_table('crm_sick_note',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('employee', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('certificate_document_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['certificate_document_id'], ['crm_document.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('crm_sick_note', schema=None) as batch_op:
        batch_op.create_index('ix_crm_sick_note_employee', ['employee', 'first_day'], unique=False)

    op.create_table('crm_incident_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('visibility', sa.String(length=10), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['crm_incident.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('crm_incident_log', schema=None) as batch_op:
        batch_op.create_index('ix_crm_incident_log_incident', ['incident_id'], unique=False)

    # Existing accounts: add the columns nullable, fill them (casefold is Python's, as in crm.accounts),
    # then make them NOT NULL.
    with op.batch_alter_table('crm_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_key', _name_key_type(), nullable=True))
        batch_op.add_column(sa.Column('kind', sa.String(length=20), nullable=True))
    bind = op.get_bind()
    accounts = sa.table('crm_account', sa.column('id', sa.Integer), sa.column('name', sa.String),
                        sa.column('name_key', sa.String), sa.column('kind', sa.String))
    for account_id, name in bind.execute(sa.select(accounts.c.id, accounts.c.name)).all():
        bind.execute(accounts.update().where(accounts.c.id == account_id)
                     .values(name_key=' '.join(name.casefold().split()), kind='business'))
    with op.batch_alter_table('crm_account', schema=None) as batch_op:
        batch_op.alter_column('name_key', existing_type=_name_key_type(), nullable=False)
        batch_op.alter_column('kind', existing_type=sa.String(length=20), nullable=False)
        batch_op.create_index('ix_crm_account_name_key', ['name_key'], unique=False)

    with op.batch_alter_table('crm_incident', schema=None) as batch_op:
        batch_op.add_column(sa.Column('booked_service_id', sa.Integer(), nullable=True))
        batch_op.drop_index('ix_crm_incident_account')
        batch_op.create_index('ix_crm_incident_account_status', ['account_id', 'status'], unique=False)
        batch_op.create_foreign_key('fk_crm_incident_booked_service', 'crm_booked_service',
                                    ['booked_service_id'], ['id'])

    with op.batch_alter_table('crm_invoice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reminders_sent', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_reminder_on', sa.Date(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('crm_invoice', schema=None) as batch_op:
        batch_op.drop_column('last_reminder_on')
        batch_op.drop_column('reminders_sent')

    with op.batch_alter_table('crm_incident', schema=None) as batch_op:
        batch_op.drop_constraint('fk_crm_incident_booked_service', type_='foreignkey')
        batch_op.drop_index('ix_crm_incident_account_status')
        batch_op.create_index('ix_crm_incident_account', ['account_id'], unique=False)
        batch_op.drop_column('booked_service_id')

    with op.batch_alter_table('crm_account', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_account_name_key')
        batch_op.drop_column('kind')
        batch_op.drop_column('name_key')

    with op.batch_alter_table('crm_incident_log', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_incident_log_incident')

    op.drop_table('crm_incident_log')
    with op.batch_alter_table('crm_sick_note', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_sick_note_employee')

    op.drop_table('crm_sick_note')
    with op.batch_alter_table('crm_expense_item', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_expense_item_claim')

    op.drop_table('crm_expense_item')
    op.drop_table('crm_contract_service')
    with op.batch_alter_table('crm_document', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_document_sha256')
        batch_op.drop_index('ix_crm_document_account')

    op.drop_table('crm_document')
    with op.batch_alter_table('crm_booked_service', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_booked_service_order')
        batch_op.drop_index('ix_crm_booked_service_account')

    op.drop_table('crm_booked_service')
    with op.batch_alter_table('crm_appointment_participant', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_appointment_participant')

    op.drop_table('crm_appointment_participant')
    with op.batch_alter_table('crm_opportunity', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_opportunity_pipeline')
        batch_op.drop_index('ix_crm_opportunity_account')

    op.drop_table('crm_opportunity')
    with op.batch_alter_table('crm_campaign_member', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_campaign_member_contact')

    op.drop_table('crm_campaign_member')
    op.drop_table('crm_appointment')
    with op.batch_alter_table('crm_activity', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_activity_contact_time')
        batch_op.drop_index('ix_crm_activity_account_time')

    op.drop_table('crm_activity')
    with op.batch_alter_table('crm_contract', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_contract_reminder')
        batch_op.drop_index('ix_crm_contract_account')

    op.drop_table('crm_contract')
    with op.batch_alter_table('crm_vacation_request', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_vacation_request_employee')

    op.drop_table('crm_vacation_request')
    op.drop_table('crm_vacation_entitlement')
    with op.batch_alter_table('crm_time_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_time_entry_employee_date')

    op.drop_table('crm_time_entry')
    with op.batch_alter_table('crm_expense_claim', schema=None) as batch_op:
        batch_op.drop_index('ix_crm_expense_claim_employee')

    op.drop_table('crm_expense_claim')
    op.drop_table('crm_campaign')
