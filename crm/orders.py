"""Orders from accepted quotes, and their sub-orders: one per position whose product needs provisioning."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import positions as pos
from . import validation as v
from .accounts import default_delivery_address
from .errors import DomainError
from .numbering import yearly_number
from .pricing import Totals
from .products import provisioning_steps
from .quotes import get_quote, require_discount_approval
from .schema import order, order_position, quote_position, sub_order
from .status import Transitions, change_status

ORDER_TRANSITIONS: Transitions = {
    "open": frozenset({"in_production", "cancelled"}),
    "in_production": frozenset({"delivered", "cancelled"}),
}
SUB_ORDER_TRANSITIONS: Transitions = {
    "pending": frozenset({"in_progress", "cancelled"}),
    "in_progress": frozenset({"done", "failed"}),
    "failed": frozenset({"in_progress", "cancelled"}),
}


def get_order(conn: Connection, order_id: int) -> sa.Row[tuple[object, ...]]:
    row = conn.execute(sa.select(order).where(order.c.id == order_id)).one_or_none()
    if row is None:
        raise DomainError("order_id", f"order {order_id} does not exist")
    return row


DELIVERY_FIELDS = {"name": 200, "street": 200, "postal_code": 20, "city": 100}


def delivery_values(address: Mapping[str, object]) -> dict[str, str]:
    """The order columns of a delivery address (name, street, postal code, city, ISO country, default DE);
    ``postalCode`` is taken for ``postal_code`` as the supplier writes it."""
    given = dict(address)
    if "postal_code" not in given and "postalCode" in given:
        given["postal_code"] = given["postalCode"]
    values = {f"delivery_{key}": v.required_text(f"delivery_address.{key}", given.get(key), limit)
              for key, limit in DELIVERY_FIELDS.items()}
    country = v.required_text("delivery_address.country", given.get("country") or "DE", 2).upper()
    if len(country) != 2 or not country.isalpha():
        raise DomainError("delivery_address.country", "country must be a two-letter ISO code")
    values["delivery_country"] = country
    return values


def delivery_address(conn: Connection, order_id: int) -> dict[str, str] | None:
    """The order's delivery/installation address as production needs it; None while none was given."""
    row = get_order(conn, order_id)
    if row.delivery_street is None:
        return None
    return {"name": row.delivery_name, "street": row.delivery_street, "postal_code": row.delivery_postal_code,
            "city": row.delivery_city, "country": row.delivery_country}


def set_delivery_address(conn: Connection, order_id: int, address: Mapping[str, object]) -> None:
    """Where the hardware goes and the line is installed; changeable until production starts."""
    if get_order(conn, order_id).status != "open":
        raise DomainError("delivery_address", "the delivery address can only be changed while the order is open")
    conn.execute(order.update().where(order.c.id == order_id).values(**delivery_values(address)))


def _store_positions(conn: Connection, order_id: int, lines: list[dict[str, Any]]) -> Totals:
    return pos.write(conn, order, order_position, "order_id", order_id, lines)


def create_order_from_quote(
    conn: Connection, quote_id: int, drop_lines: Collection[int] = (), now: datetime | None = None,
    delivery: Mapping[str, object] | None = None,
) -> int:
    """Take over the accepted quote's positions except ``drop_lines`` (line numbers); one order per quote.
    ``delivery`` is the delivery/installation address the order review settled on; without one the order
    takes the account's (``accounts.default_delivery_address``), so every face starts from the same default."""
    source = get_quote(conn, quote_id)
    delivery = delivery if delivery is not None else default_delivery_address(conn, source.account_id)
    address = delivery_values(delivery) if delivery is not None else {}
    if source.status != "accepted":
        raise DomainError(
            "quote_id", f"quote {source.number} v{source.version} is {source.status}, not accepted"
        )
    if conn.execute(sa.select(order.c.id).where(order.c.quote_id == quote_id)).first() is not None:
        raise DomainError("quote_id", f"quote {source.number} has already been ordered")
    require_discount_approval(conn, quote_id)  # a quote accepted around the rule (older data) is not ordered
    all_lines = pos.read(conn, quote_position, "quote_id", quote_id)
    unknown = set(drop_lines) - {line["line_no"] for line in all_lines}
    if unknown:
        raise DomainError("drop_lines", f"the quote has no line(s) {sorted(unknown)}")
    kept = pos.copy_lines([line for line in all_lines if line["line_no"] not in drop_lines])
    if not kept:
        raise DomainError("drop_lines", "an order needs at least one position")
    created = v.timestamp(now)
    number, _ = yearly_number(conn, "order", "A", created.year)
    order_id = int(
        conn.execute(
            order.insert()
            .values(
                number=number,
                account_id=source.account_id,
                quote_id=quote_id,
                status="open",
                net=0,
                vat=0,
                gross=0,
                created_at=created,
                **address,
            )
            .returning(order.c.id)
        ).scalar_one()
    )
    _store_positions(conn, order_id, kept)
    _create_sub_orders(conn, order_id)
    return order_id


