"""Orders (``crm.orders``): an order from an accepted quote, its positions adjusted while open, sub-orders
per product advanced by production; 409 where the order's state does not allow the change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from sqlalchemy.engine import Connection

from crm import orders as crm_orders
from crm import positions as crm_positions
from crm import queries as crm_queries
from crm import quotes as crm_quotes
from crm.errors import DomainError
from engine.errors import NotFound

from ..deps import (
    AccountFilter,
    Amount,
    Id,
    Limit,
    Offset,
    Percent,
    Quantity,
    Reader,
    RefId,
    Search,
    StatusFilter,
    Text,
    Writer,
    crm_errors,
    document_view,
    engine_of,
    found,
)
from ..listing import camel_row, page
from ..models import Camel

router = APIRouter(tags=["sales"])


class DeliveryAddressIn(Camel):
    """Where the hardware goes and the line is installed; omitted: the account's address."""

    name: Text = Field(min_length=1, max_length=200)
    street: Text = Field(min_length=1, max_length=200)
    postal_code: Text = Field(min_length=1, max_length=20)
    city: Text = Field(min_length=1, max_length=100)
    country: Text = Field(default="DE", min_length=2, max_length=2)


class OrderIn(Camel):
    quote_id: RefId
    drop_lines: list[RefId] = Field(default_factory=list, max_length=500)
    delivery_address: DeliveryAddressIn | None = None


class AdjustmentIn(Camel):
    """New values for one order position; omitted ones stay. ``remove`` drops the position."""

    quantity: Quantity | None = None
    unit_price: Amount | None = None
    discount_percent: Percent | None = None
    discount_amount: Amount | None = None
    remove: bool = False


class SubOrderPatch(Camel):
    status: str = Field(min_length=1, max_length=30)


def _order_view(conn: Connection, order_id: int) -> dict[str, Any]:
    lines = crm_positions.of_order(conn, order_id)
    view = document_view(crm_orders.get_order(conn, order_id), lines)
    by_id = {line["id"]: line for line in lines}
    view["subOrders"] = [
        {**camel_row(sub), "steps": [s for s in sub["steps"].split(",") if s],
         "lineNo": by_id[sub["order_position_id"]]["line_no"],
         "description": by_id[sub["order_position_id"]]["description"]}
        for sub in crm_orders.sub_orders(conn, order_id)]
    return view


@router.get("/orders")
def list_orders(request: Request, _p: Reader, account_id: AccountFilter = None, status: StatusFilter = None,
                q: Search = "", limit: Limit = 50, offset: Offset = 0) -> Any:
    """Orders, newest first; ``q`` searches number and account name; ``format=csv`` for CSV."""
    with engine_of(request).db.read() as conn:
        rows, total = crm_queries.list_orders(conn, account_id, status, q, limit, offset)
    return page(request, rows, total, limit, offset, "orders")


@router.post("/orders", status_code=201)
def create_order(request: Request, body: OrderIn, _p: Writer) -> dict[str, Any]:
    """An order from an accepted quote, its positions taken over except ``dropLines``; one order per quote."""
    with engine_of(request).db.transaction() as conn:
        with crm_errors():
            crm_quotes.get_quote(conn, body.quote_id)  # unknown → 422 naming quoteId
        with crm_errors("quote_id"):
            delivery = body.delivery_address.model_dump() if body.delivery_address else None
            order_id = crm_orders.create_order_from_quote(conn, body.quote_id, body.drop_lines, delivery=delivery)
        return _order_view(conn, order_id)


@router.get("/orders/{order_id}")
def get_order(request: Request, order_id: Id, _p: Reader) -> dict[str, Any]:
    with engine_of(request).db.read() as conn:
        found(crm_orders.get_order, conn, order_id)
        return _order_view(conn, order_id)


@router.patch("/orders/{order_id}/positions/{line_no}")
def adjust_order_position(request: Request, order_id: Id, line_no: Id, body: AdjustmentIn,
                          _p: Writer) -> dict[str, Any]:
    """Adjust or remove a position while the order is open (409 later); totals and sub-orders follow."""
    with engine_of(request).db.transaction() as conn:
        found(crm_orders.get_order, conn, order_id)
        if line_no > len(crm_positions.of_order(conn, order_id)):
            raise NotFound(f"order {order_id} has no line {line_no}")
        with crm_errors("status", too_large="quantity"):
            crm_orders.adjust_position(conn, order_id, line_no, crm_orders.Adjustment(**body.model_dump()))
        return _order_view(conn, order_id)


def _order_action(request: Request, order_id: int, action: Callable[[Connection, int], None]) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        found(crm_orders.get_order, conn, order_id)
        with crm_errors("status"):
            action(conn, order_id)
        return _order_view(conn, order_id)


@router.post("/orders/{order_id}/start-production")
def start_production(request: Request, order_id: Id, _p: Writer) -> dict[str, Any]:
    return _order_action(request, order_id, crm_orders.start_production)


@router.post("/orders/{order_id}/cancel")
def cancel_order(request: Request, order_id: Id, _p: Writer) -> dict[str, Any]:
    return _order_action(request, order_id, crm_orders.cancel_order)


@router.patch("/orders/{order_id}/sub-orders/{sub_order_id}")
def patch_sub_order(request: Request, order_id: Id, sub_order_id: Id, body: SubOrderPatch,
                    _p: Writer) -> dict[str, Any]:
    """Advance a sub-order; when the last one is done the order is delivered."""
    transitions = crm_orders.SUB_ORDER_TRANSITIONS
    known = set(transitions) | {s for targets in transitions.values() for s in targets}
    if body.status not in known:
        raise DomainError("status", f"status {body.status!r} is unknown (allowed: {', '.join(sorted(known))})")
    with engine_of(request).db.transaction() as conn:
        found(crm_orders.get_order, conn, order_id)
        if sub_order_id not in {sub["id"] for sub in crm_orders.sub_orders(conn, order_id)}:
            raise NotFound(f"order {order_id} has no sub-order {sub_order_id}")
        with crm_errors("status"):
            crm_orders.set_sub_order_status(conn, sub_order_id, body.status)
        return _order_view(conn, order_id)
