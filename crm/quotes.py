"""Quotes: numbered, versioned offers to an account; positions priced by ``crm.pricing``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import positions as pos
from . import validation as v
from .accounts import get_account
from .errors import DomainError
from .numbering import yearly_number
from .pricing import Totals
from .schema import contact, quote, quote_position
from .status import Transitions, change_status

DISCOUNT_LIMIT = Decimal(15)  # percent per position; above it management approves in the process
DISCOUNT_LIMIT_TEXT = "discount over 15 % needs management's approval"

QUOTE_TRANSITIONS: Transitions = {
    "draft": frozenset({"sent"}),
    "sent": frozenset({"accepted", "rejected", "expired"}),
}


def get_quote(conn: Connection, quote_id: int) -> sa.Row[tuple[object, ...]]:
    row = conn.execute(sa.select(quote).where(quote.c.id == quote_id)).one_or_none()
    if row is None:
        raise DomainError("quote_id", f"quote {quote_id} does not exist")
    return row


def versions(conn: Connection, number: str) -> list[dict[str, Any]]:
    """Every version of the quote with this number (id, version, status), oldest first."""
    rows = conn.execute(sa.select(quote.c.id, quote.c.version, quote.c.status)
                        .where(quote.c.number == number).order_by(quote.c.version))
    return [dict(row._mapping) for row in rows]


def _validity(valid_until: object, today: date) -> date:
    """A quote is valid until a calendar day that has not passed yet."""
    chosen = v.day("valid_until", valid_until)
    if chosen < today:
        raise DomainError("valid_until", "valid_until must not be in the past")
    return chosen


def _contact_of(conn: Connection, account_id: int, contact_id: object) -> int | None:
    """The quote's addressee is a person of the quoted account (``None``: nobody in particular)."""
    person = v.reference(conn, contact, contact_id, "contact_id")
    if person is None:
        return None
    owner = conn.execute(sa.select(contact.c.account_id).where(contact.c.id == person)).scalar_one()
    if owner != account_id:
        raise DomainError("contact_id", f"contact {person} is not a person of the quoted account")
    return person


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
    _contact_of(conn, account_id, contact_id)
    created = v.timestamp(now)
    _validity(valid_until, created.date())
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
    """Only a draft can change: what the customer was sent stays as sent (revise it instead). New positions
    drop a discount approval that was given for the old ones unless it still covers them."""
    row = get_quote(conn, quote_id)
    if row.status != "draft":
        raise DomainError("status", "only a draft quote can be changed; create a new version instead")
    totals = _store_positions(conn, quote_id, pos.resolve(conn, positions))
    approved = row.discount_approved_percent
    if approved is not None and max_discount(conn, quote_id) > approved:
        conn.execute(quote.update().where(quote.c.id == quote_id).values(
            discount_approved_by=None, discount_approved_at=None, discount_approved_percent=None))
    return totals


_UPDATABLE = ("valid_until", "contact_id")


def update_quote(conn: Connection, quote_id: int, *, now: datetime | None = None, **changes: object) -> None:
    """Change the validity or the addressee of a draft (the PATCH of the REST layer), checked as on creation;
    a sent quote stays as sent (``DomainError("status")``: revise it instead)."""
    row = get_quote(conn, quote_id)
    v.changeable(changes, _UPDATABLE)
    if row.status != "draft":
        raise DomainError("status", f"quote {row.number} is {row.status}: only a draft can be changed; revise it")
    values: dict[str, object] = {}
    if "valid_until" in changes:
        values["valid_until"] = _validity(changes["valid_until"], v.timestamp(now).date())
    if "contact_id" in changes:
        values["contact_id"] = _contact_of(conn, int(row.account_id), changes["contact_id"])
    if values:
        conn.execute(quote.update().where(quote.c.id == quote_id).values(**values))


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
    new_valid_until = _validity(valid_until or old.valid_until, created.date())
    return _insert_version(
        conn, old.number, int(latest) + 1, old.account_id, old.contact_id, new_valid_until, created, lines
    )


def quote_totals(conn: Connection, quote_id: int) -> Totals:
    """Totals with VAT per rate, recomputed from the stored positions."""
    get_quote(conn, quote_id)
    return pos.totals_of(pos.read(conn, quote_position, "quote_id", quote_id))


