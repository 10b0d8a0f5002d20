"""Positions of quotes, orders and invoices: product defaults, totals from ``crm.pricing``, one write path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .errors import DomainError
from .pricing import PriceLine, Totals, compute_totals
from .schema import invoice_position, order_position, product, quote_position


@dataclass(frozen=True)
class PositionInput:
    """A position as entered: with a product, price, VAT rate and description default to the catalogue."""

    quantity: Decimal
    product_id: int | None = None
    description: str | None = None
    unit_price: Decimal | None = None
    vat_rate: Decimal | None = None
    discount_percent: Decimal | None = None
    discount_amount: Decimal | None = None


def resolve(
    conn: Connection, inputs: Sequence[PositionInput], allow_inactive: bool = False
) -> list[dict[str, Any]]:
    """Fill catalogue defaults; a new document may only offer active products."""
    if not inputs:
        raise DomainError("positions", "at least one position is required")
    ids = {p.product_id for p in inputs if p.product_id is not None}
    products = (
        {int(row.id): row for row in conn.execute(sa.select(product).where(product.c.id.in_(ids)))}
        if ids
        else {}
    )
    resolved = []
    for index, item in enumerate(inputs, start=1):
        where = f"positions[{index - 1}]"
        row = products.get(item.product_id) if item.product_id is not None else None
        if item.product_id is not None and row is None:
            raise DomainError(f"{where}.product_id", f"product {item.product_id} does not exist")
        if row is not None and not row.active and not allow_inactive:
            raise DomainError(f"{where}.product_id", f"product {row.code} is no longer sold")
        unit_price = item.unit_price if item.unit_price is not None else (row.list_price if row else None)
        vat_rate = item.vat_rate if item.vat_rate is not None else (row.vat_rate if row else None)
        description = item.description or (row.name if row else None)
        if unit_price is None:
            raise DomainError(f"{where}.unit_price", "unit_price is required for a position without product")
        if vat_rate is None:
            raise DomainError(f"{where}.vat_rate", "vat_rate is required for a position without product")
        resolved.append(
            {
                "line_no": index,
                "product_id": item.product_id,
                "description": v.required_text(f"{where}.description", description, 500),
                "quantity": item.quantity,
                "unit_price": v.money(f"{where}.unit_price", unit_price),
                "discount_percent": item.discount_percent,
                "discount_amount": item.discount_amount,
                "vat_rate": vat_rate,
            }
        )
    return resolved


def _price_line(line: dict[str, Any]) -> PriceLine:
    return PriceLine(
        quantity=line["quantity"],
        unit_price=line["unit_price"],
        vat_rate=line["vat_rate"],
        discount_percent=line.get("discount_percent"),
        discount_amount=line.get("discount_amount"),
    )


def write(
    conn: Connection,
    document: sa.Table,
    table: sa.Table,
    parent: str,
    parent_id: int,
    lines: list[dict[str, Any]],
) -> Totals:
    """Replace the positions of one document and store its net, VAT and gross on the document row."""
    totals = compute_totals(_price_line(line) for line in lines)
    conn.execute(
        document.update()
        .where(document.c.id == parent_id)
        .values(net=totals.net, vat=totals.vat, gross=totals.gross)
    )
    conn.execute(table.delete().where(table.c[parent] == parent_id))
    rows = [
        {**line, "line_no": i, parent: parent_id, "total": total}
        for i, (line, total) in enumerate(zip(lines, totals.positions, strict=True), start=1)
    ]
    conn.execute(table.insert(), rows)
    return totals


def read(conn: Connection, table: sa.Table, parent: str, parent_id: int) -> list[dict[str, Any]]:
    """Positions in line order, as dicts ready to be copied into another document."""
    rows = conn.execute(sa.select(table).where(table.c[parent] == parent_id).order_by(table.c.line_no))
    return [dict(row._mapping) for row in rows]


def of_quote(conn: Connection, quote_id: int) -> list[dict[str, Any]]:
    """A quote's positions in line order."""
    return read(conn, quote_position, "quote_id", quote_id)


def of_order(conn: Connection, order_id: int) -> list[dict[str, Any]]:
    """An order's positions in line order."""
    return read(conn, order_position, "order_id", order_id)


def of_invoice(conn: Connection, invoice_id: int) -> list[dict[str, Any]]:
    """An invoice's positions in line order."""
    return read(conn, invoice_position, "invoice_id", invoice_id)


def totals_of(lines: Sequence[dict[str, Any]]) -> Totals:
    """Recompute totals of stored positions (e.g. VAT per rate for a PDF)."""
    return compute_totals(_price_line(line) for line in lines)


COPIED = (
    "product_id",
    "description",
    "quantity",
    "unit_price",
    "discount_percent",
    "discount_amount",
    "vat_rate",
)


def copy_lines(lines: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The priced fields of positions, without ids, for taking them over into the next document."""
    return [{key: line[key] for key in COPIED} for line in lines]


PERIOD_OF_KIND = {"recurring_monthly": "monthly", "recurring_yearly": "yearly"}  # every other kind is a one-off


def periods_of(conn: Connection, lines: Sequence[dict[str, Any]]) -> list[str]:
    """Per position how often it is paid — ``once``, ``monthly`` or ``yearly`` — from its product's kind, so a
    document can sum each separately instead of adding a monthly fee to a one-off price."""
    ids = {line["product_id"] for line in lines if line.get("product_id") is not None}
    query = sa.select(product.c.id, product.c.kind).where(product.c.id.in_(ids))
    kinds: dict[Any, str] = {int(r.id): r.kind for r in conn.execute(query)} if ids else {}
    return [PERIOD_OF_KIND.get(str(kinds.get(line.get("product_id"))), "once") for line in lines]