def _create_sub_orders(conn: Connection, order_id: int) -> None:
    """Build the sub-orders from the current positions (the order is still open: nothing produced yet)."""
    lines = pos.read(conn, order_position, "order_id", order_id)
    steps = provisioning_steps(conn, [line["product_id"] for line in lines if line["product_id"] is not None])
    rows = [
        {
            "order_id": order_id,
            "order_position_id": line["id"],
            "steps": ",".join(steps[line["product_id"]]),
            "status": "pending",
        }
        for line in lines
        if line["product_id"] in steps
    ]
    if rows:
        conn.execute(sub_order.insert(), rows)


@dataclass(frozen=True)
class Adjustment:
    """New values for an order position; ``None`` keeps the current value."""

    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    discount_percent: Decimal | None = None
    discount_amount: Decimal | None = None
    remove: bool = False


def adjust_position(conn: Connection, order_id: int, line_no: int, change: Adjustment) -> Totals:
    """Adjust or remove a position while the order is still open; totals and sub-orders follow."""
    if get_order(conn, order_id).status != "open":
        raise DomainError("status", "positions can only be adjusted while the order is open")
    lines = pos.copy_lines(pos.read(conn, order_position, "order_id", order_id))
    if not 1 <= line_no <= len(lines):
        raise DomainError("line_no", f"the order has no line {line_no}")
    if change.remove:
        del lines[line_no - 1]
        if not lines:
            raise DomainError("line_no", "an order needs at least one position; cancel it instead")
    else:
        line = lines[line_no - 1]
        for key in ("quantity", "unit_price"):
            if getattr(change, key) is not None:
                line[key] = getattr(change, key)
        if change.discount_percent is not None or change.discount_amount is not None:
            line["discount_percent"] = change.discount_percent
            line["discount_amount"] = change.discount_amount
    conn.execute(
        sub_order.delete().where(sub_order.c.order_id == order_id)
    )  # they point at the old positions
    totals = _store_positions(conn, order_id, lines)
    _create_sub_orders(conn, order_id)
    return totals


def sub_orders(conn: Connection, order_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(sub_order).where(sub_order.c.order_id == order_id).order_by(sub_order.c.id))
    return [dict(row._mapping) for row in rows]


def start_production(conn: Connection, order_id: int) -> None:
    """Hardware cannot be ordered without knowing where it goes: such an order needs its delivery address."""
    needs_address = any("hardware" in str(s["steps"]).split(",") for s in sub_orders(conn, order_id))
    if needs_address and get_order(conn, order_id).status == "open" and delivery_address(conn, order_id) is None:
        number = get_order(conn, order_id).number
        raise DomainError("delivery_address", f"order {number} ships hardware and needs a delivery address")
    change_status(conn, order, order_id, ORDER_TRANSITIONS, "in_production")


def set_sub_order_status(
    conn: Connection, sub_order_id: int, status: str, now: datetime | None = None
) -> None:
    """Advance a sub-order; when the last one is done, the order is delivered (DESIGN: delivery rule)."""
    extra = {"completed_at": v.timestamp(now)} if status == "done" else {}
    change_status(conn, sub_order, sub_order_id, SUB_ORDER_TRANSITIONS, status, **extra)
    order_id = conn.execute(
        sa.select(sub_order.c.order_id).where(sub_order.c.id == sub_order_id)
    ).scalar_one()
    statuses = {s["status"] for s in sub_orders(conn, order_id)} - {"cancelled"}
    if statuses == {"done"} and get_order(conn, order_id).status == "in_production":
        change_status(conn, order, order_id, ORDER_TRANSITIONS, "delivered", delivered_at=v.timestamp(now))


def cancel_order(conn: Connection, order_id: int) -> None:
    change_status(conn, order, order_id, ORDER_TRANSITIONS, "cancelled")
