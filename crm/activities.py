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


def _subject(value: object) -> str:
    return v.required_text("subject", value, 300)


def _body(value: object) -> str | None:
    """The text as written (line breaks and spacing are part of a note); no length limit beyond the column."""
    if value is not None and not isinstance(value, str):
        raise DomainError("body", f"body must be text, got {value!r}")
    return value


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
        v.reference(conn, account, account_id, "account_id")
    if data.campaign_id is not None:
        v.reference(conn, campaign, data.campaign_id, "campaign_id")
    values = {
        "account_id": account_id,
        "contact_id": data.contact_id,
        "campaign_id": data.campaign_id,
        "kind": v.one_of("kind", data.kind, KINDS),
        "subject": _subject(data.subject),
        "author": v.required_text("author", data.author, 200),
        "body": _body(data.body),
        "occurred_at": v.timestamp(now)
        if data.occurred_at is None
        else v.aware("occurred_at", data.occurred_at),
    }
    return int(conn.execute(activity.insert().values(**values).returning(activity.c.id)).scalar_one())


_UPDATABLE = ("subject", "body", "campaign_id")


def update_activity(conn: Connection, activity_id: int, **changes: object) -> None:
    """Correct what a contact moment says or which campaign it belongs to (the PATCH of the REST layer), checked
    as on creation; who recorded it, when it happened and with whom stay: that is the history."""
    v.reference(conn, activity, activity_id, "activity_id")
    v.changeable(changes, _UPDATABLE)
    values: dict[str, object] = {}
    if "subject" in changes:
        values["subject"] = _subject(changes["subject"])
    if "body" in changes:
        values["body"] = _body(changes["body"])
    if "campaign_id" in changes:
        values["campaign_id"] = v.reference(conn, campaign, changes["campaign_id"], "campaign_id")
    if values:
        conn.execute(activity.update().where(activity.c.id == activity_id).values(**values))


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
