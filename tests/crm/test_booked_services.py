"""Booked services: from an order's recurring positions, provisioning data, status rules, contracts' end."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy.engine import Connection

from crm import booked_services as bs
from crm import orders, quotes
from crm.errors import DomainError
from crm.positions import PositionInput

from .conftest import NOW, TODAY


def _order(conn: Connection, account_id: int, catalogue: dict[str, int]) -> int:
    quote_id = quotes.create_quote(
        conn,
        account_id,
        [
            PositionInput(D("2"), catalogue["ADSL50"]),
            PositionInput(D("1"), catalogue["MODEM"]),
            PositionInput(D("1"), catalogue["SETUP"]),
        ],
        TODAY + timedelta(days=30),
        now=NOW,
    )
    quotes.send_quote(conn, quote_id, now=NOW)
    quotes.accept_quote(conn, quote_id, now=NOW)
    return orders.create_order_from_quote(conn, quote_id, now=NOW)


def test_order_books_its_recurring_positions(
    conn: Connection, account_id: int, catalogue: dict[str, int]
) -> None:
    order_id = _order(conn, account_id, catalogue)
    [service_id] = bs.book_order_services(conn, order_id, now=NOW)  # modem and setup fee are one-offs
    row = bs.get_service(conn, service_id)
    assert (row.status, row.billing_period, row.quantity, row.order_id) == (
        "ordered",
        "monthly",
        D("2"),
        order_id,
    )
    with pytest.raises(DomainError, match="already booked"):
        bs.book_order_services(conn, order_id)
    [listed] = bs.services_of(conn, account_id)
    assert (listed.product_code, listed.status) == ("ADSL50", "ordered")


def test_provisioning_data_is_validated(conn: Connection, account_id: int, catalogue: dict[str, int]) -> None:
    service_id = bs.book_service(conn, account_id, catalogue["ADSL50"], now=NOW)
    bs.set_provisioning(
        conn,
        service_id,
        domain_name="Muster-GmbH.de.",
        ip_address="192.0.2.17",
        modem_serial=" AVM-7530-001 ",
    )
    bs.set_provisioning(conn, service_id, ip_address="2001:db8:100::/56")
    row = bs.get_service(conn, service_id)
    assert (row.domain_name, row.ip_address, row.modem_serial) == (
        "muster-gmbh.de",
        "2001:db8:100::/56",
        "AVM-7530-001",
    )
    bs.set_provisioning(conn, service_id, ip_address=" 192.0.2.17 ")
    assert bs.get_service(conn, service_id).ip_address == "192.0.2.17"
    for kwargs, field in [
        ({"domain_name": "-bad-.de"}, "domain_name"),
        ({"domain_name": "localhost"}, "domain_name"),
        ({"ip_address": "300.1.1.1"}, "ip_address"),
        ({"ip_address": "192.0.2.17/29"}, "ip_address"),
        ({"modem_serial": " "}, "modem_serial"),
    ]:
        with pytest.raises(DomainError) as err:
            bs.set_provisioning(conn, service_id, **kwargs)
        assert err.value.field == field


def test_service_status_rules(conn: Connection, account_id: int, catalogue: dict[str, int]) -> None:
    service_id = bs.book_service(conn, account_id, catalogue["ADSL50"], D("1"), now=NOW)
    with pytest.raises(DomainError, match="from 'ordered' to 'suspended'"):
        bs.suspend_service(conn, service_id)
    with pytest.raises(DomainError) as err:
        bs.activate_service(conn, service_id, date(2026, 4, 1), contract_end=date(2026, 3, 31))
    assert err.value.field == "contract_end"
    bs.activate_service(conn, service_id, date(2026, 4, 1))
    bs.suspend_service(conn, service_id)
    bs.resume_service(conn, service_id)
    bs.cancel_service(conn, service_id, now=NOW)
    row = bs.get_service(conn, service_id)
    assert (row.status, row.start_date, row.cancelled_at) == ("cancelled", date(2026, 4, 1), NOW)
    with pytest.raises(DomainError):
        bs.resume_service(conn, service_id)


def test_only_recurring_products_are_booked(
    conn: Connection, account_id: int, catalogue: dict[str, int]
) -> None:
    for kwargs, field in [
        ({"product_id": catalogue["MODEM"]}, "product_id"),
        ({"product_id": 9999}, "product_id"),
        ({"product_id": catalogue["ADSL50"], "quantity": D("0")}, "quantity"),
    ]:
        with pytest.raises(DomainError) as err:
            bs.book_service(conn, account_id, **kwargs)  # type: ignore[arg-type]
        assert err.value.field == field
