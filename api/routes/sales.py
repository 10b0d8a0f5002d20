"""CRM sales resources: quotes, orders with sub-orders, booked services, invoices and contracts.

Business rules live in ``crm``; this layer maps JSON to its services. Their ``DomainError`` becomes a 422
problem naming the field as the client wrote it (``positions.0.productId``), except where it says that a state
change is not allowed now: that is a 409 (send a quote twice, adjust an order in production, pay a cancelled
invoice). Unknown ids in the path are 404; unknown ids in a body are 422 naming the field. Invoices have no PATCH:
once issued they are immutable (cancel and issue a new one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AfterValidator, Field
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from crm import booked_services as crm_services
from crm import contracts as crm_contracts
from crm import invoices as crm_invoices
from crm import orders as crm_orders
from crm import positions as crm_positions
from crm import queries as crm_queries
from crm import quotes as crm_quotes
from crm.errors import DomainError
from crm.pricing import Totals
from crm.schema import invoice_position, order_position, quote, quote_position
from engine.errors import InvalidState, NotFound

from ..identity import Principal
from ..listing import camel_key, camel_row, page
from ..models import MAX_INT, Camel
from ..security import require
from .definitions import engine_of
from .service_desk import Text

router = APIRouter(tags=["sales"])

PathId = Annotated[int, Path(ge=1, le=MAX_INT)]
BodyId = Annotated[int, Field(ge=1, le=MAX_INT)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=MAX_INT)]
AccountFilter = Annotated[int | None, Query(alias="accountId", ge=1, le=MAX_INT)]
StatusFilter = Annotated[str | None, Query(max_length=30)]
SearchText = Annotated[str, Query(max_length=200)]
Reader = Annotated[Principal, Depends(require())]
Writer = Annotated[Principal, Depends(require("clerk", "manager", "integration"))]

EARLIEST, LATEST = date(1900, 1, 1), date(2999, 12, 31)


def _plausible(value: date) -> date:
    """Dates far outside business use only overflow term and due-date arithmetic: refuse them as input."""
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"must be between {EARLIEST} and {LATEST}")
    return value


BusinessDate = Annotated[date, AfterValidator(_plausible)]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)]
Amount = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]


class PositionIn(Camel):
    """A position: a catalogue product (price, VAT rate and description default to it) or a free text line."""

    product_id: BodyId | None = None
    description: str | None = Field(default=None, max_length=500)
    quantity: Quantity
    unit_price: Amount | None = None
    discount_percent: Percent | None = None
    discount_amount: Amount | None = None
    vat_rate: Percent | None = None


Positions = Annotated[list[PositionIn], Field(max_length=500)]


class QuoteIn(Camel):
    account_id: BodyId
    valid_until: BusinessDate
    positions: Positions


class PositionsIn(Camel):
    positions: Positions


class QuotePatch(Camel):
    """A draft's validity and addressee (a contact of the quoted account, ``null``: nobody in particular)."""

    valid_until: BusinessDate | None = None
    contact_id: BodyId | None = None


class RevisionIn(Camel):
    valid_until: BusinessDate | None = None


class DeliveryAddressIn(Camel):
    """Where the hardware goes and the line is installed; omitted: the account's address."""

    name: Text = Field(min_length=1, max_length=200)
    street: Text = Field(min_length=1, max_length=200)
    postal_code: Text = Field(min_length=1, max_length=20)
    city: Text = Field(min_length=1, max_length=100)
    country: Text = Field(default="DE", min_length=2, max_length=2)


class OrderIn(Camel):
    quote_id: BodyId
    drop_lines: list[BodyId] = Field(default_factory=list, max_length=500)
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


class ServiceIn(Camel):
    account_id: BodyId
    product_id: BodyId
    quantity: Quantity = Decimal(1)


class ProvisioningPatch(Camel):
    domain_name: str | None = Field(default=None, max_length=253)
    ip_address: str | None = Field(default=None, max_length=49)
    modem_serial: str | None = Field(default=None, max_length=100)


