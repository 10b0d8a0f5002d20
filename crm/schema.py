"""CRM tables (SQLAlchemy Core). Alembic (``migrations/versions/0006_crm.py``) creates them; tests compare both.

Money is ``Numeric(12, 2)`` (Decimal, never float); timestamps are timezone-aware UTC. All tables carry a
``crm_`` prefix so they never collide with engine tables (the engine has its own "incidents" of failed jobs).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

UTCDateTime = sa.DateTime(timezone=True)
Money = sa.Numeric(12, 2)
Rate = sa.Numeric(5, 2)
Quantity = sa.Numeric(12, 3)


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
    sa.Column("legal_form", sa.String(100), nullable=True),
    sa.Column("vat_id", sa.String(30), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("sla_class", sa.String(20), nullable=False),
    sa.Column("owner", sa.String(200), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_crm_account_name", "name"),
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
)

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
    _fk("crm_account.id"),
    _fk("crm_contact.id", nullable=True),
    _fk("crm_problem.id", nullable=True),
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
    sa.Index("ix_crm_incident_status", "status"),
    sa.Index("ix_crm_incident_account", "account_id"),
    sa.Index("ix_crm_incident_problem", "problem_id"),
)
