"""One billing rule for the order invoice and the monthly runs, checked over many random order and run dates: the
order invoice bills the one-off positions and the first period, the runs bill from the next period on, a yearly
item once per year — no period is billed twice or skipped, whatever order the runs and the order invoice come in."""

from __future__ import annotations

import calendar
import random
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal as D

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crm import booked_services as services
from crm import invoices, orders, quotes, recurring
from crm.accounts import create_account
from crm.positions import PositionInput
from crm.products import ProductInput, create_product
from crm.schema import invoice, invoice_position

from .conftest import NOW

ITERATIONS = 25
HORIZON_MONTHS = 26  # runs for a little over two years after the start: two anniversaries of the yearly item


def _months(first: date, count: int) -> list[tuple[int, int]]:
    index = first.year * 12 + first.month - 1
    return [divmod(index + i, 12) for i in range(count)]


def _period(ym: tuple[int, int]) -> tuple[int, int]:
    year, month0 = ym
    return year, month0 + 1


def _billed(conn: Connection, account_id: int) -> list[tuple[int | None, str, D, D]]:
    """(product, description, unit price, total) of every position on the account's invoices that count."""
    rows = conn.execute(
        sa.select(invoice_position.c.product_id, invoice_position.c.description, invoice_position.c.unit_price,
                  invoice_position.c.total)
        .join(invoice, invoice.c.id == invoice_position.c.invoice_id)
        .where(invoice.c.account_id == account_id, invoice.c.status != "cancelled"))
    return [(r.product_id, str(r.description), D(r.unit_price), D(r.total)) for r in rows]


def test_no_period_is_billed_twice_or_skipped_over_random_order_and_run_dates(conn: Connection) -> None:
    rng = random.Random(20261208)
    monthly = create_product(conn, ProductInput("P-DSL", "DSL", "access", "recurring_monthly", D("39.90")))
    yearly = create_product(conn, ProductInput("P-DOM", "Domain", "domain", "recurring_yearly", D("12.00")))
    setup = create_product(conn, ProductInput("P-SET", "Einrichtung", "access", "setup_fee", D("99.00")))
    for iteration in range(ITERATIONS):
        start = date(2026, 1, 1) + timedelta(days=rng.randrange(0, 730))
        if iteration % 5 == 0:
            start = start.replace(month=2, day=29 if calendar.isleap(start.year) else 28)  # leap-day anniversaries
        end = start + timedelta(days=rng.randrange(40, 900)) if iteration % 3 == 0 else None
        account_id = create_account(conn, f"Kunde {iteration} GmbH", now=NOW)
        quote_id = quotes.create_quote(conn, account_id, [
            PositionInput(D(1), monthly, discount_percent=D(rng.choice([0, 5, 10]))),
            PositionInput(D(1), yearly), PositionInput(D(1), setup)], date(2030, 1, 1), now=NOW)
        quotes.send_quote(conn, quote_id, now=NOW)
        quotes.accept_quote(conn, quote_id, now=NOW)
        order_id = orders.create_order_from_quote(conn, quote_id, now=NOW, delivery={
            "name": "Kunde", "street": "Weg 1", "postal_code": "10115", "city": "Berlin"})
        line_id, domain_id = services.book_order_services(conn, order_id, now=NOW)
        for service_id in (line_id, domain_id):
            services.activate_service(conn, service_id, start, end)

        months = _months(start, HORIZON_MONTHS)
        runs = [_period(m) for m in months] + [_period(rng.choice(months)) for _ in range(4)]  # some run twice
        runs.sort()
        invoice_after = rng.randrange(0, len(runs) + 1)  # the order is invoiced before, between or after the runs
        for i, (year, month) in enumerate(runs):
            if i == invoice_after:
                invoices.create_invoice_from_order(conn, order_id, start, now=NOW)
            run_day = date(year, month, calendar.monthrange(year, month)[1]) + timedelta(days=1)
            recurring.bill_period(conn, account_id, year, month, datetime.combine(run_day, time(6), UTC))
        if invoice_after == len(runs):
            invoices.create_invoice_from_order(conn, order_id, start, now=NOW)

        billed = _billed(conn, account_id)
        horizon_end = date(*_period(months[-1]), 1)
        last_day = min(end, horizon_end) if end else horizon_end
        what = f"start {start}, end {end}, order invoice after {invoice_after} of {len(runs)} runs"

        # the one-off is billed once, on the order invoice
        assert [p for p, *_ in billed].count(setup) == 1, what
        # the line: every month from the start month to its end, each exactly once, every position marked
        line_marks = [recurring.parse_marker(d) for p, d, *_ in billed if p == monthly]
        assert all(m is not None and m[0] == line_id for m in line_marks), what
        expected = [_period(m) for m in _months(start, HORIZON_MONTHS)
                    if date(*_period(m), 1) <= last_day]
        assert sorted(Counter((m[1], m[2]) for m in line_marks if m).items()) == [(p, 1) for p in expected], what
        # pro rata: each month's price is the share of days the line ran in it (first and last month partial)
        for (_, description, unit_price, _) in (b for b in billed if b[0] == monthly):
            _, year, month = recurring.parse_marker(description) or (0, 0, 0)
            first, last = recurring.month_bounds(year, month)
            ran = (min(last, end or last) - max(first, start)).days + 1
            share = D("39.90") * ran / ((last - first).days + 1)
            assert unit_price == share.quantize(D("0.01"), rounding="ROUND_HALF_UP"), (what, description)
        # the yearly item: once per year that has begun by the horizon and before the end, in the start month
        domain_marks = [recurring.parse_marker(d) for p, d, *_ in billed if p == yearly]
        anniversaries = [date(y, start.month, min(start.day, calendar.monthrange(y, start.month)[1]))
                         for y in range(start.year, horizon_end.year + 1)]
        years = [a.year for a in anniversaries
                 if a.replace(day=1) <= horizon_end and (end is None or end >= a)]
        assert sorted((m[1], m[2]) for m in domain_marks if m) == [(y, start.month) for y in years], what
        assert all(m is not None and m[0] == domain_id for m in domain_marks), what
