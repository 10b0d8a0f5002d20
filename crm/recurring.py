"""Recurring billing: the invoice lines of an account's booked services for one month, pro rata temporis.

Monthly services are billed every month they run; a service that starts or ends within the month pays the
share of days it ran (days active / days in the month), so starting on the 16th of a 30-day month costs half.
The unit price is scaled and rounded half-up to cents (``crm.pricing.to_cents``); the position total then
follows the ordinary pricing rules. Yearly services are billed in full in their anniversary month, for the year
starting on the anniversary — not at all if the contract ends before it.

The order invoice and the monthly run share this rule (``order_invoice_positions``): the order invoice bills the
order's one-off positions and the first period of each service the order booked that has started — a monthly
service pro rata from its start to the end of that month, a yearly one for its first year — each with the period
marker below; the monthly run then bills from the next period on, and a yearly service again in its next
anniversary month. A recurring position whose service has not started yet is left to the monthly runs.

What a position billed is recorded in its description as a marker ``[Leistung <service id> · YYYY-MM]``
(service and billing month), so a period is never billed twice for one service: every billing run reads the
markers of the account's invoices that are not cancelled (a cancelled invoice frees its periods again).
The account row is locked first, so two runs for the same account queue instead of billing twice.

Prices come from the order position the service was booked from (the price the customer agreed to, with its
percentage discount) or, for a service booked without an order, from the catalogue. A fixed discount amount
on the order position is a one-off and is not repeated every month.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .accounts import get_account
from .errors import DomainError
from .invoices import create_invoice
from .positions import PositionInput
from .pricing import to_cents
from .schema import account, booked_service, invoice, invoice_position, order, order_position, product

BILLABLE_STATUSES = ("active", "suspended", "cancelled")  # a suspended line still runs; cancelled: until then
RECURRING_KINDS = ("recurring_monthly", "recurring_yearly")  # product kinds billed per period, not once
MARKER = re.compile(r"\[Leistung (\d+) · (\d{4})-(\d{2})\]")
_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")
DESCRIPTION_MAX = 500


@dataclass(frozen=True)
class RecurringLine:
    """One invoice line of a booked service for a billing month."""

    service_id: int
    product_id: int
    description: str
    quantity: Decimal
    unit_price: Decimal
    vat_rate: Decimal
    discount_percent: Decimal | None
    period_start: date
    period_end: date
    days: int
    days_in_period: int

    def position(self) -> PositionInput:
        return PositionInput(
            quantity=self.quantity,
            product_id=self.product_id,
            description=self.description,
            unit_price=self.unit_price,
            vat_rate=self.vat_rate,
            discount_percent=self.discount_percent,
        )


def parse_period(text: str) -> tuple[int, int]:
    """``"2026-03"`` → ``(2026, 3)``; anything else is a DomainError naming ``period``."""
    match = _PERIOD.match((text or "").strip())
    if match is None:
        raise DomainError("period", f"period must look like YYYY-MM, got {text!r}")
    year, month = int(match.group(1)), int(match.group(2))
    month_bounds(year, month)
    return year, month


def month_bounds(year: int, month: int) -> tuple[date, date]:
    """First and last day of the billing month (checked, so a bad month names the field)."""
    if isinstance(year, bool) or not isinstance(year, int) or not 2000 <= year <= 2999:
        raise DomainError("period", f"year must be between 2000 and 2999, got {year!r}")
    if isinstance(month, bool) or not isinstance(month, int) or not 1 <= month <= 12:
        raise DomainError("period", f"month must be between 1 and 12, got {month!r}")
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def period_marker(service_id: int, year: int, month: int) -> str:
    return f"[Leistung {service_id} · {year:04d}-{month:02d}]"


def parse_marker(description: str) -> tuple[int, int, int] | None:
    """``(service id, year, month)`` of a recurring position's description, or None for other positions."""
    match = MARKER.search(description or "")
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def _anniversary(start: date, year: int) -> date:
    """The start date in ``year``; 29 February falls on the 28th in other years."""
    day = min(start.day, calendar.monthrange(year, start.month)[1])
    return date(year, start.month, day)


def _end_of(row: sa.Row[tuple[object, ...]]) -> date | None:
    """The last day the service runs: its contract end, or the day it was cancelled, whichever is earlier."""
    ends = [row.contract_end] if row.contract_end is not None else []
    if row.status == "cancelled" and row.cancelled_at is not None:
        ends.append(row.cancelled_at.date())
    return min(ends) if ends else None


