"""Activities: the communication history of a contact and an account (calls, visits, mails, letters, notes).

An activity about a contact of an account is also filed on that account, so the customer's timeline shows
everything said with any of its people. Attachments are documents linked to the activity (``crm.documents``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .errors import DomainError
from .schema import account, activity, campaign, contact

KINDS = ("call", "visit", "meeting", "email_in", "email_out", "letter_in", "letter_out", "note")
TIMELINE_MAX = 500


@dataclass(frozen=True)
class ActivityInput:
    kind: str
    subject: str
    author: str
    body: str | None = None
    account_id: int | None = None
    contact_id: int | None = None
    campaign_id: int | None = None
    occurred_at: datetime | None = None


def _exists(conn: Connection, table: sa.Table, row_id: int, field: str) -> None:
    if conn.execute(sa.select(table.c.id).where(table.c.id == row_id)).first() is None:
        raise DomainError(field, f"{field} {row_id} does not exist")


def log_activity(conn: Connection, data: ActivityInput, now: datetime | None = None) -> int:
    """Record one contact moment; it needs a contact or an account and happens now unless ``occurred_at``."""
    account_id = data.account_id
    if data.contact_id is not None:
        person = conn.execute(
            sa.select(contact.c.account_id).where(contact.c.id == data.contact_id)
        ).one_or_none()
        if person is None:
            raise DomainError("contact_id", f"contact_id {data.contact_id} does not exist")
        if account_id is None:
            account_id = person.account_id
        elif person.account_id not in (None, account_id):
            raise DomainError("contact_id", f"contact {data.contact_id} belongs to another account")
    if account_id is None and data.contact_id is None:
        raise DomainError("account_id", "an activity needs an account or a contact")
    if account_id is not None:
        _exists(conn, account, account_id, "account_id")
    if data.campaign_id is not None:
        _exists(conn, campaign, data.campaign_id, "campaign_id")
    values = {
        "account_id": account_id,
        "contact_id": data.contact_id,
        "campaign_id": data.campaign_id,
        "kind": v.one_of("kind", data.kind, KINDS),
        "subject": v.required_text("subject", data.subject, 300),
        "author": v.required_text("author", data.author, 200),
        "body": data.body,
        "occurred_at": v.timestamp(now)
        if data.occurred_at is None
        else v.aware("occurred_at", data.occurred_at),
    }
    return int(conn.execute(activity.insert().values(**values).returning(activity.c.id)).scalar_one())


def timeline(
    conn: Connection, *, account_id: int | None = None, contact_id: int | None = None, limit: int = 50
) -> list[sa.Row[tuple[object, ...]]]:
    """The newest ``limit`` activities of an account or a contact (an index range read, newest first)."""
    if (account_id is None) == (contact_id is None):
        raise DomainError("account_id", "give either account_id or contact_id")
    if not 1 <= limit <= TIMELINE_MAX:
        raise DomainError("limit", f"limit must be between 1 and {TIMELINE_MAX}")
    column, value = (
        (activity.c.account_id, account_id) if account_id is not None else (activity.c.contact_id, contact_id)
    )
    query = (
        sa.select(activity)
        .where(column == value)
        .order_by(activity.c.occurred_at.desc(), activity.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(query))
