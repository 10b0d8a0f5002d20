"""Invoices with gap-free numbers per year (R-2026-00001), as German tax law requires.

The number is drawn from ``crm.numbering`` inside the invoice's own transaction, so a failed invoice returns
its number and two invoices created at once never share one. Invoices are never deleted, only cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import positions as pos
from . import validation as v
from .accounts import get_account
from .errors import DomainError
from .numbering import yearly_number
from .orders import get_order
from .schema import contact, invoice, invoice_position, quote
from .status import Transitions, change_status

INVOICE_TRANSITIONS: Transitions = {"open": frozenset({"paid", "cancelled"})}


def _create(
    conn: Connection,
    account_id: int,
    lines: list[dict[str, Any]],
    issue_date: date,
    payment_days: int,
    order_id: int | None,
    now: datetime | None,
) -> int:
    if not 0 <= payment_days <= 365:
        raise DomainError("payment_days", "payment_days must be between 0 and 365")
    number, sequence = yearly_number(conn, "invoice", "R", issue_date.year)
    invoice_id = int(
        conn.execute(
            invoice.insert()
            .values(
                number=number,
                year=issue_date.year,
                sequence=sequence,
                account_id=account_id,
                order_id=order_id,
                status="open",
                issue_date=issue_date,
                due_date=issue_date + timedelta(days=payment_days),
                net=0,
                vat=0,
                gross=0,
                created_at=v.timestamp(now),
            )
            .returning(invoice.c.id)
        ).scalar_one()
    )
    pos.write(conn, invoice, invoice_position, "invoice_id", invoice_id, lines)
    return invoice_id


def create_invoice(
    conn: Connection,
    account_id: int,
    positions: Sequence[pos.PositionInput],
    issue_date: date,
    payment_days: int = 14,
    now: datetime | None = None,
) -> int:
    """A free invoice (e.g. a monthly service charge) with the next number of the issue year."""
    get_account(conn, account_id)
    return _create(
        conn,
        account_id,
        pos.resolve(conn, positions, allow_inactive=True),
        issue_date,
        payment_days,
        None,
        now,
    )


def create_invoice_from_order(
    conn: Connection, order_id: int, issue_date: date, payment_days: int = 14, now: datetime | None = None
) -> int:
    """Bill an order: its one-off positions as they stand (adjusted after the quote, if they were) and the first
    period of its started services — the rule ``crm.recurring.order_invoice_positions`` shares with the monthly
    run, so no period is billed twice."""
    from .recurring import order_invoice_positions  # recurring bills through this module: import when used

    source = get_order(conn, order_id)
    if source.status == "cancelled":
        raise DomainError("order_id", f"order {source.number} is cancelled")
    positions = order_invoice_positions(conn, order_id)
    if not positions:
        raise DomainError("order_id", f"order {source.number} has nothing to bill yet: no one-off positions and "
                          "no service has started")
    lines = pos.resolve(conn, positions, allow_inactive=True)
    return _create(conn, source.account_id, lines, issue_date, payment_days, order_id, now)


def get_invoice(conn: Connection, invoice_id: int) -> sa.Row[tuple[object, ...]]:
    row = conn.execute(sa.select(invoice).where(invoice.c.id == invoice_id)).one_or_none()
    if row is None:
        raise DomainError("invoice_id", f"invoice {invoice_id} does not exist")
    return row


def mark_paid(conn: Connection, invoice_id: int, now: datetime | None = None) -> None:
    change_status(conn, invoice, invoice_id, INVOICE_TRANSITIONS, "paid", paid_at=v.timestamp(now))


def cancel_invoice(conn: Connection, invoice_id: int) -> None:
    """Cancelled invoices keep their number, so the sequence stays without gaps."""
    change_status(conn, invoice, invoice_id, INVOICE_TRANSITIONS, "cancelled")


def overdue_invoices(conn: Connection, today: date) -> list[int]:
    """Open invoices past their due date: the input of the dunning process."""
    rows = conn.execute(
        sa.select(invoice.c.id)
        .where(invoice.c.status == "open", invoice.c.due_date < today)
        .order_by(invoice.c.id)
    )
    return [int(i) for i in rows.scalars()]


REMINDER_INTERVAL = timedelta(days=14)
MAX_REMINDERS = 3


def record_reminder(conn: Connection, invoice_id: int, today: date) -> int:
    """Count a payment reminder sent for an overdue open invoice; returns its level (1st, 2nd, 3rd reminder).

    Reminders are at least ``REMINDER_INTERVAL`` apart and stop after ``MAX_REMINDERS`` (then collection).
    """
    row = get_invoice(conn, invoice_id)
    if row.status != "open":
        raise DomainError("status", f"invoice {row.number} is {row.status}")
    if row.due_date >= today:
        raise DomainError(
            "due_date", f"invoice {row.number} is not overdue before {row.due_date + timedelta(days=1)}"
        )
    if row.reminders_sent >= MAX_REMINDERS:
        raise DomainError(
            "reminders_sent", f"invoice {row.number} was reminded {MAX_REMINDERS} times already"
        )
    if row.last_reminder_on is not None and today < row.last_reminder_on + REMINDER_INTERVAL:
        raise DomainError(
            "last_reminder_on", f"the last reminder for {row.number} was sent on {row.last_reminder_on}"
        )
    updated = conn.execute(
        invoice.update()
        .where(invoice.c.id == invoice_id, invoice.c.reminders_sent == row.reminders_sent)
        .values(reminders_sent=invoice.c.reminders_sent + 1, last_reminder_on=today)
    )
    if updated.rowcount != 1:
        raise DomainError("reminders_sent", "the invoice was reminded concurrently; reload and retry")
    return int(row.reminders_sent) + 1


def correspondence_contact(conn: Connection, account_id: int) -> int | None:
    """Who receives the account's invoices and contract letters by mail: the contact of its latest quote
    (the person who ordered) if they have an e-mail address, else its first contact with one; None if no
    contact has one (the billing process then asks the billing team for a recipient)."""
    get_account(conn, account_id)
    with_mail = sa.and_(contact.c.account_id == account_id, contact.c.email.is_not(None), contact.c.email != "")
    ordered_by = conn.execute(
        sa.select(contact.c.id)
        .join(quote, quote.c.contact_id == contact.c.id)
        .where(with_mail, quote.c.account_id == account_id)
        .order_by(quote.c.id.desc())
    ).first()
    if ordered_by is not None:
        return int(ordered_by.id)
    first = conn.execute(sa.select(contact.c.id).where(with_mail).order_by(contact.c.id)).first()
    return None if first is None else int(first.id)
