"""Orders in the browser: the list (filter by state, search by number or customer) and the order page with its
positions, delivery address, sub-orders and their production state, its documents, invoices and processes.

The order's lifecycle belongs to its processes (order review, production): these pages only show it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from crm import accounts as crm_accounts
from crm import documents as crm_documents
from crm import orders as crm_orders
from crm import positions as crm_positions
from crm import queries as crm_queries
from crm import quotes as crm_quotes
from crm.errors import DomainError
from engine.errors import NotFound
from engine.queries import InstanceFilter

from .. import access
from . import labels
from .quote_pages import decimal_text
from .rendering import render, require_user

router = APIRouter(include_in_schema=False)
PAGE = 50


def related_instances(request: Request, user: Any, **variables: Any) -> list[Any]:
    """The process instances about a record (started with its id), as far as the user may see them."""
    items, _total = request.app.state.engine.query_instances(InstanceFilter(
        variables=variables, audience=access.audience(request, user), limit=20))
    return list(items)


@router.get("/orders", response_class=HTMLResponse)
def orders(request: Request, status: str = "", q: str = "", page: int = 0) -> HTMLResponse:
    user = require_user(request)
    status = status if status in labels.ORDER_STATUS else ""
    page = max(page, 0)
    with request.app.state.engine.db.read() as conn:
        items, total = crm_queries.list_orders(conn, status=status or None, text=q[:200], limit=PAGE,
                                               offset=page * PAGE)
    return render(request, "orders.html", user=user, items=items, total=total, status=status, q=q, page=page,
                  page_size=PAGE)


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(request: Request, order_id: int) -> HTMLResponse:
    user = require_user(request)
    with request.app.state.engine.db.read() as conn:
        try:
            row = crm_orders.get_order(conn, order_id)
        except DomainError as exc:
            raise NotFound(f"Auftrag {order_id} gibt es nicht.") from exc
        account = crm_accounts.get_account(conn, int(row.account_id))
        lines = crm_positions.of_order(conn, order_id)
        periods = crm_positions.periods_of(conn, lines)
        for line, period in zip(lines, periods, strict=True):
            line["period"] = labels.label(labels.PERIOD, period)
            line["quantity_text"] = decimal_text(line["quantity"])
        by_position = {line["id"]: line for line in lines}
        subs = crm_orders.sub_orders(conn, order_id)
        for sub in subs:
            line = by_position.get(sub["order_position_id"]) or {}
            sub["label"] = line.get("description") or "–"
            sub["step_labels"] = [labels.label(labels.STEP, s) for s in str(sub["steps"]).split(",") if s]
        documents, _n = crm_documents.list_documents(conn, int(row.account_id), links={"order_id": order_id})
        invoices, _m = crm_queries.list_invoices(conn, date.today(), account_id=int(row.account_id), limit=200)
        invoices = [i for i in invoices if i["order_id"] == order_id]
        quote_row = crm_quotes.get_quote(conn, int(row.quote_id)) if row.quote_id is not None else None
        delivery = crm_orders.delivery_address(conn, order_id)
    return render(request, "order.html", user=user, order=row, account=account, lines=lines, subs=subs,
                  delivery=delivery, documents=documents, invoices=invoices, quote=quote_row,
                  processes=related_instances(request, user, order_id=order_id))
