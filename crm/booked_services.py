"""Booked services: what a customer has (product, quantity, dates, billing period, provisioning data).

An order's recurring positions become booked services in status ``ordered``; production fills in the
provisioning data (domain, IP address, modem serial) and activates them; billing and incidents refer to them.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .accounts import get_account
from .errors import DomainError
from .orders import get_order
from .schema import booked_service, order_position, product
from .status import Transitions, change_status

SERVICE_TRANSITIONS: Transitions = {
    "ordered": frozenset({"active", "cancelled"}),
    "active": frozenset({"suspended", "cancelled"}),
    "suspended": frozenset({"active", "cancelled"}),
}
BILLING_PERIODS = {"recurring_monthly": "monthly", "recurring_yearly": "yearly"}
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")


def get_service(conn: Connection, service_id: int) -> sa.Row[tuple[object, ...]]:
    row = conn.execute(sa.select(booked_service).where(booked_service.c.id == service_id)).one_or_none()
    if row is None:
        raise DomainError("booked_service_id", f"booked service {service_id} does not exist")
    return row


def _billing_period(conn: Connection, product_id: int) -> str:
    kind = conn.execute(sa.select(product.c.kind).where(product.c.id == product_id)).scalar_one_or_none()
    if kind is None:
        raise DomainError("product_id", f"product {product_id} does not exist")
    if kind not in BILLING_PERIODS:
        raise DomainError("product_id", f"product {product_id} is a one-off ({kind}), not a service to book")
    return BILLING_PERIODS[kind]


def book_service(
    conn: Connection,
    account_id: int,
    product_id: int,
    quantity: Decimal = Decimal(1),
    *,
    order_id: int | None = None,
    order_position_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Record a recurring product on an account; its billing period follows the product's kind."""
    get_account(conn, account_id)
    if not isinstance(quantity, Decimal) or not quantity.is_finite() or quantity <= 0:
        raise DomainError("quantity", f"quantity must be a positive Decimal, got {quantity!r}")
    values = {
        "account_id": account_id,
        "product_id": product_id,
        "order_id": order_id,
        "order_position_id": order_position_id,
        "quantity": quantity,
        "billing_period": _billing_period(conn, product_id),
        "status": "ordered",
        "created_at": v.timestamp(now),
    }
    return int(
        conn.execute(booked_service.insert().values(**values).returning(booked_service.c.id)).scalar_one()
    )


def book_order_services(conn: Connection, order_id: int, now: datetime | None = None) -> list[int]:
    """One booked service per recurring position of the order (hardware and setup fees are one-offs)."""
    source = get_order(conn, order_id)
    if source.status == "cancelled":
        raise DomainError("order_id", f"order {source.number} is cancelled")
    if conn.execute(sa.select(booked_service.c.id).where(booked_service.c.order_id == order_id)).first():
        raise DomainError("order_id", f"the services of order {source.number} are already booked")
    lines = conn.execute(
        sa.select(order_position.c.id, order_position.c.product_id, order_position.c.quantity)
        .join(product, product.c.id == order_position.c.product_id)
        .where(order_position.c.order_id == order_id, product.c.kind.in_(BILLING_PERIODS))
        .order_by(order_position.c.line_no)
    )
    return [
        book_service(
            conn,
            source.account_id,
            line.product_id,
            line.quantity,
            order_id=order_id,
            order_position_id=line.id,
            now=now,
        )
        for line in lines.all()
    ]


def set_provisioning(
    conn: Connection,
    service_id: int,
    *,
    domain_name: str | None = None,
    ip_address: str | None = None,
    modem_serial: str | None = None,
) -> None:
    """Store what production set up; values given replace the stored ones, each checked for its form."""
    get_service(conn, service_id)
    values: dict[str, str] = {}
    if domain_name is not None:
        name = domain_name.strip().lower().rstrip(".")
        if not _DOMAIN.match(name):
            raise DomainError("domain_name", f"domain_name {domain_name!r} is not a valid domain name")
        values["domain_name"] = name
    if ip_address is not None:
        text = ip_address.strip()
        try:
            parsed = ipaddress.ip_network(text) if "/" in text else ipaddress.ip_address(text)
        except ValueError as exc:
            raise DomainError(
                "ip_address", f"ip_address {ip_address!r} is not an IP address or network"
            ) from exc
        values["ip_address"] = str(parsed)
    if modem_serial is not None:
        values["modem_serial"] = v.required_text("modem_serial", modem_serial, 100)
    if values:
        conn.execute(booked_service.update().where(booked_service.c.id == service_id).values(**values))


def activate_service(
    conn: Connection, service_id: int, start_date: date, contract_end: date | None = None
) -> None:
    """The service runs from ``start_date`` (billing starts then)."""
    if contract_end is not None and contract_end < start_date:
        raise DomainError("contract_end", "contract_end must not be before start_date")
    change_status(
        conn,
        booked_service,
        service_id,
        SERVICE_TRANSITIONS,
        "active",
        start_date=start_date,
        contract_end=contract_end,
    )


def suspend_service(conn: Connection, service_id: int) -> None:
    """E.g. for unpaid invoices; resumed by :func:`resume_service`."""
    change_status(conn, booked_service, service_id, SERVICE_TRANSITIONS, "suspended")


def resume_service(conn: Connection, service_id: int) -> None:
    change_status(conn, booked_service, service_id, SERVICE_TRANSITIONS, "active")


def cancel_service(conn: Connection, service_id: int, now: datetime | None = None) -> None:
    change_status(
        conn, booked_service, service_id, SERVICE_TRANSITIONS, "cancelled", cancelled_at=v.timestamp(now)
    )


def services_of(conn: Connection, account_id: int) -> list[sa.Row[tuple[object, ...]]]:
    """The account's services with product code and name, newest first."""
    query = (
        sa.select(booked_service, product.c.code.label("product_code"), product.c.name.label("product_name"))
        .join(product, product.c.id == booked_service.c.product_id)
        .where(booked_service.c.account_id == account_id)
        .order_by(booked_service.c.id.desc())
    )
    return list(conn.execute(query))