class ActivationIn(Camel):
    start_date: BusinessDate | None = None
    contract_end: BusinessDate | None = None


class InvoiceIn(Camel):
    """Either ``orderId`` (bill the order's positions) or ``accountId`` with ``positions`` (a free invoice)."""

    order_id: BodyId | None = None
    account_id: BodyId | None = None
    positions: Positions | None = None
    issue_date: BusinessDate | None = None
    due_days: int = Field(default=14, ge=0, le=365)


class ReminderIn(Camel):
    on: BusinessDate | None = None


class ContractIn(Camel):
    account_id: BodyId
    start_date: BusinessDate
    term_months: int = Field(ge=1, le=MAX_INT)
    notice_months: int = Field(default=3, ge=0, le=MAX_INT)
    auto_renewal: bool = True
    renewal_months: int = Field(default=12, ge=1, le=MAX_INT)
    booked_service_ids: list[BodyId] = Field(default_factory=list, max_length=1000)


class NoticeIn(Camel):
    received_on: BusinessDate


class ContractPatch(Camel):
    """New terms of an active contract; omitted ones stay."""

    term_months: int | None = Field(default=None, ge=1, le=MAX_INT)
    notice_months: int | None = Field(default=None, ge=0, le=MAX_INT)
    auto_renewal: bool | None = None
    renewal_months: int | None = Field(default=None, ge=1, le=MAX_INT)


def _today() -> date:
    """The business day as the CRM sees it (its timestamps are UTC)."""
    return datetime.now(UTC).date()


def _client_field(field: str) -> str:
    """A CRM field path as the client wrote it: ``positions[0].product_id`` → ``positions.0.productId``."""
    return ".".join(camel_key(part) for part in re.split(r"[.\[\]]+", field) if part)


@contextmanager
def _rules(*conflicts: str, too_large: str = "(request)") -> Iterator[None]:
    """CRM errors on ``conflicts`` fields say "not in this state" (409); any other is bad input (422).

    A number the database cannot hold (PostgreSQL's numeric overflow) is bad input too, named ``too_large``.
    """
    try:
        yield
    except DomainError as exc:
        if exc.field in conflicts:
            raise InvalidState(exc.message) from exc
        raise DomainError(_client_field(exc.field), exc.message) from exc
    except sa_exc.DataError as exc:
        raise DomainError(too_large, "a value is larger than can be stored") from exc


def _existing(getter: Callable[[Connection, int], Any], conn: Connection, row_id: int) -> Any:
    """The record of the path, or 404."""
    try:
        return getter(conn, row_id)
    except DomainError as exc:
        raise NotFound(exc.message) from exc


def _inputs(positions: Sequence[PositionIn] | None) -> list[crm_positions.PositionInput]:
    return [crm_positions.PositionInput(**p.model_dump()) for p in positions or ()]


def _totals(totals: Totals) -> dict[str, Any]:
    return {"net": str(totals.net),
            "vatByRate": [{"rate": str(rate), "vat": str(vat)} for rate, vat in totals.vat_by_rate.items()],
            "vat": str(totals.vat), "gross": str(totals.gross)}


