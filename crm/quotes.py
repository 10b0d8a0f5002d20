"""Quotes: numbered, versioned offers to an account; positions priced by ``crm.pricing``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import positions as pos
from . import validation as v
from .accounts import get_account
from .errors import DomainError
from .numbering import yearly_number
from .pricing import Totals
from .schema import quote, quote_position
from .status import Transitions, change_status

QUOTE_TRANSITIONS: Transitions = {
    "draft": frozenset({"sent"}),
    "sent": frozenset({"accepted", "rejected", "expired"}),
}


def get_quote(conn: Connection, quote_id: int) -> sa.Row[tuple[object, ...]]:
    row = conn.execute(sa.select(quote).where(quote.c.id == quote_id)).one_or_none()
    if row is None:
        raise DomainError("quote_id", f"quote {quote_id} does not exist")
    return row


def _store_positions(conn: Connection, quote_id: int, lines: list[dict[str, Any]]) -> Totals:
    return pos.write(conn, quote, quote_position, "quote_id", quote_id, lines)


def create_quote(
    conn: Connection,
    account_id: int,
    positions: Sequence[pos.PositionInput],
    valid_until: date,
    contact_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """A draft quote, version 1, numbered Q-<year>-<n> in the year of creation."""
    get_account(conn, account_id)
    created = v.timestamp(now)
    if valid_until < created.date():
        raise DomainError("valid_until", "valid_until must not be in the past")
    lines = pos.resolve(conn, positions)
    number, _ = yearly_number(conn, "quote", "Q", created.year)
    return _insert_version(conn, number, 1, account_id, contact_id, valid_until, created, lines)


def _insert_version(
    conn: Connection,
    number: str,
    version: int,
    account_id: int,
    contact_id: int | None,
    valid_until: date,
    created: datetime,
    lines: list[dict[str, Any]],
) -> int:
    zero = {"net": 0, "vat": 0, "gross": 0}
    quote_id = int(
        conn.execute(
            quote.insert()
            .values(
                number=number,
                version=version,
                account_id=account_id,
                contact_id=contact_id,
                status="draft",
                valid_until=valid_until,
                created_at=created,
                **zero,
            )
            .returning(quote.c.id)
        ).scalar_one()
    )
    _store_positions(conn, quote_id, lines)
    return quote_id


def update_positions(conn: Connection, quote_id: int, positions: Sequence[pos.PositionInput]) -> Totals:
    """Only a draft can change: what the customer was sent stays as sent (revise it instead)."""
    if get_quote(conn, quote_id).status != "draft":
        raise DomainError("status", "only a draft quote can be changed; create a new version instead")
    return _store_positions(conn, quote_id, pos.resolve(conn, positions))


def revise_quote(
    conn: Connection, quote_id: int, valid_until: date | None = None, now: datetime | None = None
) -> int:
    """A new draft version of the same quote number, with the positions of ``quote_id`` copied."""
    old = get_quote(conn, quote_id)
    latest = conn.execute(
        sa.select(sa.func.max(quote.c.version)).where(quote.c.number == old.number)
    ).scalar_one()
    if old.version != latest:
        raise DomainError("version", f"only the latest version ({latest}) of {old.number} can be revised")
    lines = pos.copy_lines(pos.read(conn, quote_position, "quote_id", quote_id))
    created = v.timestamp(now)
    new_valid_until = valid_until or old.valid_until
    if new_valid_until < created.date():
        raise DomainError("valid_until", "valid_until must not be in the past")
    return _insert_version(
        conn, old.number, int(latest) + 1, old.account_id, old.contact_id, new_valid_until, created, lines
    )


def quote_totals(conn: Connection, quote_id: int) -> Totals:
    """Totals with VAT per rate, recomputed from the stored positions."""
    get_quote(conn, quote_id)
    return pos.totals_of(pos.read(conn, quote_position, "quote_id", quote_id))


def send_quote(conn: Connection, quote_id: int, now: datetime | None = None) -> None:
    change_status(conn, quote, quote_id, QUOTE_TRANSITIONS, "sent", sent_at=v.timestamp(now))


def accept_quote(conn: Connection, quote_id: int, now: datetime | None = None) -> None:
    """Acceptance after the validity date is refused: the quote has expired."""
    decided = v.timestamp(now)
    if get_quote(conn, quote_id).valid_until < decided.date():
        raise DomainError("valid_until", "the quote has expired and can no longer be accepted")
    change_status(conn, quote, quote_id, QUOTE_TRANSITIONS, "accepted", decided_at=decided)


def reject_quote(conn: Connection, quote_id: int, now: datetime | None = None) -> None:
    change_status(conn, quote, quote_id, QUOTE_TRANSITIONS, "rejected", decided_at=v.timestamp(now))


def expire_quotes(conn: Connection, today: date) -> list[int]:
    """Mark every sent quote whose validity ended before ``today`` as expired (a daily timer calls this)."""
    ids = list(
        conn.execute(
            sa.select(quote.c.id)
            .where(quote.c.status == "sent", quote.c.valid_until < today)
            .order_by(quote.c.id)
        ).scalars()
    )
    for quote_id in ids:
        change_status(conn, quote, quote_id, QUOTE_TRANSITIONS, "expired")
    return [int(i) for i in ids]
