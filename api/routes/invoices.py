"""Invoices (``crm.invoices``): issued from an order or free positions with gap-free numbers, paid,
cancelled, reminded. Invoices have no PATCH: once issued they are immutable (cancel and issue a new one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from sqlalchemy.engine import Connection

from crm import invoices as crm_invoices
from crm import orders as crm_orders
from crm import positions as crm_positions
from crm import queries as crm_queries
from crm.errors import DomainError

from ..deps import (
    AccountFilter,
    Day,
    Id,
    Limit,
    Offset,
    Positions,
    Reader,
    RefId,
    Search,
    StatusFilter,
    Writer,
    crm_errors,
    document_view,
    engine_of,
    found,
    position_inputs,
    utc_today,
)
from ..listing import page
from ..models import Camel

router = APIRouter(tags=["sales"])


class InvoiceIn(Camel):
    """Either ``orderId`` (bill the order's positions) or ``accountId`` with ``positions`` (a free invoice)."""

    order_id: RefId | None = None
    account_id: RefId | None = None
    positions: Positions | None = None
    issue_date: Day | None = None
    due_days: int = Field(default=14, ge=0, le=365)


class ReminderIn(Camel):
    on: Day | None = None


def _invoice_view(conn: Connection, invoice_id: int) -> dict[str, Any]:
    row = crm_invoices.get_invoice(conn, invoice_id)
    view = document_view(row, crm_positions.of_invoice(conn, invoice_id))
    view["overdue"] = row.status == "open" and row.due_date < utc_today()
    return view


@router.get("/invoices")
def list_invoices(request: Request, _p: Reader, account_id: AccountFilter = None, status: StatusFilter = None,
                  overdue: bool | None = None, q: Search = "", limit: Limit = 50, offset: Offset = 0) -> Any:
    """Invoices, newest first; ``status`` is the payment state (open, paid, cancelled), ``overdue=true`` the open
    ones past due; ``q`` searches number and account name; ``format=csv`` for CSV."""
    with engine_of(request).db.read() as conn:
        rows, total = crm_queries.list_invoices(conn, utc_today(), account_id, status, overdue, q, limit, offset)
    return page(request, rows, total, limit, offset, "invoices")


@router.post("/invoices", status_code=201)
def create_invoice(request: Request, body: InvoiceIn, _p: Writer) -> dict[str, Any]:
    """Bill an order (``orderId``) or free positions (``accountId`` + ``positions``); the next number of the year."""
    issue_date = body.issue_date or utc_today()
    with engine_of(request).db.transaction() as conn:
        if body.order_id is not None:
            if body.account_id is not None or body.positions is not None:
                raise DomainError("orderId", "give either orderId or accountId with positions, not both")
            with crm_errors():
                crm_orders.get_order(conn, body.order_id)  # unknown → 422 naming orderId
            with crm_errors("order_id", too_large="orderId"):
                invoice_id = crm_invoices.create_invoice_from_order(conn, body.order_id, issue_date, body.due_days)
        else:
            if body.account_id is None:
                raise DomainError("accountId", "accountId (with positions) or orderId is required")
            with crm_errors(too_large="positions"):
                invoice_id = crm_invoices.create_invoice(conn, body.account_id, position_inputs(body.positions),
                                                         issue_date, body.due_days)
        return _invoice_view(conn, invoice_id)


@router.get("/invoices/{invoice_id}")
def get_invoice(request: Request, invoice_id: Id, _p: Reader) -> dict[str, Any]:
    """An invoice with positions and totals. Invoices are immutable once issued (there is no PATCH): what was
    billed stays as billed; a wrong one is cancelled (keeping its number) and a new one issued."""
    with engine_of(request).db.read() as conn:
        found(crm_invoices.get_invoice, conn, invoice_id)
        return _invoice_view(conn, invoice_id)


def _invoice_action(request: Request, invoice_id: int, action: Callable[[Connection, int], None]) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        found(crm_invoices.get_invoice, conn, invoice_id)
        with crm_errors("status"):
            action(conn, invoice_id)
        return _invoice_view(conn, invoice_id)


@router.post("/invoices/{invoice_id}/pay")
def pay_invoice(request: Request, invoice_id: Id, _p: Writer) -> dict[str, Any]:
    return _invoice_action(request, invoice_id, crm_invoices.mark_paid)


@router.post("/invoices/{invoice_id}/cancel")
def cancel_invoice(request: Request, invoice_id: Id, _p: Writer) -> dict[str, Any]:
    """Cancelled invoices keep their number (no gaps); a paid one cannot be cancelled (409)."""
    return _invoice_action(request, invoice_id, crm_invoices.cancel_invoice)


@router.post("/invoices/{invoice_id}/reminders", status_code=201)
def remind_invoice(request: Request, invoice_id: Id, _p: Writer, body: ReminderIn | None = None) -> dict[str, Any]:
    """Record a payment reminder for an overdue invoice (409 when none is due yet or any more)."""
    on = (body.on if body else None) or utc_today()
    with engine_of(request).db.transaction() as conn:
        found(crm_invoices.get_invoice, conn, invoice_id)
        with crm_errors("status", "due_date", "reminders_sent", "last_reminder_on"):
            level = crm_invoices.record_reminder(conn, invoice_id, on)
        return {"level": level, "invoice": _invoice_view(conn, invoice_id)}