def _text(base: str, start: date, end: date, share: str | None, marker: str) -> str:
    span = f"{start:%d.%m.%Y}–{end:%d.%m.%Y}"
    tail = f" · Zeitraum {span}" + (f" · anteilig {share} Tage" if share else "") + f" {marker}"
    return base[: DESCRIPTION_MAX - len(tail)].rstrip() + tail


def billed_services(conn: Connection, account_id: int, year: int, month: int) -> set[int]:
    """Services of the account already billed for the month on an invoice that is not cancelled."""
    rows = conn.execute(
        sa.select(invoice_position.c.description)
        .join(invoice, invoice.c.id == invoice_position.c.invoice_id)
        .where(
            invoice.c.account_id == account_id,
            invoice.c.status != "cancelled",
            invoice_position.c.description.contains(f" · {year:04d}-{month:02d}]", autoescape=True),
        )
    )
    billed = set()
    for description in rows.scalars():
        parsed = parse_marker(str(description))
        if parsed is not None and parsed[1:] == (year, month):
            billed.add(parsed[0])
    return billed


def period_lines(conn: Connection, account_id: int, year: int, month: int,
                 service_ids: Collection[int] | None = None) -> list[RecurringLine]:
    """The lines still to bill for the account's services in the month (empty when all are billed);
    ``service_ids`` narrows them to those services."""
    first, last = month_bounds(year, month)
    days_in_month = (last - first).days + 1
    already = billed_services(conn, account_id, year, month)
    rows = conn.execute(
        sa.select(
            booked_service,
            product.c.name.label("product_name"),
            product.c.list_price,
            product.c.vat_rate.label("product_vat_rate"),
            order_position.c.description.label("order_description"),
            order_position.c.unit_price.label("order_unit_price"),
            order_position.c.vat_rate.label("order_vat_rate"),
            order_position.c.discount_percent.label("order_discount_percent"),
        )
        .join(product, product.c.id == booked_service.c.product_id)
        .outerjoin(order_position, order_position.c.id == booked_service.c.order_position_id)
        .where(
            booked_service.c.account_id == account_id,
            booked_service.c.status.in_(BILLABLE_STATUSES),
            booked_service.c.start_date.is_not(None),
            booked_service.c.start_date <= last,
            *([booked_service.c.id.in_(list(service_ids))] if service_ids is not None else []),
        )
        .order_by(booked_service.c.id)
    )
    lines = []
    for row in rows:
        if row.id in already:
            continue
        start: date = row.start_date
        end = _end_of(row)
        from_order = row.order_unit_price is not None
        base = str(row.order_description if from_order else row.product_name)
        unit_price = Decimal(row.order_unit_price if from_order else row.list_price)
        vat_rate = Decimal(row.order_vat_rate if from_order else row.product_vat_rate)
        discount = row.order_discount_percent if from_order else None
        marker = period_marker(int(row.id), year, month)
        if row.billing_period == "yearly":
            if start.month != month or start.year > year:
                continue
            begins = _anniversary(start, year)
            if end is not None and end < begins:
                continue
            until = _anniversary(start, year + 1) - timedelta(days=1)
            days = (until - begins).days + 1
            lines.append(
                RecurringLine(
                    int(row.id), int(row.product_id), _text(base, begins, until, None, marker),
                    Decimal(row.quantity), unit_price, vat_rate, discount, begins, until, days, days,
                )
            )
            continue
        begins = max(start, first)
        until = last if end is None else min(end, last)
        if begins > until:
            continue
        days = (until - begins).days + 1
        share = None
        if days != days_in_month:
            unit_price = to_cents(unit_price * days / days_in_month)
            share = f"{days}/{days_in_month}"
        if unit_price == 0:
            continue  # e.g. a free line: nothing to bill
        lines.append(
            RecurringLine(
                int(row.id), int(row.product_id), _text(base, begins, until, share, marker),
                Decimal(row.quantity), unit_price, vat_rate, discount, begins, until, days, days_in_month,
            )
        )
    return lines


