"""Products, quotes, orders with sub-orders, invoices."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crm import invoices, orders, quotes
from crm.accounts import add_address
from crm.errors import DomainError
from crm.positions import PositionInput
from crm.products import ProductInput, create_product, set_active
from crm.schema import order_position, quote_position

from .conftest import NOW, TODAY

VALID = TODAY + timedelta(days=30)


def _quote(conn: Connection, account_id: int, catalogue: dict[str, int]) -> int:
    return quotes.create_quote(
        conn,
        account_id,
        [
            PositionInput(D("1"), catalogue["ADSL50"]),
            PositionInput(D("2"), catalogue["MODEM"], discount_percent=D("10")),
            PositionInput(D("1"), catalogue["SETUP"], discount_amount=D("99.00")),
            PositionInput(D("3"), catalogue["BOOK"]),
        ],
        VALID,
        now=NOW,
    )


def _accepted(conn: Connection, account_id: int, catalogue: dict[str, int]) -> int:
    quote_id = _quote(conn, account_id, catalogue)
    quotes.send_quote(conn, quote_id, now=NOW)
    quotes.accept_quote(conn, quote_id, now=NOW)
    return quote_id


def test_product_code_is_unique_and_validated(conn: Connection, catalogue: dict[str, int]) -> None:
    with pytest.raises(DomainError) as err:
        create_product(conn, ProductInput("ADSL50", "Again", "access", "recurring_monthly", D("1.00")))
    assert err.value.field == "code"
    bad = [
        (ProductInput("X1", "X", "access", "lifetime", D("1.00")), "kind"),
        (ProductInput("X2", "X", "access", "hardware", D("1.005")), "list_price"),
        (ProductInput("X3", "X", "access", "hardware", D("-1")), "list_price"),
        (
            ProductInput("X4", "X", "access", "hardware", D("1"), provisioning_steps=("dns",)),
            "provisioning_steps",
        ),
        (ProductInput("X5", "X", "food", "hardware", D("1")), "category"),
        (ProductInput("X6", "X", "access", "hardware", D("1"), vat_rate=D("120")), "vat_rate"),
    ]
    for data, field in bad:
        with pytest.raises(DomainError) as err:
            create_product(conn, data)
        assert err.value.field == field


def test_quote_positions_and_totals(conn: Connection, account_id: int, catalogue: dict[str, int]) -> None:
    quote_id = _quote(conn, account_id, catalogue)
    row = quotes.get_quote(conn, quote_id)
    assert (row.number, row.version, row.status) == ("Q-2026-00001", 1, "draft")
    totals = [r.total for r in conn.execute(sa.select(quote_position).order_by(quote_position.c.line_no))]
    assert totals == [D("39.90"), D("268.20"), D("0.00"), D("30.00")]
    assert all(isinstance(t, D) for t in totals)
    assert (row.net, row.vat, row.gross) == (D("338.10"), D("60.64"), D("398.74"))  # 308.10 × 19 % + 30 × 7 %
    assert quotes.quote_totals(conn, quote_id).vat_by_rate == {D("7.00"): D("2.10"), D("19.00"): D("58.54")}


def test_quote_position_errors_name_the_field(
    conn: Connection, account_id: int, catalogue: dict[str, int]
) -> None:
    cases = [
        ([], "positions"),
        ([PositionInput(D("1"), 99999)], "positions[0].product_id"),
        ([PositionInput(D("1"), description="Free text")], "positions[0].unit_price"),
        ([PositionInput(D("1"), description="Free", unit_price=D("1"))], "positions[0].vat_rate"),
        (
            [PositionInput(D("1"), catalogue["SETUP"]), PositionInput(D("-1"), catalogue["SETUP"])],
            "positions[1].quantity",
        ),
    ]
    for positions, field in cases:
        with pytest.raises(DomainError) as err:
            quotes.create_quote(conn, account_id, positions, VALID, now=NOW)
        assert err.value.field == field
    with pytest.raises(DomainError) as err:
        quotes.create_quote(
            conn, account_id, [PositionInput(D("1"), catalogue["SETUP"])], TODAY - timedelta(1), now=NOW
        )
    assert err.value.field == "valid_until"
    set_active(conn, catalogue["BOOK"], False)
    with pytest.raises(DomainError, match="no longer sold"):
        quotes.create_quote(conn, account_id, [PositionInput(D("1"), catalogue["BOOK"])], VALID, now=NOW)


def test_quote_status_rules(conn: Connection, account_id: int, catalogue: dict[str, int]) -> None:
    quote_id = _quote(conn, account_id, catalogue)
    with pytest.raises(DomainError, match="from 'draft' to 'accepted'"):
        quotes.accept_quote(conn, quote_id, now=NOW)
    quotes.update_positions(conn, quote_id, [PositionInput(D("2"), catalogue["ADSL50"])])
    assert quotes.get_quote(conn, quote_id).net == D("79.80")
    quotes.send_quote(conn, quote_id, now=NOW)
    with pytest.raises(DomainError, match="only a draft"):
        quotes.update_positions(conn, quote_id, [PositionInput(D("1"), catalogue["ADSL50"])])
    quotes.reject_quote(conn, quote_id, now=NOW)
    with pytest.raises(DomainError):
        quotes.accept_quote(conn, quote_id, now=NOW)


def test_expiry(conn: Connection, account_id: int, catalogue: dict[str, int]) -> None:
    quote_id = _quote(conn, account_id, catalogue)
    draft = _quote(conn, account_id, catalogue)
    quotes.send_quote(conn, quote_id, now=NOW)
    late = NOW + timedelta(days=31)
    with pytest.raises(DomainError) as err:
        quotes.accept_quote(conn, quote_id, now=late)
    assert err.value.field == "valid_until"
    assert quotes.expire_quotes(conn, VALID) == []  # valid through its last day
    assert quotes.expire_quotes(conn, late.date()) == [quote_id]
    assert quotes.get_quote(conn, quote_id).status == "expired"
    assert quotes.get_quote(conn, draft).status == "draft"


def test_revised_quote_is_a_new_version(conn: Connection, account_id: int, catalogue: dict[str, int]) -> None:
    first = _quote(conn, account_id, catalogue)
    quotes.send_quote(conn, first, now=NOW)
    second = quotes.revise_quote(conn, first, now=NOW)
    row = quotes.get_quote(conn, second)
    assert (row.number, row.version, row.status, row.gross) == ("Q-2026-00001", 2, "draft", D("398.74"))
    with pytest.raises(DomainError) as err:
        quotes.revise_quote(conn, first, now=NOW)
    assert err.value.field == "version"


def test_order_from_accepted_quote(conn: Connection, account_id: int, catalogue: dict[str, int]) -> None:
    draft = _quote(conn, account_id, catalogue)
    with pytest.raises(DomainError, match="not accepted"):
        orders.create_order_from_quote(conn, draft, now=NOW)
    quote_id = _accepted(conn, account_id, catalogue)
    with pytest.raises(DomainError) as err:
        orders.create_order_from_quote(conn, quote_id, drop_lines={9}, now=NOW)
    assert err.value.field == "drop_lines"
    order_id = orders.create_order_from_quote(conn, quote_id, drop_lines={4}, now=NOW)
    row = orders.get_order(conn, order_id)
    assert (row.number, row.status, row.net) == ("A-2026-00001", "open", D("308.10"))
    lines = conn.execute(sa.select(order_position.c.description).order_by(order_position.c.line_no)).scalars()
    assert list(lines) == ["ADSL 50", "Modem FritzBox", "Einrichtung"]
    assert [s["steps"] for s in orders.sub_orders(conn, order_id)] == ["ip", "hardware"]  # not the setup fee
    with pytest.raises(DomainError, match="already been ordered"):
        orders.create_order_from_quote(conn, quote_id, now=NOW)


SITE = {"name": "Muster GmbH", "street": "Werkstraße 5", "postal_code": "80331", "city": "München", "country": "DE"}


def test_an_order_with_hardware_needs_a_delivery_address_before_production(
    conn: Connection, account_id: int, catalogue: dict[str, int]
) -> None:
    order_id = orders.create_order_from_quote(conn, _accepted(conn, account_id, catalogue), now=NOW)
    assert orders.delivery_address(conn, order_id) is None  # the account has no address to default to
    with pytest.raises(DomainError) as err:
        orders.start_production(conn, order_id)
    assert err.value.field == "delivery_address" and "ships hardware" in str(err.value)
    with pytest.raises(DomainError) as err:
        orders.set_delivery_address(conn, order_id, {**SITE, "city": " "})
    assert err.value.field == "delivery_address.city"
    supplier_style = {("postalCode" if key == "postal_code" else key): value for key, value in SITE.items()}
    orders.set_delivery_address(conn, order_id, supplier_style)
    orders.start_production(conn, order_id)
    assert orders.delivery_address(conn, order_id) == SITE
    with pytest.raises(DomainError, match="while the order is open"):
        orders.set_delivery_address(conn, order_id, SITE)


def test_an_order_takes_the_account_address_unless_given_another(
    conn: Connection, account_id: int, catalogue: dict[str, int]
) -> None:
    add_address(conn, account_id, "billing", "Musterweg 1", "10115", "Berlin")
    add_address(conn, account_id, "installation", "Werkstraße 5", "80331", "München")
    first = orders.create_order_from_quote(conn, _accepted(conn, account_id, catalogue), now=NOW)
    assert orders.delivery_address(conn, first) == SITE  # the installation address before the billing one
    other = {**SITE, "street": "Lager 3", "city": "Augsburg", "postal_code": "86150"}
    second = orders.create_order_from_quote(conn, _accepted(conn, account_id, catalogue), now=NOW, delivery=other)
    assert orders.delivery_address(conn, second) == other


def test_adjusting_an_order(conn: Connection, account_id: int, catalogue: dict[str, int]) -> None:
    add_address(conn, account_id, "billing", "Musterweg 1", "10115", "Berlin")
    order_id = orders.create_order_from_quote(conn, _accepted(conn, account_id, catalogue), now=NOW)
    totals = orders.adjust_position(conn, order_id, 2, orders.Adjustment(quantity=D("1")))
    assert totals.positions[1] == D("134.10")
    totals = orders.adjust_position(conn, order_id, 1, orders.Adjustment(remove=True))
    assert orders.get_order(conn, order_id).net == totals.net == D("164.10")
    assert [s["steps"] for s in orders.sub_orders(conn, order_id)] == ["hardware"]
    with pytest.raises(DomainError) as err:
        orders.adjust_position(conn, order_id, 7, orders.Adjustment(quantity=D("1")))
    assert err.value.field == "line_no"
    orders.start_production(conn, order_id)
    with pytest.raises(DomainError, match="open"):
        orders.adjust_position(conn, order_id, 1, orders.Adjustment(quantity=D("2")))


def test_order_is_delivered_when_every_sub_order_is_done(
    conn: Connection, account_id: int, catalogue: dict[str, int]
) -> None:
    add_address(conn, account_id, "billing", "Musterweg 1", "10115", "Berlin")
    order_id = orders.create_order_from_quote(conn, _accepted(conn, account_id, catalogue), now=NOW)
    orders.start_production(conn, order_id)
    first, second = (s["id"] for s in orders.sub_orders(conn, order_id))
    with pytest.raises(DomainError, match="from 'pending' to 'done'"):
        orders.set_sub_order_status(conn, first, "done")
    for sub in (first, second):
        orders.set_sub_order_status(conn, sub, "in_progress")
    orders.set_sub_order_status(conn, first, "done", now=NOW)
    orders.set_sub_order_status(conn, second, "failed")
    assert orders.get_order(conn, order_id).status == "in_production"
    orders.set_sub_order_status(conn, second, "in_progress")
    orders.set_sub_order_status(conn, second, "done", now=NOW)
    assert orders.get_order(conn, order_id).status == "delivered"


def test_invoice_numbers_per_year(conn: Connection, account_id: int, catalogue: dict[str, int]) -> None:
    order_id = orders.create_order_from_quote(conn, _accepted(conn, account_id, catalogue), now=NOW)
    first = invoices.create_invoice_from_order(conn, order_id, date(2026, 12, 31), now=NOW)
    line = [PositionInput(D("1"), catalogue["ADSL50"])]
    second = invoices.create_invoice(conn, account_id, line, date(2026, 12, 31), now=NOW)
    next_year = invoices.create_invoice(conn, account_id, line, date(2027, 1, 1), payment_days=30, now=NOW)
    rows = [invoices.get_invoice(conn, i) for i in (first, second, next_year)]
    assert [r.number for r in rows] == ["R-2026-00001", "R-2026-00002", "R-2027-00001"]
    # the one-off positions; the monthly line is billed from the day its service starts, by the monthly runs
    assert rows[0].gross == D("351.26") and rows[0].due_date == date(2027, 1, 14)
    assert rows[2].due_date == date(2027, 1, 31)
    assert invoices.overdue_invoices(conn, date(2027, 1, 15)) == [first, second]
    invoices.mark_paid(conn, first, now=NOW)
    invoices.cancel_invoice(conn, second)
    with pytest.raises(DomainError):
        invoices.mark_paid(conn, second, now=NOW)
    assert invoices.overdue_invoices(conn, date(2027, 2, 15)) == [next_year]
    with pytest.raises(DomainError) as err:
        invoices.create_invoice(conn, account_id, line, date(2027, 1, 1), payment_days=-1)
    assert err.value.field == "payment_days"


def test_payment_reminders(conn: Connection, account_id: int, catalogue: dict[str, int]) -> None:
    line = [PositionInput(D("1"), catalogue["ADSL50"])]
    invoice_id = invoices.create_invoice(conn, account_id, line, date(2026, 3, 1), now=NOW)  # due 2026-03-15
    with pytest.raises(DomainError) as err:
        invoices.record_reminder(conn, invoice_id, date(2026, 3, 15))
    assert err.value.field == "due_date"
    assert invoices.record_reminder(conn, invoice_id, date(2026, 3, 16)) == 1
    with pytest.raises(DomainError) as err:
        invoices.record_reminder(conn, invoice_id, date(2026, 3, 29))
    assert err.value.field == "last_reminder_on"
    assert invoices.record_reminder(conn, invoice_id, date(2026, 3, 30)) == 2
    assert invoices.record_reminder(conn, invoice_id, date(2026, 4, 13)) == 3
    with pytest.raises(DomainError) as err:
        invoices.record_reminder(conn, invoice_id, date(2026, 5, 1))
    assert err.value.field == "reminders_sent"
    row = invoices.get_invoice(conn, invoice_id)
    assert (row.reminders_sent, row.last_reminder_on) == (3, date(2026, 4, 13))
    invoices.mark_paid(conn, invoice_id, now=NOW)
    with pytest.raises(DomainError) as err:
        invoices.record_reminder(conn, invoice_id, date(2026, 5, 1))
    assert err.value.field == "status"