# -- the discount rule: one rule for every face (process step, REST, page) -----------------------------------
def max_discount(conn: Connection, quote_id: int) -> Decimal:
    """The highest discount percent of the quote's positions (0 without any)."""
    highest = conn.execute(sa.select(sa.func.max(quote_position.c.discount_percent))
                           .where(quote_position.c.quote_id == quote_id)).scalar()
    return Decimal(highest) if highest is not None else Decimal(0)


def exceeds_discount_limit(percent: Decimal | None) -> bool:
    """Whether one position's discount needs management's approval (the builder asks this while typing)."""
    return percent is not None and percent > DISCOUNT_LIMIT


def discount_approval_needed(conn: Connection, quote_id: int) -> bool:
    """Whether a position's discount is over the limit and management has not approved it (for these positions)."""
    row = get_quote(conn, quote_id)
    highest = max_discount(conn, quote_id)
    return exceeds_discount_limit(highest) and (row.discount_approved_percent is None
                                         or highest > row.discount_approved_percent)


def require_discount_approval(conn: Connection, quote_id: int) -> None:
    """Refuse (``DomainError`` naming the first position over the limit) what may only leave the house with
    management's approval: sending the quote, and an order made from it."""
    if not discount_approval_needed(conn, quote_id):
        return
    approved = get_quote(conn, quote_id).discount_approved_percent
    covered = max(DISCOUNT_LIMIT, Decimal(approved) if approved is not None else DISCOUNT_LIMIT)
    lines = pos.read(conn, quote_position, "quote_id", quote_id)
    index = next(i for i, line in enumerate(lines)
                 if line["discount_percent"] is not None and line["discount_percent"] > covered)
    raise DomainError(f"positions[{index}].discount_percent",
                      f"{DISCOUNT_LIMIT_TEXT}; ask for the approval before the quote is sent or ordered")


def approve_discount(conn: Connection, quote_id: int, approved_by: str, now: datetime | None = None) -> None:
    """Record management's approval of the draft's discounts as they stand (the process step after the approval
    task calls this with the login of the person who decided). Changing the positions above it drops it again."""
    row = get_quote(conn, quote_id)
    if not isinstance(approved_by, str) or not approved_by.strip():
        raise DomainError("approved_by", "the approval names the person who decided")
    if row.status != "draft":
        raise DomainError("status", f"quote {row.number} is {row.status}: only a draft's discount is approved")
    conn.execute(quote.update().where(quote.c.id == quote_id).values(
        discount_approved_by=approved_by.strip()[:200], discount_approved_at=v.timestamp(now),
        discount_approved_percent=max_discount(conn, quote_id)))


def send_quote(conn: Connection, quote_id: int, now: datetime | None = None) -> None:
    """A draft goes to the customer; over the discount limit only with management's approval."""
    if get_quote(conn, quote_id).status == "draft":
        require_discount_approval(conn, quote_id)
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


def expire_quote(conn: Connection, quote_id: int) -> None:
    """Mark one sent quote as expired: the acquisition's timer at the end of its validity decides when (the
    process clock, which tests move on), where ``expire_quotes`` compares with a calendar day."""
    change_status(conn, quote, quote_id, QUOTE_TRANSITIONS, "expired")


def matching_quote(
    conn: Connection,
    account_id: int,
    contact_id: int | None,
    valid_until: date,
    positions: Sequence[pos.PositionInput],
) -> int | None:
    """The latest quote for the same customer, validity and positions (product, quantity, discount): how a
    retried creation finds what its first attempt stored instead of numbering a second quote."""
    wanted = [(p.product_id, Decimal(p.quantity), p.discount_percent) for p in positions]
    candidates = conn.execute(
        sa.select(quote.c.id)
        .where(quote.c.account_id == account_id, quote.c.valid_until == valid_until)
        .where(quote.c.contact_id == contact_id if contact_id is not None else quote.c.contact_id.is_(None))
        .order_by(quote.c.id.desc())
    ).scalars()
    for quote_id in candidates:
        lines = pos.read(conn, quote_position, "quote_id", quote_id)
        stored = [(line["product_id"], Decimal(line["quantity"]), line["discount_percent"]) for line in lines]
        if stored == wanted:
            return int(quote_id)
    return None
