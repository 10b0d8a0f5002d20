"""Production of an order: what each sub-order must provision, and recording what provisioning produced.

A sub-order stands for one order position that needs provisioning steps (domain, ip, hardware). What the steps
produce (a domain name, an IP address, a modem serial) lands on the account's booked services: on the service of
the same position, and a modem's serial on the access line it is for (hardware is a one-off, not a service).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import booked_services, orders
from .errors import DomainError
from .schema import booked_service, order_position, product, sub_order

_DOMAIN_IN_TEXT = re.compile(r"\b((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})\b", re.IGNORECASE)
ON_SITE_CATEGORIES = ("access", "housing")  # a technician installs the hardware on site


def production_plan(conn: Connection, order_id: int) -> list[dict[str, Any]]:
    """One entry per sub-order: its steps, the product, a wished domain name found in the position text and the
    order's delivery address."""
    order_row = orders.get_order(conn, order_id)
    result = conn.execute(
        sa.select(sub_order.c.id, sub_order.c.steps, sub_order.c.status, order_position.c.id.label("position_id"),
                  order_position.c.line_no, order_position.c.description, order_position.c.quantity,
                  product.c.code, product.c.name, product.c.category)
        .join(order_position, order_position.c.id == sub_order.c.order_position_id)
        .join(product, product.c.id == order_position.c.product_id)
        .where(sub_order.c.order_id == order_id).order_by(order_position.c.line_no))
    rows = result.all()
    on_site = any(row.category in ON_SITE_CATEGORIES for row in rows)
    delivery = orders.delivery_address(conn, order_id)  # the review settled it; the supplier ships there
    plan = []
    for row in rows:
        steps = [s for s in str(row.steps).split(",") if s]
        wished = _DOMAIN_IN_TEXT.search(str(row.description or "")) if "domain" in steps else None
        plan.append({
            "sub_order_id": row.id, "position_id": row.position_id, "line_no": row.line_no, "status": row.status,
            "steps": steps, "step": steps[0] if steps else "none", "product_code": row.code,
            "product_name": row.name, "category": row.category, "quantity": int(row.quantity),
            "domain_name": wished.group(1).lower() if wished else None,
            "on_site": on_site and "hardware" in steps, "account_id": order_row.account_id,
            "order_number": order_row.number, "delivery_address": delivery,
        })
    return plan


def advance_sub_order(conn: Connection, sub_order_id: int, status: str, now: datetime | None = None) -> str:
    """Move a sub-order on; asking for the status it already has is a no-op (a retried job repeats itself)."""
    current = conn.execute(sa.select(sub_order.c.status).where(sub_order.c.id == sub_order_id)).scalar_one_or_none()
    if current is None:
        raise DomainError("sub_order_id", f"sub-order {sub_order_id} does not exist")
    if current != status:
        orders.set_sub_order_status(conn, sub_order_id, status, now)
    return status


def record_provisioning(conn: Connection, order_id: int, results: Sequence[dict[str, Any]], start_date: date,
                        now: datetime | None = None) -> list[int]:
    """Book the order's recurring services, store what provisioning produced on them and activate them.

    ``results`` holds one dict per sub-order: ``position_id`` and any of ``domain_name``, ``ip_address``,
    ``modem_serial``. Booking twice is refused by the booking rule, so a retried job reads the booked ones back.
    """
    existing = [int(i) for i in conn.execute(
        sa.select(booked_service.c.id).where(booked_service.c.order_id == order_id)
        .order_by(booked_service.c.id)).scalars()]
    if existing:
        return existing
    service_ids = booked_services.book_order_services(conn, order_id, now=now)
    by_position = {int(booked_services.get_service(conn, sid).order_position_id or 0): sid for sid in service_ids}
    access = _access_service(conn, service_ids)
    for result in results:
        if not isinstance(result, dict):
            raise DomainError("results", "each provisioning result must be an object")
        position = int(result.get("position_id") or 0)
        target = by_position.get(position)
        if result.get("modem_serial") and target is None:
            target = access
        if target is None:
            continue
        booked_services.set_provisioning(conn, target, domain_name=result.get("domain_name"),
                                         ip_address=result.get("ip_address"),
                                         modem_serial=result.get("modem_serial"))
    for service_id in service_ids:
        booked_services.activate_service(conn, service_id, start_date)
    return service_ids


def _access_service(conn: Connection, service_ids: list[int]) -> int | None:
    if not service_ids:
        return None
    rows = conn.execute(
        sa.select(booked_service.c.id, product.c.category).join(product, product.c.id == booked_service.c.product_id)
        .where(booked_service.c.id.in_(service_ids)).order_by(booked_service.c.id)).all()
    return next((int(r.id) for r in rows if r.category == "access"), int(rows[0].id))


def services_summary(conn: Connection, service_ids: Sequence[int]) -> list[dict[str, Any]]:
    """What the access-data mail tells the customer."""
    if not service_ids:
        return []
    rows = conn.execute(
        sa.select(booked_service.c.id, product.c.name, booked_service.c.domain_name, booked_service.c.ip_address,
                  booked_service.c.modem_serial, booked_service.c.status, booked_service.c.start_date)
        .join(product, product.c.id == booked_service.c.product_id)
        .where(booked_service.c.id.in_(list(service_ids))).order_by(booked_service.c.id))
    return [{"service_id": r.id, "product_name": r.name, "domain_name": r.domain_name, "ip_address": r.ip_address,
             "modem_serial": r.modem_serial, "status": r.status,
             "start_date": r.start_date.isoformat() if r.start_date else None} for r in rows]