def _document(row: Any, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """A quote, order or invoice with its positions and totals (VAT per rate recomputed from the positions)."""
    return {**camel_row(dict(row._mapping)), "positions": [camel_row(line) for line in lines],
            "totals": _totals(crm_positions.totals_of(lines))}


# --- quotes ---------------------------------------------------------------------------------------------------


def _quote_view(conn: Connection, quote_id: int) -> dict[str, Any]:
    row = crm_quotes.get_quote(conn, quote_id)
    view = _document(row, crm_positions.read(conn, quote_position, "quote_id", quote_id))
    versions = conn.execute(sa.select(quote.c.id, quote.c.version, quote.c.status)
                            .where(quote.c.number == row.number).order_by(quote.c.version))
    view["versions"] = [camel_row(dict(v._mapping)) for v in versions]
    # a discount over the limit without management's approval: sending and ordering answer 422 until the
    # process quote-discount-approval (or the acquisition's approval task) has recorded it
    view["discountApprovalNeeded"] = crm_quotes.discount_approval_needed(conn, quote_id)
    return view


@router.get("/quotes")
def list_quotes(request: Request, _p: Reader, account_id: AccountFilter = None, status: StatusFilter = None,
                q: SearchText = "", limit: Limit = 50, offset: Offset = 0) -> Any:
    """Quotes (every version), newest first; ``q`` searches number and account name; ``format=csv`` for CSV."""
    with engine_of(request).db.read() as conn:
        rows, total = crm_queries.list_quotes(conn, account_id, status, q, limit, offset)
    return page(request, rows, total, limit, offset, "quotes")


@router.post("/quotes", status_code=201)
def create_quote(request: Request, body: QuoteIn, _p: Writer) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn, _rules(too_large="positions"):
        quote_id = crm_quotes.create_quote(conn, body.account_id, _inputs(body.positions), body.valid_until)
        return _quote_view(conn, quote_id)


@router.get("/quotes/{quote_id}")
def get_quote(request: Request, quote_id: PathId, _p: Reader) -> dict[str, Any]:
    with engine_of(request).db.read() as conn:
        _existing(crm_quotes.get_quote, conn, quote_id)
        return _quote_view(conn, quote_id)


@router.patch("/quotes/{quote_id}")
def patch_quote(request: Request, quote_id: PathId, body: QuotePatch, _p: Writer) -> dict[str, Any]:
    """Change a draft's validity or addressee; positions have ``PUT …/positions``, a sent quote is revised (409)."""
    with engine_of(request).db.transaction() as conn:
        _existing(crm_quotes.get_quote, conn, quote_id)
        with _rules("status"):
            crm_quotes.update_quote(conn, quote_id, **body.model_dump(exclude_unset=True))
        return _quote_view(conn, quote_id)


@router.put("/quotes/{quote_id}/positions")
def replace_quote_positions(request: Request, quote_id: PathId, body: PositionsIn, _p: Writer) -> dict[str, Any]:
    """Replace all positions of a draft; a sent quote is revised instead (409)."""
    with engine_of(request).db.transaction() as conn:
        _existing(crm_quotes.get_quote, conn, quote_id)
        with _rules("status", too_large="positions"):
            crm_quotes.update_positions(conn, quote_id, _inputs(body.positions))
        return _quote_view(conn, quote_id)


@router.post("/quotes/{quote_id}/revisions", status_code=201)
def revise_quote(request: Request, quote_id: PathId, _p: Writer, body: RevisionIn | None = None) -> dict[str, Any]:
    """A new draft version of the quote with its positions; only the latest version can be revised (409)."""
    with engine_of(request).db.transaction() as conn:
        _existing(crm_quotes.get_quote, conn, quote_id)
        with _rules("version"):
            new_id = crm_quotes.revise_quote(conn, quote_id, body.valid_until if body else None)
        return _quote_view(conn, new_id)


def _quote_action(request: Request, quote_id: int, action: Callable[[Connection, int], None],
                  *conflicts: str) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        _existing(crm_quotes.get_quote, conn, quote_id)
        with _rules("status", *conflicts):
            action(conn, quote_id)
        return _quote_view(conn, quote_id)


@router.post("/quotes/{quote_id}/send")
def send_quote(request: Request, quote_id: PathId, _p: Writer) -> dict[str, Any]:
    return _quote_action(request, quote_id, crm_quotes.send_quote)


@router.post("/quotes/{quote_id}/accept")
def accept_quote(request: Request, quote_id: PathId, _p: Writer) -> dict[str, Any]:
    """Only a sent quote within its validity can be accepted (409 otherwise)."""
    return _quote_action(request, quote_id, crm_quotes.accept_quote, "valid_until")


@router.post("/quotes/{quote_id}/reject")
def reject_quote(request: Request, quote_id: PathId, _p: Writer) -> dict[str, Any]:
    return _quote_action(request, quote_id, crm_quotes.reject_quote)


# --- orders and sub-orders ------------------------------------------------------------------------------------


def _order_view(conn: Connection, order_id: int) -> dict[str, Any]:
    lines = crm_positions.read(conn, order_position, "order_id", order_id)
    view = _document(crm_orders.get_order(conn, order_id), lines)
    by_id = {line["id"]: line for line in lines}
    view["subOrders"] = [
        {**camel_row(sub), "steps": [s for s in sub["steps"].split(",") if s],
         "lineNo": by_id[sub["order_position_id"]]["line_no"],
         "description": by_id[sub["order_position_id"]]["description"]}
        for sub in crm_orders.sub_orders(conn, order_id)]
    return view


@router.get("/orders")
def list_orders(request: Request, _p: Reader, account_id: AccountFilter = None, status: StatusFilter = None,
                q: SearchText = "", limit: Limit = 50, offset: Offset = 0) -> Any:
    """Orders, newest first; ``q`` searches number and account name; ``format=csv`` for CSV."""
    with engine_of(request).db.read() as conn:
        rows, total = crm_queries.list_orders(conn, account_id, status, q, limit, offset)
    return page(request, rows, total, limit, offset, "orders")


@router.post("/orders", status_code=201)
def create_order(request: Request, body: OrderIn, _p: Writer) -> dict[str, Any]:
    """An order from an accepted quote, its positions taken over except ``dropLines``; one order per quote."""
    with engine_of(request).db.transaction() as conn:
        with _rules():
            crm_quotes.get_quote(conn, body.quote_id)  # unknown → 422 naming quoteId
        with _rules("quote_id"):
            delivery = body.delivery_address.model_dump() if body.delivery_address else None
            order_id = crm_orders.create_order_from_quote(conn, body.quote_id, body.drop_lines, delivery=delivery)
        return _order_view(conn, order_id)


@router.get("/orders/{order_id}")
def get_order(request: Request, order_id: PathId, _p: Reader) -> dict[str, Any]:
    with engine_of(request).db.read() as conn:
        _existing(crm_orders.get_order, conn, order_id)
        return _order_view(conn, order_id)


@router.patch("/orders/{order_id}/positions/{line_no}")
def adjust_order_position(request: Request, order_id: PathId, line_no: PathId, body: AdjustmentIn,
                          _p: Writer) -> dict[str, Any]:
    """Adjust or remove a position while the order is open (409 later); totals and sub-orders follow."""
    with engine_of(request).db.transaction() as conn:
        _existing(crm_orders.get_order, conn, order_id)
        if line_no > len(crm_positions.read(conn, order_position, "order_id", order_id)):
            raise NotFound(f"order {order_id} has no line {line_no}")
        with _rules("status", too_large="quantity"):
            crm_orders.adjust_position(conn, order_id, line_no, crm_orders.Adjustment(**body.model_dump()))
        return _order_view(conn, order_id)


def _order_action(request: Request, order_id: int, action: Callable[[Connection, int], None]) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        _existing(crm_orders.get_order, conn, order_id)
        with _rules("status"):
            action(conn, order_id)
        return _order_view(conn, order_id)


@router.post("/orders/{order_id}/start-production")
def start_production(request: Request, order_id: PathId, _p: Writer) -> dict[str, Any]:
    return _order_action(request, order_id, crm_orders.start_production)


@router.post("/orders/{order_id}/cancel")
def cancel_order(request: Request, order_id: PathId, _p: Writer) -> dict[str, Any]:
    return _order_action(request, order_id, crm_orders.cancel_order)


@router.patch("/orders/{order_id}/sub-orders/{sub_order_id}")
def patch_sub_order(request: Request, order_id: PathId, sub_order_id: PathId, body: SubOrderPatch,
                    _p: Writer) -> dict[str, Any]:
    """Advance a sub-order; when the last one is done the order is delivered."""
    transitions = crm_orders.SUB_ORDER_TRANSITIONS
    known = set(transitions) | {s for targets in transitions.values() for s in targets}
    if body.status not in known:
        raise DomainError("status", f"status {body.status!r} is unknown (allowed: {', '.join(sorted(known))})")
    with engine_of(request).db.transaction() as conn:
        _existing(crm_orders.get_order, conn, order_id)
        if sub_order_id not in {sub["id"] for sub in crm_orders.sub_orders(conn, order_id)}:
            raise NotFound(f"order {order_id} has no sub-order {sub_order_id}")
        with _rules("status"):
            crm_orders.set_sub_order_status(conn, sub_order_id, body.status)
        return _order_view(conn, order_id)


@router.post("/orders/{order_id}/services", status_code=201)
def book_order_services(request: Request, order_id: PathId, _p: Writer) -> dict[str, Any]:
    """Record the order's recurring positions as booked services of the customer (once per order)."""
    with engine_of(request).db.transaction() as conn:
        _existing(crm_orders.get_order, conn, order_id)
        with _rules("order_id"):
            ids = crm_services.book_order_services(conn, order_id)
        return {"items": [_service_view(conn, service_id) for service_id in ids]}


# --- booked services ------------------------------------------------------------------------------------------


def _service_view(conn: Connection, service_id: int) -> dict[str, Any]:
    row = crm_queries.get_booked_service_view(conn, service_id)
    if row is None:
        raise NotFound(f"booked service {service_id} does not exist")
    return camel_row(row)


@router.get("/services")
def list_services(request: Request, _p: Reader, account_id: AccountFilter = None, status: StatusFilter = None,
                  q: SearchText = "", limit: Limit = 50, offset: Offset = 0) -> Any:
    """Booked services, newest first; ``q`` searches account, product and domain; ``format=csv`` for CSV."""
    with engine_of(request).db.read() as conn:
        rows, total = crm_queries.list_booked_services(conn, account_id, status, q, limit, offset)
    return page(request, rows, total, limit, offset, "services")


@router.post("/services", status_code=201)
def book_service(request: Request, body: ServiceIn, _p: Writer) -> dict[str, Any]:
    """Book a recurring product on an account (status ``ordered``)."""
    with engine_of(request).db.transaction() as conn, _rules(too_large="quantity"):
        service_id = crm_services.book_service(conn, body.account_id, body.product_id, body.quantity)
        return _service_view(conn, service_id)


@router.get("/services/{service_id}")
def get_service(request: Request, service_id: PathId, _p: Reader) -> dict[str, Any]:
    with engine_of(request).db.read() as conn:
        return _service_view(conn, service_id)


@router.patch("/services/{service_id}")
def patch_service(request: Request, service_id: PathId, body: ProvisioningPatch, _p: Writer) -> dict[str, Any]:
    """Provisioning data from production; each value given replaces the stored one."""
    with engine_of(request).db.transaction() as conn:
        _existing(crm_services.get_service, conn, service_id)
        with _rules():
            crm_services.set_provisioning(conn, service_id, **body.model_dump())
        return _service_view(conn, service_id)


def _service_action(request: Request, service_id: int, action: Callable[[Connection, int], None]) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        _existing(crm_services.get_service, conn, service_id)
        with _rules("status"):
            action(conn, service_id)
        return _service_view(conn, service_id)


@router.post("/services/{service_id}/activate")
def activate_service(request: Request, service_id: PathId, _p: Writer,
                     body: ActivationIn | None = None) -> dict[str, Any]:
    """The service runs (and is billed) from ``startDate``, today unless given."""
    start = (body.start_date if body else None) or _today()
    end = body.contract_end if body else None
    return _service_action(request, service_id,
                           lambda conn, sid: crm_services.activate_service(conn, sid, start, end))


@router.post("/services/{service_id}/suspend")
def suspend_service(request: Request, service_id: PathId, _p: Writer) -> dict[str, Any]:
    return _service_action(request, service_id, crm_services.suspend_service)


@router.post("/services/{service_id}/resume")
def resume_service(request: Request, service_id: PathId, _p: Writer) -> dict[str, Any]:
    return _service_action(request, service_id, crm_services.resume_service)


@router.post("/services/{service_id}/cancel")
def cancel_service(request: Request, service_id: PathId, _p: Writer) -> dict[str, Any]:
    return _service_action(request, service_id, crm_services.cancel_service)


# --- invoices -------------------------------------------------------------------------------------------------


def _invoice_view(conn: Connection, invoice_id: int) -> dict[str, Any]:
    row = crm_invoices.get_invoice(conn, invoice_id)
    view = _document(row, crm_positions.read(conn, invoice_position, "invoice_id", invoice_id))
    view["overdue"] = row.status == "open" and row.due_date < _today()
    return view


@router.get("/invoices")
def list_invoices(request: Request, _p: Reader, account_id: AccountFilter = None, status: StatusFilter = None,
                  overdue: bool | None = None, q: SearchText = "", limit: Limit = 50, offset: Offset = 0) -> Any:
    """Invoices, newest first; ``status`` is the payment state (open, paid, cancelled), ``overdue=true`` the open
    ones past due; ``q`` searches number and account name; ``format=csv`` for CSV."""
    with engine_of(request).db.read() as conn:
        rows, total = crm_queries.list_invoices(conn, _today(), account_id, status, overdue, q, limit, offset)
    return page(request, rows, total, limit, offset, "invoices")


@router.post("/invoices", status_code=201)
def create_invoice(request: Request, body: InvoiceIn, _p: Writer) -> dict[str, Any]:
    """Bill an order (``orderId``) or free positions (``accountId`` + ``positions``); the next number of the year."""
    issue_date = body.issue_date or _today()
    with engine_of(request).db.transaction() as conn:
        if body.order_id is not None:
            if body.account_id is not None or body.positions is not None:
                raise DomainError("orderId", "give either orderId or accountId with positions, not both")
            with _rules():
                crm_orders.get_order(conn, body.order_id)  # unknown → 422 naming orderId
            with _rules("order_id", too_large="orderId"):
                invoice_id = crm_invoices.create_invoice_from_order(conn, body.order_id, issue_date, body.due_days)
        else:
            if body.account_id is None:
                raise DomainError("accountId", "accountId (with positions) or orderId is required")
            with _rules(too_large="positions"):
                invoice_id = crm_invoices.create_invoice(conn, body.account_id, _inputs(body.positions), issue_date,
                                                         body.due_days)
        return _invoice_view(conn, invoice_id)


@router.get("/invoices/{invoice_id}")
def get_invoice(request: Request, invoice_id: PathId, _p: Reader) -> dict[str, Any]:
    """An invoice with positions and totals. Invoices are immutable once issued (there is no PATCH): what was
    billed stays as billed; a wrong one is cancelled (keeping its number) and a new one issued."""
    with engine_of(request).db.read() as conn:
        _existing(crm_invoices.get_invoice, conn, invoice_id)
        return _invoice_view(conn, invoice_id)


def _invoice_action(request: Request, invoice_id: int, action: Callable[[Connection, int], None]) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        _existing(crm_invoices.get_invoice, conn, invoice_id)
        with _rules("status"):
            action(conn, invoice_id)
        return _invoice_view(conn, invoice_id)


@router.post("/invoices/{invoice_id}/pay")
def pay_invoice(request: Request, invoice_id: PathId, _p: Writer) -> dict[str, Any]:
    return _invoice_action(request, invoice_id, crm_invoices.mark_paid)


@router.post("/invoices/{invoice_id}/cancel")
def cancel_invoice(request: Request, invoice_id: PathId, _p: Writer) -> dict[str, Any]:
    """Cancelled invoices keep their number (no gaps); a paid one cannot be cancelled (409)."""
    return _invoice_action(request, invoice_id, crm_invoices.cancel_invoice)


@router.post("/invoices/{invoice_id}/reminders", status_code=201)
def remind_invoice(request: Request, invoice_id: PathId, _p: Writer, body: ReminderIn | None = None) -> dict[str, Any]:
    """Record a payment reminder for an overdue invoice (409 when none is due yet or any more)."""
    on = (body.on if body else None) or _today()
    with engine_of(request).db.transaction() as conn:
        _existing(crm_invoices.get_invoice, conn, invoice_id)
        with _rules("status", "due_date", "reminders_sent", "last_reminder_on"):
            level = crm_invoices.record_reminder(conn, invoice_id, on)
        return {"level": level, "invoice": _invoice_view(conn, invoice_id)}


# --- contracts ------------------------------------------------------------------------------------------------


def _contract_view(conn: Connection, contract_id: int) -> dict[str, Any]:
    row = crm_contracts.get_contract(conn, contract_id)
    return {**camel_row(dict(row._mapping)),
            "bookedServiceIds": crm_contracts.services_of_contract(conn, contract_id)}


@router.get("/contracts")
def list_contracts(request: Request, _p: Reader, account_id: AccountFilter = None, status: StatusFilter = None,
                   q: SearchText = "", limit: Limit = 50, offset: Offset = 0) -> Any:
    """Contracts, newest start first; ``q`` searches number and account name; ``format=csv`` for CSV."""
    with engine_of(request).db.read() as conn:
        rows, total = crm_queries.list_contracts(conn, account_id, status, q, limit, offset)
    return page(request, rows, total, limit, offset, "contracts")


@router.post("/contracts", status_code=201)
def create_contract(request: Request, body: ContractIn, _p: Writer) -> dict[str, Any]:
    """A contract with term and notice period over some of the account's booked services."""
    terms = crm_contracts.ContractTerms(
        start_date=body.start_date, term_months=body.term_months, notice_months=body.notice_months,
        auto_renewal=body.auto_renewal, renewal_months=body.renewal_months,
        booked_service_ids=tuple(body.booked_service_ids))
    with engine_of(request).db.transaction() as conn, _rules():
        contract_id = crm_contracts.create_contract(conn, body.account_id, terms)
        return _contract_view(conn, contract_id)


@router.get("/contracts/{contract_id}")
def get_contract(request: Request, contract_id: PathId, _p: Reader) -> dict[str, Any]:
    with engine_of(request).db.read() as conn:
        _existing(crm_contracts.get_contract, conn, contract_id)
        return _contract_view(conn, contract_id)


@router.patch("/contracts/{contract_id}")
def patch_contract(request: Request, contract_id: PathId, body: ContractPatch, _p: Writer) -> dict[str, Any]:
    """Change the terms of an active contract (a terminated or ended one is a 409); end, notice deadline and
    renewal reminder date follow. The term changes only during the first term (after a renewal: 422)."""
    with engine_of(request).db.transaction() as conn:
        _existing(crm_contracts.get_contract, conn, contract_id)
        with _rules("status"):
            crm_contracts.update_contract(conn, contract_id, **body.model_dump(exclude_unset=True))
        return _contract_view(conn, contract_id)


@router.post("/contracts/{contract_id}/notice")
def give_notice(request: Request, contract_id: PathId, body: NoticeIn, _p: Writer) -> dict[str, Any]:
    """Terminate: ends at this term's end when the notice is in time, else at the next renewal's end."""
    with engine_of(request).db.transaction() as conn:
        _existing(crm_contracts.get_contract, conn, contract_id)
        with _rules("status"):
            end = crm_contracts.give_notice(conn, contract_id, body.received_on)
        return {"endDate": end, "contract": _contract_view(conn, contract_id)}
