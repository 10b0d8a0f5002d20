"""CRM tables (SQLAlchemy Core). Alembic (``migrations/versions/0006_crm.py``, ``0007_crm_lifecycle.py``)
creates them; ``tests/crm/test_schema.py`` checks that the migrations and these definitions agree.

Money is ``Numeric(12, 2)`` (Decimal, never float); timestamps are timezone-aware UTC. All tables carry a
``crm_`` prefix so they never collide with engine tables (the engine has its own "incidents" of failed jobs).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()


class UTCDateTimeType(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out on both databases.

    SQLite stores no offset, so a non-UTC value would silently be stored as wall time: values are converted to
    UTC on the way in (naive ones are refused) and come back marked as UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: CRM timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UTCDateTime = UTCDateTimeType()
Money = sa.Numeric(12, 2)
Rate = sa.Numeric(5, 2)
Quantity = sa.Numeric(12, 3)
Days = sa.Numeric(5, 1)
NameKey = sa.String(300).with_variant(sa.String(300, collation="C"), "postgresql")


def _fk(target: str, nullable: bool = False) -> sa.Column[int]:
    """Integer foreign key column named after its target table (``crm_account.id`` → ``account_id``)."""
    name = target.split(".")[0].removeprefix("crm_") + "_id"
    return sa.Column(name, sa.Integer, sa.ForeignKey(target), nullable=nullable)


def _position_columns() -> list[sa.Column[object]]:
    """Columns shared by quote, order and invoice positions: what ``crm.pricing`` needs plus the result."""
    return [
        sa.Column("line_no", sa.Integer, nullable=False),
        sa.Column("product_id", sa.Integer, sa.ForeignKey("crm_product.id"), nullable=True),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("quantity", Quantity, nullable=False),
        sa.Column("unit_price", Money, nullable=False),
        sa.Column("discount_percent", Rate, nullable=True),
        sa.Column("discount_amount", Money, nullable=True),
        sa.Column("vat_rate", Rate, nullable=False),
        sa.Column("total", Money, nullable=False),
    ]


def _totals_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("net", Money, nullable=False),
        sa.Column("vat", Money, nullable=False),
        sa.Column("gross", Money, nullable=False),
    ]


counter = sa.Table(
    "crm_counter",
    metadata,
    sa.Column("kind", sa.String(30), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)

account = sa.Table(
    "crm_account",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.String(20), nullable=False, unique=True),
    sa.Column("name", sa.String(300), nullable=False),
    # casefolded name for prefix search: a plain index range scan on both databases (byte order on PostgreSQL)
    sa.Column("name_key", NameKey, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("legal_form", sa.String(100), nullable=True),
    sa.Column("vat_id", sa.String(30), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("sla_class", sa.String(20), nullable=False),
    sa.Column("owner", sa.String(200), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_crm_account_name", "name"),
    sa.Index("ix_crm_account_name_key", "name_key"),
)

account_segment = sa.Table(
    "crm_account_segment",
    metadata,
    sa.Column("account_id", sa.Integer, sa.ForeignKey("crm_account.id"), primary_key=True),
    sa.Column("segment", sa.String(50), primary_key=True),
)

address = sa.Table(
    "crm_address",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("crm_account.id"),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("street", sa.String(200), nullable=False),
    sa.Column("postal_code", sa.String(20), nullable=False),
    sa.Column("city", sa.String(100), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Index("ix_crm_address_account", "account_id"),
)

contact = sa.Table(
    "crm_contact",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("crm_account.id", nullable=True),
    sa.Column("salutation", sa.String(10), nullable=False),
    sa.Column("academic_title", sa.String(50), nullable=True),
    sa.Column("first_name", sa.String(100), nullable=True),
    sa.Column("last_name", sa.String(100), nullable=False),
    sa.Column("role", sa.String(100), nullable=True),
    sa.Column("email", sa.String(254), nullable=True),
    sa.Column("phone", sa.String(20), nullable=True),
    sa.Column("preferred_language", sa.String(5), nullable=False),
    sa.Column("marketing_opt_out", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_crm_contact_account", "account_id"),
    sa.Index("ix_crm_contact_last_name", "last_name"),
    sa.Index("ix_crm_contact_phone", "phone"),
)
# the global search (crm.search) compares these case-insensitively by range (migration 0015)
sa.Index("ix_crm_contact_last_name_lower", sa.func.lower(contact.c.last_name))
sa.Index("ix_crm_contact_email_lower", sa.func.lower(contact.c.email))
sa.Index("ix_crm_address_city_lower", sa.func.lower(address.c.city))

product = sa.Table(
    "crm_product",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(50), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("category", sa.String(50), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("list_price", Money, nullable=False),
    sa.Column("vat_rate", Rate, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
)

product_step = sa.Table(
    "crm_product_step",
    metadata,
    sa.Column("product_id", sa.Integer, sa.ForeignKey("crm_product.id"), primary_key=True),
    sa.Column("step", sa.String(20), primary_key=True),
)

quote = sa.Table(
    "crm_quote",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.String(30), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    _fk("crm_account.id"),
    _fk("crm_contact.id", nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("valid_until", sa.Date, nullable=False),
    *_totals_columns(),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Column("decided_at", UTCDateTime, nullable=True),
    # management's approval of a discount over the limit (crm.quotes.approve_discount), for these positions
    sa.Column("discount_approved_by", sa.String(200), nullable=True),
    sa.Column("discount_approved_at", UTCDateTime, nullable=True),
    sa.Column("discount_approved_percent", sa.Numeric(5, 2), nullable=True),
    sa.UniqueConstraint("number", "version", name="uq_crm_quote_number_version"),
    sa.Index("ix_crm_quote_account", "account_id"),
)

quote_position = sa.Table(
    "crm_quote_position",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("crm_quote.id"),
    *_position_columns(),
    sa.Index("ix_crm_quote_position_quote", "quote_id"),
)

order = sa.Table(
    "crm_order",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.String(30), nullable=False, unique=True),
    _fk("crm_account.id"),
    _fk("crm_quote.id"),
    sa.Column("status", sa.String(20), nullable=False),
    *_totals_columns(),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    # where the hardware goes and the line is installed (asked in the order review; production reads it here)
    sa.Column("delivery_name", sa.String(300), nullable=True),
    sa.Column("delivery_street", sa.String(200), nullable=True),
    sa.Column("delivery_postal_code", sa.String(20), nullable=True),
    sa.Column("delivery_city", sa.String(100), nullable=True),
    sa.Column("delivery_country", sa.String(2), nullable=True),
    sa.Index("ix_crm_order_account", "account_id"),
)

order_position = sa.Table(
    "crm_order_position",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("crm_order.id"),
    *_position_columns(),
    sa.Index("ix_crm_order_position_order", "order_id"),
)

sub_order = sa.Table(
    "crm_sub_order",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("crm_order.id"),
    _fk("crm_order_position.id"),
    sa.Column("steps", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.Index("ix_crm_sub_order_order", "order_id"),
)

invoice = sa.Table(
    "crm_invoice",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.String(30), nullable=False, unique=True),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    _fk("crm_account.id"),
    _fk("crm_order.id", nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    *_totals_columns(),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("paid_at", UTCDateTime, nullable=True),
    sa.Column("reminders_sent", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_reminder_on", sa.Date, nullable=True),
    sa.UniqueConstraint("year", "sequence", name="uq_crm_invoice_year_sequence"),
    sa.Index("ix_crm_invoice_account", "account_id"),
)

invoice_position = sa.Table(
    "crm_invoice_position",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("crm_invoice.id"),
    *_position_columns(),
    sa.Index("ix_crm_invoice_position_invoice", "invoice_id"),
)

problem = sa.Table(
    "crm_problem",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("root_cause", sa.Text, nullable=True),
    sa.Column("workaround", sa.Text, nullable=True),
    sa.Column("resolution", sa.Text, nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
)

incident = sa.Table(
    "crm_incident",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.String(30), nullable=False, unique=True),
    _fk("crm_account.id", nullable=True),  # none while a mail from an unknown sender waits for triage
    _fk("crm_contact.id", nullable=True),
    _fk("crm_problem.id", nullable=True),
    _fk("crm_booked_service.id", nullable=True),
    sa.Column("origin", sa.String(20), nullable=False),
    sa.Column("category", sa.String(50), nullable=True),
    sa.Column("summary", sa.String(300), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("impact", sa.String(10), nullable=False),
    sa.Column("urgency", sa.String(10), nullable=False),
    sa.Column("priority", sa.String(2), nullable=False),
    sa.Column("assigned_group", sa.String(100), nullable=True),
    sa.Column("assignee", sa.String(200), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("response_due", UTCDateTime, nullable=False),
    sa.Column("resolution_due", UTCDateTime, nullable=False),
    sa.Column("responded_at", UTCDateTime, nullable=True),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("resolution", sa.Text, nullable=True),
    sa.Column("reporter_email", sa.String(254), nullable=True),  # who wrote in (mail intake)
    sa.Column("pending_since", UTCDateTime, nullable=True),  # the SLA clock stopped then (waiting for the customer)
    sa.Index("ix_crm_incident_status", "status"),
    sa.Index("ix_crm_incident_account_status", "account_id", "status"),
    sa.Index("ix_crm_incident_problem", "problem_id"),
)

incident_log = sa.Table(
    "crm_incident_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("crm_incident.id"),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("visibility", sa.String(10), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Index("ix_crm_incident_log_incident", "incident_id"),
)

booked_service = sa.Table(
    "crm_booked_service",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("crm_account.id"),
    _fk("crm_product.id"),
    _fk("crm_order.id", nullable=True),
    _fk("crm_order_position.id", nullable=True),
    sa.Column("quantity", Quantity, nullable=False),
    sa.Column("billing_period", sa.String(10), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("start_date", sa.Date, nullable=True),
    sa.Column("contract_end", sa.Date, nullable=True),
    sa.Column("domain_name", sa.String(253), nullable=True),
    sa.Column("ip_address", sa.String(49), nullable=True),
    sa.Column("modem_serial", sa.String(100), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("cancelled_at", UTCDateTime, nullable=True),
    sa.Index("ix_crm_booked_service_account", "account_id"),
    sa.Index("ix_crm_booked_service_order", "order_id"),
)

campaign = sa.Table(
    "crm_campaign",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("starts_on", sa.Date, nullable=False),
    sa.Column("ends_on", sa.Date, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

campaign_member = sa.Table(
    "crm_campaign_member",
    metadata,
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("crm_campaign.id"), primary_key=True),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("crm_contact.id"), primary_key=True),
    sa.Column("added_at", UTCDateTime, nullable=False),
    sa.Index("ix_crm_campaign_member_contact", "contact_id"),
)

opportunity = sa.Table(
    "crm_opportunity",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("crm_account.id"),
    _fk("crm_contact.id", nullable=True),
    _fk("crm_product.id", nullable=True),
    _fk("crm_campaign.id", nullable=True),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("expected_revenue", Money, nullable=False),
    sa.Column("probability", sa.Integer, nullable=False),
    sa.Column("expected_close", sa.Date, nullable=False),
    sa.Column("stage", sa.String(20), nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("owner", sa.String(200), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    # covering index: the pipeline sum per stage reads only the index
    sa.Index("ix_crm_opportunity_pipeline", "stage", "expected_close", "expected_revenue", "probability"),
    sa.Index("ix_crm_opportunity_account", "account_id"),
)

activity = sa.Table(
    "crm_activity",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("crm_account.id", nullable=True),
    _fk("crm_contact.id", nullable=True),
    _fk("crm_campaign.id", nullable=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("body", sa.Text, nullable=True),
    # the timeline of a customer or person: newest first through the index
    sa.Index("ix_crm_activity_account_time", "account_id", "occurred_at"),
    sa.Index("ix_crm_activity_contact_time", "contact_id", "occurred_at"),
)

appointment = sa.Table(
    "crm_appointment",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("crm_account.id", nullable=True),
    _fk("crm_contact.id", nullable=True),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime, nullable=False),
    sa.Column("place", sa.String(300), nullable=True),
    sa.Column("topic", sa.String(300), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

appointment_participant = sa.Table(
    "crm_appointment_participant",
    metadata,
    sa.Column("appointment_id", sa.Integer, sa.ForeignKey("crm_appointment.id"), primary_key=True),
    sa.Column("participant", sa.String(200), primary_key=True),
    sa.Index("ix_crm_appointment_participant", "participant"),
)

contract = sa.Table(
    "crm_contract",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.String(30), nullable=False, unique=True),
    _fk("crm_account.id"),
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("term_months", sa.Integer, nullable=False),
    sa.Column("notice_months", sa.Integer, nullable=False),
    sa.Column("auto_renewal", sa.Boolean, nullable=False),
    sa.Column("renewal_months", sa.Integer, nullable=False),
    sa.Column("end_date", sa.Date, nullable=False),
    sa.Column("notice_deadline", sa.Date, nullable=False),
    sa.Column("reminder_date", sa.Date, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reminded_on", sa.Date, nullable=True),
    sa.Column("notice_received_on", sa.Date, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_crm_contract_account", "account_id"),
    sa.Index("ix_crm_contract_reminder", "status", "reminder_date"),
)

contract_service = sa.Table(
    "crm_contract_service",
    metadata,
    sa.Column("contract_id", sa.Integer, sa.ForeignKey("crm_contract.id"), primary_key=True),
    sa.Column("booked_service_id", sa.Integer, sa.ForeignKey("crm_booked_service.id"), primary_key=True),
)

document = sa.Table(
    "crm_document",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("crm_account.id", nullable=True),  # none for internal papers such as expense receipts
    _fk("crm_quote.id", nullable=True),
    _fk("crm_order.id", nullable=True),
    _fk("crm_invoice.id", nullable=True),
    _fk("crm_activity.id", nullable=True),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("mime_type", sa.String(100), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("uploaded_by", sa.String(200), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_crm_document_account", "account_id"),
    sa.Index("ix_crm_document_sha256", "sha256"),
)


def _approval_columns() -> list[sa.Column[Any]]:
    """Who asked, the state of the approval workflow, and who decided when (staff requests)."""
    return [
        sa.Column("employee", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("submitted_at", UTCDateTime, nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", UTCDateTime, nullable=True),
    ]


time_entry = sa.Table(
    "crm_time_entry",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    *_approval_columns(),
    sa.Column("work_date", sa.Date, nullable=False),
    sa.Column("project", sa.String(100), nullable=False),
    sa.Column("hours", sa.Numeric(4, 2), nullable=False),
    sa.Column("description", sa.String(500), nullable=True),
    sa.Index("ix_crm_time_entry_employee_date", "employee", "work_date"),
)

expense_claim = sa.Table(
    "crm_expense_claim",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    *_approval_columns(),
    sa.Column("purpose", sa.String(300), nullable=False),
    sa.Column("trip_start", sa.Date, nullable=False),
    sa.Column("trip_end", sa.Date, nullable=False),
    sa.Column("total", Money, nullable=False),
    sa.Index("ix_crm_expense_claim_employee", "employee"),
)

expense_item = sa.Table(
    "crm_expense_item",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("crm_expense_claim.id"),
    sa.Column("line_no", sa.Integer, nullable=False),
    sa.Column("category", sa.String(20), nullable=False),
    sa.Column("description", sa.String(300), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("receipt_document_id", sa.Integer, sa.ForeignKey("crm_document.id"), nullable=True),
    sa.Index("ix_crm_expense_item_claim", "expense_claim_id"),
)

vacation_entitlement = sa.Table(
    "crm_vacation_entitlement",
    metadata,
    sa.Column("employee", sa.String(200), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("days", Days, nullable=False),
)

vacation_request = sa.Table(
    "crm_vacation_request",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    *_approval_columns(),
    sa.Column("first_day", sa.Date, nullable=False),
    sa.Column("last_day", sa.Date, nullable=False),
    sa.Column("days", Days, nullable=False),
    sa.Index("ix_crm_vacation_request_employee", "employee", "first_day"),
)

sick_note = sa.Table(
    "crm_sick_note",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    *_approval_columns(),
    sa.Column("first_day", sa.Date, nullable=False),
    sa.Column("last_day", sa.Date, nullable=False),
    sa.Column("certificate_document_id", sa.Integer, sa.ForeignKey("crm_document.id"), nullable=True),
    sa.Index("ix_crm_sick_note_employee", "employee", "first_day"),
)