def order_invoice_positions(conn: Connection, order_id: int) -> list[PositionInput]:
    """What the order's own invoice bills: its one-off positions as they stand (hardware, setup fees, free
    lines) and the first period of each started service it booked (see the module rule). A fixed discount on a
    recurring position is a one-off: it goes on the first period, at most that period's value."""
    source = conn.execute(sa.select(order.c.account_id).where(order.c.id == order_id)).one_or_none()
    if source is None:
        raise DomainError("order_id", f"order {order_id} does not exist")
    rows = conn.execute(
        sa.select(order_position, product.c.kind)
        .outerjoin(product, product.c.id == order_position.c.product_id)
        .where(order_position.c.order_id == order_id)
        .order_by(order_position.c.line_no)
    ).all()
    started = conn.execute(
        sa.select(booked_service.c.id, booked_service.c.start_date, booked_service.c.order_position_id)
        .where(booked_service.c.order_id == order_id, booked_service.c.status.in_(BILLABLE_STATUSES),
               booked_service.c.start_date.is_not(None))
        .order_by(booked_service.c.id)
    ).all()
    positions: list[PositionInput] = []
    for row in rows:  # in the order's line order, so the invoice reads like the order
        if row.kind not in RECURRING_KINDS:
            positions.append(PositionInput(
                quantity=row.quantity, product_id=row.product_id, description=row.description,
                unit_price=row.unit_price, vat_rate=row.vat_rate, discount_percent=row.discount_percent,
                discount_amount=row.discount_amount))
            continue
        for service in (s for s in started if s.order_position_id == row.id):
            first: date = service.start_date
            for line in period_lines(conn, int(source.account_id), first.year, first.month, [int(service.id)]):
                item = line.position()
                if row.discount_amount is not None:
                    value = to_cents(line.quantity * line.unit_price)
                    item = replace(item, discount_percent=None, discount_amount=min(Decimal(row.discount_amount),
                                                                                     value))
                positions.append(item)
    return positions


def bill_period(
    conn: Connection,
    account_id: int,
    year: int,
    month: int,
    now: datetime | None = None,
    payment_days: int = 14,
) -> int | None:
    """Invoice the account's recurring services for the month; None if there is nothing (left) to bill.

    The invoice gets the next gap-free number of the issue year (the day of ``now``) through
    ``crm.invoices``; the account row stays locked until the caller commits.
    """
    month_bounds(year, month)
    get_account(conn, account_id)
    conn.execute(sa.select(account.c.id).where(account.c.id == account_id).with_for_update())
    lines = period_lines(conn, account_id, year, month)
    if not lines:
        return None
    moment = v.timestamp(now)
    return create_invoice(
        conn, account_id, [line.position() for line in lines], moment.date(), payment_days, now=moment
    )


def accounts_to_bill(conn: Connection, year: int, month: int) -> list[int]:
    """Accounts with a service that may be billable in the month (bill_period decides line by line)."""
    _, last = month_bounds(year, month)
    rows = conn.execute(
        sa.select(booked_service.c.account_id)
        .where(
            booked_service.c.status.in_(BILLABLE_STATUSES),
            booked_service.c.start_date.is_not(None),
            booked_service.c.start_date <= last,
        )
        .distinct()
        .order_by(booked_service.c.account_id)
    )
    return [int(i) for i in rows.scalars()]


def accounts_with_open_lines(conn: Connection, year: int, month: int) -> list[int]:
    """Accounts that still have something to bill for the month: the work list of the monthly billing run,
    so a second run for the same month starts nothing."""
    return [a for a in accounts_to_bill(conn, year, month) if period_lines(conn, a, year, month)]


def bill_all(
    conn: Connection, year: int, month: int, now: datetime | None = None, payment_days: int = 14
) -> dict[int, int]:
    """The monthly run over all accounts: account id → new invoice id (accounts with nothing to bill left out)."""
    created = {}
    for account_id in accounts_to_bill(conn, year, month):
        invoice_id = bill_period(conn, account_id, year, month, now, payment_days)
        if invoice_id is not None:
            created[account_id] = invoice_id
    return created


def invoice_of_period(conn: Connection, account_id: int, year: int, month: int) -> int | None:
    """The latest invoice (not cancelled) that billed a service of the account for the month."""
    rows = conn.execute(
        sa.select(invoice.c.id, invoice_position.c.description)
        .join(invoice_position, invoice_position.c.invoice_id == invoice.c.id)
        .where(
            invoice.c.account_id == account_id,
            invoice.c.status != "cancelled",
            invoice_position.c.description.contains(f" · {year:04d}-{month:02d}]", autoescape=True),
        )
        .order_by(invoice.c.id.desc())
    )
    for invoice_id, description in rows:
        parsed = parse_marker(str(description))
        if parsed is not None and parsed[1:] == (year, month):
            return int(invoice_id)
    return None
