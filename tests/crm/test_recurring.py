"""Recurring billing: pro rata months, yearly anniversaries, no period billed twice, half-up cents."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crm import booked_services as services
from crm import invoices, orders, quotes, recurring
from crm.accounts import create_account
from crm.errors import DomainError
from crm.positions import PositionInput
from crm.products import ProductInput, create_product
from crm.schema import invoice, invoice_position

from .conftest import NOW, TODAY


def _service(conn: Connection, account_id: int, product_id: int, start: date, end: date | None = None,
             quantity: D = D("1")) -> int:
    service_id = services.book_service(conn, account_id, product_id, quantity, now=NOW)
    services.activate_service(conn, service_id, start, end)
    return service_id


def _lines(conn: Connection, invoice_id: int) -> list[sa.Row[tuple[object, ...]]]:
    query = sa.select(invoice_position).where(invoice_position.c.invoice_id == invoice_id)
    return list(conn.execute(query.order_by(invoice_position.c.line_no)))


@pytest.fixture
def yearly(conn: Connection) -> int:
    return create_product(conn, ProductInput("DOMAIN", "Domain .de", "domain", "recurring_yearly", D("120.00")))


def test_start_on_the_16th_of_a_30_day_month_costs_half(
    conn: Connection, account_id: int, catalogue: dict[str, int]
) -> None:
    service_id = _service(conn, account_id, catalogue["ADSL50"], date(2026, 4, 16))
    assert recurring.bill_period(conn, account_id, 2026, 3, NOW) is None  # not running yet
    april = recurring.bill_period(conn, account_id, 2026, 4, NOW)
    assert april is not None
    (line,) = _lines(conn, april)
    assert (line.unit_price, line.quantity, line.total) == (D("19.95"), D("1"), D("19.95"))
    assert "16.04.2026–30.04.2026" in line.description and "anteilig 15/30 Tage" in line.description
    assert recurring.parse_marker(line.description) == (service_id, 2026, 4)
    row = invoices.get_invoice(conn, april)
    assert (row.net, row.vat, row.gross) == (D("19.95"), D("3.79"), D("23.74"))
    assert row.issue_date == TODAY and row.number.startswith("R-2026-")
    may = recurring.bill_period(conn, account_id, 2026, 5, NOW)
    assert may is not None
    (full,) = _lines(conn, may)
    assert (full.unit_price, full.total) == (D("39.90"), D("39.90")) and "anteilig" not in full.description


def test_a_service_ending_mid_month_pays_its_days_only(
    conn: Connection, account_id: int, catalogue: dict[str, int]
) -> None:
    _service(conn, account_id, catalogue["ADSL50"], date(2026, 1, 1), end=date(2026, 3, 10))
    march = recurring.bill_period(conn, account_id, 2026, 3, NOW)
    assert march is not None
    (line,) = _lines(conn, march)
    assert line.unit_price == D("12.87")  # 39.90 × 10/31 = 12.8709…
    assert "01.03.2026–10.03.2026" in line.description and "10/31" in line.description
    assert recurring.bill_period(conn, account_id, 2026, 4, NOW) is None  # contract over


def test_a_cancelled_service_is_billed_until_the_day_of_cancellation(
    conn: Connection, account_id: int, catalogue: dict[str, int]
) -> None:
    service_id = _service(conn, account_id, catalogue["ADSL50"], date(2026, 2, 1))
    services.cancel_service(conn, service_id, now=datetime(2026, 3, 20, 12, 0, tzinfo=UTC))
    march = recurring.bill_period(conn, account_id, 2026, 3, NOW)
    assert march is not None
    assert _lines(conn, march)[0].unit_price == D("25.74")  # 39.90 × 20/31 = 25.741…
    assert recurring.bill_period(conn, account_id, 2026, 4, NOW) is None


def test_services_not_yet_activated_are_not_billed(
    conn: Connection, account_id: int, catalogue: dict[str, int]
) -> None:
    services.book_service(conn, account_id, catalogue["ADSL50"], now=NOW)  # ordered, no start date
    assert recurring.period_lines(conn, account_id, 2026, 3) == []
    assert recurring.bill_period(conn, account_id, 2026, 3, NOW) is None


def test_a_yearly_service_is_billed_only_in_its_anniversary_month(
    conn: Connection, account_id: int, yearly: int
) -> None:
    service_id = _service(conn, account_id, yearly, date(2026, 3, 5), end=date(2028, 3, 4))
    first = recurring.bill_period(conn, account_id, 2026, 3, NOW)
    assert first is not None
    (line,) = _lines(conn, first)
    assert (line.unit_price, line.total) == (D("120.00"), D("120.00"))  # no pro rata for the yearly fee
    assert "05.03.2026–04.03.2027" in line.description
    for month in (4, 5, 12):
        assert recurring.bill_period(conn, account_id, 2026, month, NOW) is None
    assert recurring.bill_period(conn, account_id, 2027, 2, NOW) is None
    second = recurring.bill_period(conn, account_id, 2027, 3, NOW)
    assert second is not None and recurring.parse_marker(_lines(conn, second)[0].description) == (
        service_id, 2027, 3)
    assert recurring.bill_period(conn, account_id, 2028, 3, NOW) is None  # the contract ends on 4 March 2028


def test_a_period_is_never_billed_twice(conn: Connection, account_id: int, catalogue: dict[str, int]) -> None:
    first_service = _service(conn, account_id, catalogue["ADSL50"], date(2026, 1, 1))
    march = recurring.bill_period(conn, account_id, 2026, 3, NOW)
    assert march is not None
    assert recurring.bill_period(conn, account_id, 2026, 3, NOW) is None
    assert recurring.billed_services(conn, account_id, 2026, 3) == {first_service}
    assert recurring.invoice_of_period(conn, account_id, 2026, 3) == march
    # a service added later in the month is billed on its own, the first one is not repeated
    second_service = _service(conn, account_id, catalogue["ADSL50"], date(2026, 3, 17), quantity=D("2"))
    extra = recurring.bill_period(conn, account_id, 2026, 3, NOW)
    assert extra is not None
    (line,) = _lines(conn, extra)
    assert recurring.parse_marker(line.description) == (second_service, 2026, 3)
    assert (line.unit_price, line.quantity, line.total) == (D("19.31"), D("2"), D("38.62"))  # 39.90 × 15/31
    numbers = [invoices.get_invoice(conn, i).number for i in (march, extra)]
    assert numbers == ["R-2026-00001", "R-2026-00002"]  # gap-free
    # a cancelled invoice frees its period: the service can be billed again (and gets the next number)
    invoices.cancel_invoice(conn, march)
    again = recurring.bill_period(conn, account_id, 2026, 3, NOW)
    assert again is not None and invoices.get_invoice(conn, again).number == "R-2026-00003"
    assert recurring.parse_marker(_lines(conn, again)[0].description) == (first_service, 2026, 3)
    assert conn.execute(sa.select(sa.func.count()).select_from(invoice)).scalar_one() == 3


def test_pro_rata_prices_round_half_up_to_cents(conn: Connection, account_id: int) -> None:
    product_id = create_product(conn, ProductInput("VOIP", "VoIP-Kanal", "voice", "recurring_monthly", D("10.05")))
    _service(conn, account_id, product_id, date(2026, 6, 16), quantity=D("3"))
    (line,) = recurring.period_lines(conn, account_id, 2026, 6)
    assert (line.days, line.days_in_period) == (15, 30)
    assert line.unit_price == D("5.03")  # 5.025 rounds half-up, not to the even 5.02
    invoice_id = recurring.bill_period(conn, account_id, 2026, 6, NOW)
    assert invoice_id is not None
    assert _lines(conn, invoice_id)[0].total == D("15.09")
    row = invoices.get_invoice(conn, invoice_id)
    assert (row.net, row.vat, row.gross) == (D("15.09"), D("2.87"), D("17.96"))  # 2.8671 → 2.87


def test_the_agreed_order_price_and_discount_are_billed(
    conn: Connection, account_id: int, catalogue: dict[str, int]
) -> None:
    quote_id = quotes.create_quote(
        conn, account_id,
        [PositionInput(D("1"), catalogue["ADSL50"], unit_price=D("35.00"), discount_percent=D("10")),
         PositionInput(D("1"), catalogue["SETUP"])],
        TODAY + timedelta(days=30), now=NOW)
    quotes.send_quote(conn, quote_id, now=NOW)
    quotes.accept_quote(conn, quote_id, now=NOW)
    order_id = orders.create_order_from_quote(conn, quote_id, now=NOW)
    (service_id,) = services.book_order_services(conn, order_id, now=NOW)  # the setup fee is a one-off
    services.activate_service(conn, service_id, date(2026, 3, 1))
    (line,) = recurring.period_lines(conn, account_id, 2026, 3)
    assert (line.unit_price, line.discount_percent) == (D("35.00"), D("10.00"))
    invoice_id = recurring.bill_period(conn, account_id, 2026, 3, NOW)
    assert invoice_id is not None
    assert _lines(conn, invoice_id)[0].total == D("31.50")


def test_bill_all_accounts(conn: Connection, account_id: int, catalogue: dict[str, int]) -> None:
    other = create_account(conn, "Zweite AG", now=NOW)
    idle = create_account(conn, "Ohne Dienste KG", now=NOW)
    _service(conn, account_id, catalogue["ADSL50"], date(2026, 1, 1))
    _service(conn, other, catalogue["ADSL50"], date(2026, 3, 31))
    created = recurring.bill_all(conn, 2026, 3, NOW)
    assert set(created) == {account_id, other} and idle not in created
    assert _lines(conn, created[other])[0].unit_price == D("1.29")  # 39.90 × 1/31
    assert recurring.bill_all(conn, 2026, 3, NOW) == {}


def test_bad_periods_and_accounts_name_the_field(conn: Connection, account_id: int) -> None:
    assert recurring.parse_period("2026-03") == (2026, 3)
    for text in ("2026-13", "2026-3", "März", "", "1999-12"):
        with pytest.raises(DomainError) as err:
            recurring.parse_period(text)
        assert err.value.field == "period"
    with pytest.raises(DomainError) as err:
        recurring.bill_period(conn, account_id, 2026, 0, NOW)
    assert err.value.field == "period"
    with pytest.raises(DomainError) as err:
        recurring.bill_period(conn, 999999, 2026, 3, NOW)
    assert err.value.field == "account_id"
