"""Invoices in the browser: the list (open, overdue, paid, cancelled; search by number or customer) and the invoice
page with positions, reminders, PDF and "Zahlung erfassen".

A payment is one truth with the billing process: when a running ``billing`` instance waits for this invoice's
payment, the page delivers the message ``invoice_paid`` (correlation key ``invoice_id``, the same message an
integration sends to ``POST /api/v1/messages``) and the process's ``billing.payment`` step marks the invoice paid
through ``crm.invoices.mark_paid``; when no process waits, the page calls ``crm.invoices.mark_paid`` itself, as
``POST /api/v1/invoices/{id}/pay`` does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from crm import accounts as crm_accounts
from crm import documents as crm_documents
from crm import invoices as crm_invoices
from crm import orders as crm_orders
from crm import positions as crm_positions
from crm import queries as crm_queries
from crm.errors import DomainError
from engine.errors import NotFound
from engine.queries import InstanceFilter

from ..identity import Principal
from . import labels
from .order_pages import related_instances
from .quote_pages import decimal_text
from .rendering import PageForm, checked_form, render, require_user

router = APIRouter(include_in_schema=False)
PAGE = 50
EDITORS = ("clerk", "manager")
BILLING = "billing"
BUFFER_SECONDS = 7 * 86400
PAID_MESSAGE = "invoice_paid"  # processes/billing.bpmn waits for it (correlation key invoice_id)
FILTERS = {"open": "Offen", "overdue": "Überfällig", "paid": "Bezahlt", "cancelled": "Storniert"}
LOCAL = ZoneInfo("Europe/Berlin")


@router.get("/invoices", response_class=HTMLResponse)
def invoices(request: Request, show: str = "", q: str = "", page: int = 0) -> HTMLResponse:
    """``show`` is one of open (open and not yet due), overdue, paid, cancelled; empty shows all."""
    user = require_user(request)
    show = show if show in FILTERS else ""
    page = max(page, 0)
    status = {"open": "open", "overdue": "open", "paid": "paid", "cancelled": "cancelled"}.get(show)
    overdue = {"open": False, "overdue": True}.get(show)
    with request.app.state.engine.db.read() as conn:
        items, total = crm_queries.list_invoices(conn, date.today(), status=status, overdue=overdue, text=q[:200],
                                                 limit=PAGE, offset=page * PAGE)
    return render(request, "invoices.html", user=user, items=items, total=total, show=show, q=q, page=page,
                  page_size=PAGE, filters=FILTERS)


def _billing_process(request: Request, invoice_id: int) -> bool:
    """Whether a running billing process is about this invoice (it waits, or will wait, for its payment)."""
    _items, total = request.app.state.engine.query_instances(InstanceFilter(
        process_key=BILLING, state="running", variables={"invoice_id": invoice_id}, limit=1))
    return int(total) > 0


def _invoice_page(request: Request, user: Principal, invoice_id: int, status_code: int = 200,
                  message: str | None = None, error: str | None = None) -> HTMLResponse:
    with request.app.state.engine.db.read() as conn:
        try:
            row = crm_invoices.get_invoice(conn, invoice_id)
        except DomainError as exc:
            raise NotFound(f"Rechnung {invoice_id} gibt es nicht.") from exc
        account = crm_accounts.get_account(conn, int(row.account_id))
        lines = crm_positions.of_invoice(conn, invoice_id)
        for line, period in zip(lines, crm_positions.periods_of(conn, lines), strict=True):
            line["period"] = labels.label(labels.PERIOD, period)
            line["quantity_text"] = decimal_text(line["quantity"])
        documents, _n = crm_documents.list_documents(conn, int(row.account_id), links={"invoice_id": invoice_id})
        source = crm_orders.get_order(conn, int(row.order_id)) if row.order_id is not None else None
    overdue = row.status == "open" and row.due_date < date.today()
    awaited = row.status == "open" and _billing_process(request, invoice_id)
    return render(request, "invoice.html", status_code, user=user, invoice=row, account=account, lines=lines,
                  documents=documents, order=source, overdue=overdue, awaited=awaited, message=message,
                  error=error, today=date.today().isoformat(), editor=user.has(*EDITORS),
                  processes=related_instances(request, user, invoice_id=invoice_id))


@router.get("/invoices/{invoice_id}", response_class=HTMLResponse)
def invoice_page(request: Request, invoice_id: int) -> HTMLResponse:
    user = require_user(request)
    flash = request.query_params.get("flash", "")
    return _invoice_page(request, user, invoice_id, message=labels.FLASHES.get(flash))


def _paid_at(text: str) -> datetime:
    """The day the money came in (noon local time, so the date stays the same in every zone); today if empty."""
    day = date.fromisoformat(text) if text else date.today()
    if day > date.today():
        raise ValueError("future")
    return datetime.combine(day, time(12, 0), LOCAL).astimezone(UTC)


@router.post("/invoices/{invoice_id}/payment", response_model=None)
def record_payment(request: Request, invoice_id: int, form: PageForm) -> Response:
    user = require_user(request, *EDITORS)
    checked_form(request, user, form)
    try:
        paid_at = _paid_at(str(form.get("paid_on") or "").strip()[:10])
    except ValueError:
        return _invoice_page(request, user, invoice_id, 422,
                             error="Bitte ein Zahlungsdatum angeben, das nicht in der Zukunft liegt.")
    engine = request.app.state.engine
    with engine.db.read() as conn:
        try:
            row = crm_invoices.get_invoice(conn, invoice_id)
        except DomainError as exc:
            raise NotFound(f"Rechnung {invoice_id} gibt es nicht.") from exc
    if row.status != "open":  # a second click, or someone else was quicker: nothing is recorded twice
        return _invoice_page(request, user, invoice_id, 409, error=f"Die Rechnung ist bereits "
                             f"{labels.label(labels.INVOICE_STATUS, row.status).lower()}.")
    if _billing_process(request, invoice_id):
        # the process owns the invoice's lifecycle: deliver the payment to it (kept for a while if it is not at
        # its payment wait yet, e.g. still mailing the invoice); its billing.payment step marks the invoice paid
        engine.correlate(PAID_MESSAGE, {"paid_at": paid_at.isoformat()}, correlation_keys={"invoice_id": invoice_id},
                         user=user.name, buffer_seconds=BUFFER_SECONDS)
        return RedirectResponse(f"/invoices/{invoice_id}?flash=payment_sent", status_code=303)
    try:
        with engine.db.transaction() as conn:
            crm_invoices.mark_paid(conn, invoice_id, now=paid_at)
    except DomainError:
        return _invoice_page(request, user, invoice_id, 409, error="Die Rechnung ist nicht mehr offen.")
    return RedirectResponse(f"/invoices/{invoice_id}?flash=paid", status_code=303)
