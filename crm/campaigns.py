"""Campaigns (trade fair, mailing, …) tag contacts; a personalised mail goes to every member from a template.

Templates use ``$placeholder`` (``string.Template``): ``$letter_salutation``, ``$salutation``, ``$title``,
``$first_name``, ``$last_name``, ``$account``. Members who opted out of marketing or have no e-mail address
get no mail. Each mail sent is recorded as an ``email_out`` activity on the contact, linked to the campaign.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .activities import ActivityInput, log_activity
from .errors import DomainError
from .salutation import letter_salutation
from .schema import account, campaign, campaign_member, contact
from .sql import insert_or_ignore

KINDS = ("trade_fair", "mailing", "webinar", "event", "other")
PLACEHOLDERS = ("letter_salutation", "salutation", "title", "first_name", "last_name", "account")


@dataclass(frozen=True)
class Mail:
    """One personalised mail, ready for the mail connector."""

    contact_id: int
    to: str
    subject: str
    body: str


def create_campaign(
    conn: Connection,
    name: str,
    kind: str,
    starts_on: date,
    ends_on: date,
    description: str | None = None,
    now: datetime | None = None,
) -> int:
    clean = v.required_text("name", name, 200)
    if ends_on < starts_on:
        raise DomainError("ends_on", "ends_on must not be before starts_on")
    if conn.execute(sa.select(campaign.c.id).where(campaign.c.name == clean)).first() is not None:
        raise DomainError("name", f"a campaign named {clean!r} already exists")
    values = {
        "name": clean,
        "kind": v.one_of("kind", kind, KINDS),
        "starts_on": starts_on,
        "ends_on": ends_on,
        "description": description,
        "created_at": v.timestamp(now),
    }
    return int(conn.execute(campaign.insert().values(**values).returning(campaign.c.id)).scalar_one())


def campaign_id_by_name(conn: Connection, name: str) -> int | None:
    found = conn.execute(sa.select(campaign.c.id).where(campaign.c.name == name)).scalar_one_or_none()
    return None if found is None else int(found)


def add_members(
    conn: Connection, campaign_id: int, contact_ids: Iterable[int], now: datetime | None = None
) -> int:
    """Tag contacts with the campaign; contacts already tagged stay as they are. Returns how many were new."""
    if conn.execute(sa.select(campaign.c.id).where(campaign.c.id == campaign_id)).first() is None:
        raise DomainError("campaign_id", f"campaign {campaign_id} does not exist")
    ids = sorted(set(contact_ids))
    known = (
        set(conn.execute(sa.select(contact.c.id).where(contact.c.id.in_(ids))).scalars()) if ids else set()
    )
    missing = [i for i in ids if i not in known]
    if missing:
        raise DomainError("contact_ids", f"contacts {missing} do not exist")
    added = v.timestamp(now)
    return sum(
        insert_or_ignore(
            conn, campaign_member, {"campaign_id": campaign_id, "contact_id": contact_id, "added_at": added}
        )
        for contact_id in ids
    )


def members(conn: Connection, campaign_id: int) -> list[sa.Row[tuple[object, ...]]]:
    """The tagged contacts with their account name, by last name."""
    query = (
        sa.select(contact, account.c.name.label("account_name"))
        .join(campaign_member, campaign_member.c.contact_id == contact.c.id)
        .outerjoin(account, account.c.id == contact.c.account_id)
        .where(campaign_member.c.campaign_id == campaign_id)
        .order_by(contact.c.last_name, contact.c.id)
    )
    return list(conn.execute(query))


def render(template: str, values: Mapping[str, str], field: str = "template") -> str:
    """Fill ``$placeholders``; an unknown placeholder or a stray ``$`` is an error naming the field."""
    try:
        return string.Template(template).substitute(values)
    except KeyError as exc:
        raise DomainError(
            field, f"unknown placeholder ${exc.args[0]} (known: {', '.join(PLACEHOLDERS)})"
        ) from exc
    except ValueError as exc:
        raise DomainError(
            field, f"{field} has a malformed placeholder ({exc}); write $$ for a dollar sign"
        ) from exc


def placeholder_values(person: sa.Row[tuple[object, ...]]) -> dict[str, str]:
    """What a template can say about a contact row (with ``account_name``)."""
    return {
        "letter_salutation": letter_salutation(
            str(person.salutation),
            person.last_name,
            person.first_name,
            person.academic_title,
            str(person.preferred_language),
        ),
        "salutation": person.salutation if person.salutation in ("Herr", "Frau") else "",
        "title": person.academic_title or "",
        "first_name": person.first_name or "",
        "last_name": str(person.last_name),
        "account": person.account_name or "",
    }


def campaign_mails(conn: Connection, campaign_id: int, subject: str, body: str) -> list[Mail]:
    """The personalised mails of a campaign; both templates are checked before anything is rendered."""
    sample = dict.fromkeys(PLACEHOLDERS, "")
    render(subject, sample, "subject")
    render(body, sample, "body")
    mails = []
    for person in members(conn, campaign_id):
        if person.marketing_opt_out or not person.email:
            continue
        values = placeholder_values(person)
        mails.append(
            Mail(
                int(person.id),
                str(person.email),
                render(subject, values, "subject"),
                render(body, values, "body"),
            )
        )
    return mails


def record_sent(
    conn: Connection, campaign_id: int, mail: Mail, author: str, now: datetime | None = None
) -> int:
    """The history record of one sent campaign mail on the contact (and so on its account)."""
    return log_activity(
        conn,
        ActivityInput(
            kind="email_out",
            subject=mail.subject,
            body=mail.body,
            author=author,
            contact_id=mail.contact_id,
            campaign_id=campaign_id,
        ),
        now=now,
    )
