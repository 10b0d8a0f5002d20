"""Campaigns (trade fair, mailing, …) tag contacts; a personalised mail goes to every member from a template.

Templates use ``$placeholder`` (``string.Template``): ``$letter_salutation``, ``$salutation``, ``$title``,
``$first_name``, ``$last_name``, ``$account``. Members who opted out of marketing or have no e-mail address
get no mail. Each mail sent is recorded as an ``email_out`` activity on the contact, linked to the campaign.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .accounts import ACCOUNT_TRANSITIONS
from .activities import ActivityInput, log_activity
from .csv_text import BOM, to_csv
from .errors import DomainError
from .salutation import letter_salutation
from .schema import account, account_segment, activity, campaign, campaign_member, contact
from .sql import insert_or_ignore

KINDS = ("trade_fair", "mailing", "webinar", "event", "other")
ACCOUNT_STATUSES = tuple(ACCOUNT_TRANSITIONS)
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
    clean = _unique_name(conn, name)
    _period(starts_on, ends_on)
    values = {
        "name": clean,
        "kind": v.one_of("kind", kind, KINDS),
        "starts_on": starts_on,
        "ends_on": ends_on,
        "description": v.optional_text("description", description, 20000),
        "created_at": v.timestamp(now),
    }
    return int(conn.execute(campaign.insert().values(**values).returning(campaign.c.id)).scalar_one())


def _unique_name(conn: Connection, name: object, campaign_id: int | None = None) -> str:
    """Campaigns are known by name (the mailing's sender line, the UI's pick list): no two share one."""
    clean = v.required_text("name", name, 200)
    other = campaign_id_by_name(conn, clean)
    if other is not None and other != campaign_id:
        raise DomainError("name", f"a campaign named {clean!r} already exists")
    return clean


def _period(starts_on: object, ends_on: object) -> tuple[date, date]:
    first, last = v.day("starts_on", starts_on), v.day("ends_on", ends_on)
    if last < first:
        raise DomainError("ends_on", "ends_on must not be before starts_on")
    return first, last


_UPDATABLE = ("name", "kind", "starts_on", "ends_on", "description")


def update_campaign(conn: Connection, campaign_id: int, **changes: object) -> None:
    """Change a campaign's name, kind, period or description (the PATCH of the REST layer), checked as on
    creation; members and mails sent stay linked."""
    row = conn.execute(sa.select(campaign).where(campaign.c.id == campaign_id)).one_or_none()
    if row is None:
        raise DomainError("campaign_id", f"campaign {campaign_id} does not exist")
    v.changeable(changes, _UPDATABLE)
    values: dict[str, object] = {}
    if "name" in changes:
        values["name"] = _unique_name(conn, changes["name"], campaign_id)
    if "kind" in changes:
        values["kind"] = v.one_of("kind", changes["kind"], KINDS)
    if "starts_on" in changes or "ends_on" in changes:
        values["starts_on"], values["ends_on"] = _period(changes.get("starts_on", row.starts_on),
                                                         changes.get("ends_on", row.ends_on))
    if "description" in changes:
        values["description"] = v.optional_text("description", changes["description"], 20000)
    if values:
        conn.execute(campaign.update().where(campaign.c.id == campaign_id).values(**values))


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


# --- a campaign mailing: who gets the mail, one person per company ----------------------------------------------

# Roles that speak for a company: the mailing prefers them when an account has several contacts.
DECISION_MAKER_ROLES = ("geschäftsführ", "inhaber", "vorstand", "managing director", "ceo", "owner")
RECIPIENT_COLUMNS = ("contact_id", "account_number", "account_name", "letter_salutation", "academic_title",
                     "first_name", "last_name", "role", "email", "sent_at")


@dataclass(frozen=True)
class MailingChoice:
    """Who a campaign mailing goes to and why the others get nothing (each item: ``recipient_entry`` dicts)."""

    recipients: list[dict[str, object]]
    skipped: list[dict[str, object]]


def _audience_query() -> sa.Select[tuple[object, ...]]:
    return sa.select(contact, account.c.name.label("account_name"), account.c.number.label("account_number")) \
        .outerjoin(account, account.c.id == contact.c.account_id)


def mailing_audience(
    conn: Connection, campaign_id: int, segment: str | None = None, account_status: str | None = None
) -> list[sa.Row[tuple[object, ...]]]:
    """The campaign's members or, when a query is given, the contacts of every account with that segment tag
    and/or status (the mailing then belongs to the campaign all the same)."""
    if conn.execute(sa.select(campaign.c.id).where(campaign.c.id == campaign_id)).first() is None:
        raise DomainError("campaign_id", f"campaign {campaign_id} does not exist")
    query = _audience_query().order_by(contact.c.last_name, contact.c.first_name, contact.c.id)
    if segment is None and account_status is None:
        member_ids = sa.select(campaign_member.c.contact_id).where(campaign_member.c.campaign_id == campaign_id)
        return list(conn.execute(query.where(contact.c.id.in_(member_ids))))
    if segment is not None:
        tagged = sa.select(account_segment.c.account_id).where(
            account_segment.c.segment == v.required_text("segment", segment, 50))
        query = query.where(contact.c.account_id.in_(tagged))
    if account_status is not None:
        query = query.where(account.c.status == v.one_of("account_status", account_status, ACCOUNT_STATUSES))
    return list(conn.execute(query))


def campaign_mail_times(conn: Connection, campaign_id: int) -> dict[int, datetime]:
    """When each contact got this campaign's mail (its ``email_out`` activity linked to the campaign)."""
    query = sa.select(activity.c.contact_id, sa.func.min(activity.c.occurred_at)).where(
        activity.c.campaign_id == campaign_id, activity.c.kind == "email_out", activity.c.contact_id.is_not(None)
    ).group_by(activity.c.contact_id)
    return {int(contact_id): sent for contact_id, sent in conn.execute(query)}


def is_decision_maker(role: str | None) -> bool:
    folded = (role or "").casefold()
    return any(word in folded for word in DECISION_MAKER_ROLES)


def recipient_entry(person: sa.Row[tuple[object, ...]], reason: str) -> dict[str, object]:
    """One line of the mailing list as a reviewer reads it (JSON-able: it travels in process variables)."""
    return {
        "contact_id": int(person.id),
        "name": " ".join(str(p) for p in (person.academic_title, person.first_name, person.last_name) if p),
        "letter_salutation": placeholder_values(person)["letter_salutation"],
        "email": person.email,
        "role": person.role,
        "account_id": None if person.account_id is None else int(person.account_id),
        "account_name": person.account_name,
        "reason": reason,
    }


def choose_recipients(people: Iterable[sa.Row[tuple[object, ...]]], mailed: Iterable[int] = ()) -> MailingChoice:
    """One recipient per account, so a company is not written to three times.

    Opted-out contacts and contacts without e-mail never count. An account that already had the campaign's mail
    (``mailed``: contact ids, e.g. from an earlier run) gets none again. Among an account's remaining contacts a
    decision maker (role such as "Geschäftsführer", "Inhaberin") wins, else the first by last name, first name;
    contacts without an account stand for themselves. Reasons: ``decision_maker``, ``first_by_name``,
    ``only_contact``; skipped: ``opted_out``, ``no_email``, ``already_mailed``, ``other_contact_chosen``.
    """
    mailed_ids = set(mailed)
    rows = sorted(people, key=lambda p: (str(p.last_name).casefold(), str(p.first_name or "").casefold(), p.id))
    served = {p.account_id for p in rows if p.id in mailed_ids and p.account_id is not None}
    skipped: list[dict[str, object]] = []
    companies: dict[object, list[sa.Row[tuple[object, ...]]]] = {}
    for person in rows:
        if person.marketing_opt_out or not person.email:
            skipped.append(recipient_entry(person, "opted_out" if person.marketing_opt_out else "no_email"))
        elif person.id in mailed_ids or (person.account_id is not None and person.account_id in served):
            skipped.append(recipient_entry(person, "already_mailed"))
        else:
            companies.setdefault(person.account_id if person.account_id is not None else f"c{person.id}",
                                 []).append(person)
    recipients: list[dict[str, object]] = []
    for candidates in companies.values():
        chosen = next((p for p in candidates if is_decision_maker(p.role)), candidates[0])
        reason = "only_contact" if len(candidates) == 1 else (
            "decision_maker" if is_decision_maker(chosen.role) else "first_by_name")
        recipients.append(recipient_entry(chosen, reason))
        skipped.extend(recipient_entry(p, "other_contact_chosen") for p in candidates if p is not chosen)
    return MailingChoice(recipients, skipped)


def mailing_list_rows(conn: Connection, campaign_id: int, contact_ids: Iterable[int]) -> list[dict[str, object]]:
    """The mailing's recipients for the CSV export, by name, with the time each got the campaign's mail."""
    ids = sorted(set(contact_ids))
    sent = campaign_mail_times(conn, campaign_id)
    people = conn.execute(_audience_query().where(contact.c.id.in_(ids))
                          .order_by(contact.c.last_name, contact.c.first_name, contact.c.id)).all() if ids else []
    missing = sorted(set(ids) - {int(p.id) for p in people})
    if missing:
        raise DomainError("contact_ids", f"contacts {missing} do not exist")
    rows = []
    for person in people:
        entry = {name: getattr(person, name, None) for name in RECIPIENT_COLUMNS}
        entry.update(contact_id=int(person.id), letter_salutation=placeholder_values(person)["letter_salutation"],
                     sent_at=sent.get(int(person.id)))
        rows.append(entry)
    return rows


def mailing_list_csv(rows: Iterable[Mapping[str, object]]) -> bytes:
    """What a clerk opens in a spreadsheet: UTF-8 with byte-order mark, ``;`` separated, like the list exports."""
    return (BOM + to_csv(rows, RECIPIENT_COLUMNS)).encode()


MAILING_LIST_UPLOADER = "silverflow"  # the mailing process stores the list, no person
_MAILING_LIST_NAME = re.compile(r"kampagne-([1-9][0-9]{0,9})-empfaenger\.csv")


def mailing_list_file_name(campaign_id: int) -> str:
    """The name the mailing's recipient list is stored under; it is also how the list is known to be one."""
    return f"kampagne-{campaign_id}-empfaenger.csv"


def mailing_list_campaign(conn: Connection, document_row: sa.Row[tuple[object, ...]]) -> int | None:
    """The campaign whose recipient list this document is, or None. Documents hold no campaign link: the list is
    an internal document (no account) the mailing process stored under :func:`mailing_list_file_name`."""
    found = _MAILING_LIST_NAME.fullmatch(str(document_row.file_name))
    if found is None or document_row.account_id is not None or document_row.uploaded_by != MAILING_LIST_UPLOADER:
        return None
    campaign_id = int(found.group(1))
    exists = conn.execute(sa.select(campaign.c.id).where(campaign.c.id == campaign_id)).first() is not None
    return campaign_id if exists else None
