"""Quote builder ("click together" positions from the catalogue), the quote page with PDF and send, product editing.

Money is never computed in the browser: every change of a position posts the builder form to the server, which
prices it with ``crm.pricing`` (through ``crm.positions``) and answers with HTML fragments (htmx).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from itertools import zip_longest
from typing import Any
from urllib.parse import quote as url_quote

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection

from connectors.documents import money as format_money
from connectors.documents import render_pdf
from connectors.record_documents import keep_letter, letter_for
from crm import positions as pos
from crm import products as crm_products
from crm import queries as crm_queries
from crm import quotes as crm_quotes
from crm.documents import DocumentStore
from crm.errors import DomainError
from crm.pricing import Totals
from crm.schema import document, product, quote, quote_position
from engine.errors import NotFound
from engine.queries import InstanceFilter

from ..deps import engine_of
from ..headers import download_headers
from ..identity import Principal
from .i18n import language_of, translations
from .rendering import PageForm, checked_form, render, require_user

router = APIRouter(include_in_schema=False)

SELLERS = ("clerk", "manager")
VALIDITY_DAYS = 30
ACQUISITION = "acquisition"
DISCOUNT_APPROVAL = "quote-discount-approval"  # the process a page asks for management's discount approval
APPROVAL_REQUESTED = "quote_discount_approval"  # ... by this message (REST clients send it to /api/v1/messages)
_GERMAN = re.compile(r"-?(\d{1,3}(\.\d{3})+|\d+),\d+")
_PLAIN = re.compile(r"-?\d+(\.\d+)?")
STATUSES = {"draft": "Entwurf", "sent": "Versendet", "accepted": "Angenommen", "rejected": "Abgelehnt",
            "expired": "Abgelaufen"}
FLASHES = {
    "created": "Angebot gespeichert.",
    "updated": "Positionen gespeichert.",
    "sent": "Angebot als versendet markiert.",
    "revised": "Neue Version angelegt.",
    "approval_requested": "Freigabe bei der Geschäftsleitung angefordert.",
}


# -- formatting and parsing -----------------------------------------------------------------------------
def parse_decimal(text: str | None) -> Decimal | None:
    """A number as typed: German ``1.234,50`` or ``29,90``, or ``29.90``; empty is None, junk raises ValueError."""
    value = (text or "").strip().removesuffix("€").removesuffix("%").replace("\u00a0", "").replace(" ", "")
    if not value:
        return None
    if "," in value:
        if not _GERMAN.fullmatch(value):
            raise ValueError(value)
        value = value.replace(".", "").replace(",", ".")
    elif not _PLAIN.fullmatch(value):
        raise ValueError(value)
    try:
        return Decimal(value)
    except InvalidOperation as exc:  # pragma: no cover - the patterns above only let numbers through
        raise ValueError(value) from exc


def decimal_text(value: Decimal | None) -> str:
    """A stored Decimal as a German user types it: ``2``, ``1,5``, ``10`` (no trailing zeros)."""
    if value is None:
        return ""
    return f"{value.normalize():f}".replace(".", ",")


def percent(value: Decimal) -> str:
    return f"{decimal_text(value)} %"


def _money(value: Decimal | None) -> str:
    return "–" if value is None else format_money(value)


def _gettext(request: Request, message: str, **params: Any) -> str:
    """Messages built in Python (errors, flashes) in the page's language; German is the message id."""
    text = str(translations(language_of(request)).gettext(message))
    return text % params if params else text


def _page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return render(request, name, status_code, money=_money, percent=percent, number=decimal_text, statuses=STATUSES,
                  discount_limit=crm_quotes.DISCOUNT_LIMIT,
                  **context)


# -- the builder's state: the positions as posted by the form ---------------------------------------------
@dataclass
class Line:
    """One builder row: the product, what the user typed, and what the server computed."""

    product_id: int
    code: str
    name: str
    unit_price: Decimal
    vat_rate: Decimal
    quantity: str = "1"
    discount: str = ""
    description: str = ""
    total: Decimal | None = None
    error: str | None = None


@dataclass
class Builder:
    lines: list[Line] = field(default_factory=list)
    totals: Totals | None = None
    errors: list[str] = field(default_factory=list)
    approval_needed: bool = False  # a discount over the limit: sending waits for management's approval


def _catalogue(conn: Connection, query: str = "") -> list[dict[str, Any]]:
    """Active products whose code, name, category or description contains the filter text."""
    needle = query.casefold().strip()
    items = crm_queries.list_products(conn, include_inactive=False)
    if not needle:
        return items
    return [p for p in items
            if any(needle in str(p.get(key) or "").casefold() for key in ("code", "name", "category", "description"))]


def _products_by_id(conn: Connection, ids: set[int]) -> dict[int, sa.Row[tuple[object, ...]]]:
    if not ids:
        return {}
    return {int(row.id): row for row in conn.execute(sa.select(product).where(product.c.id.in_(ids)))}


def _posted_lines(form: Any) -> list[tuple[str, str, str, str]]:
    """The rows of the builder form: parallel lists of product, quantity, discount and description."""
    return list(zip_longest(form.getlist("product_id"), form.getlist("quantity"), form.getlist("discount_percent"),
                            form.getlist("description"), fillvalue=""))


def _number(text: str | None) -> int | None:
    """A row id or index as posted; anything else (or absurdly large) is None."""
    return int(text) if text and text.isdigit() and len(text) <= 9 else None


def _line_of(row: sa.Row[tuple[object, ...]], quantity: str = "1", discount: str = "", description: str = "") -> Line:
    return Line(product_id=int(row.id), code=str(row.code), name=str(row.name),
                unit_price=row.list_price, vat_rate=row.vat_rate,
                quantity=quantity, discount=discount, description=description)


def _evaluate(request: Request, conn: Connection, posted: list[tuple[str, str, str, str]],
              add: str | None = None, remove: str | None = None) -> tuple[Builder, list[pos.PositionInput]]:
    """Parse the posted rows (plus an added or removed one) and price them with ``crm.pricing``."""
    dropped = _number(remove)
    if dropped is not None and dropped < len(posted):
        posted = posted[:dropped] + posted[dropped + 1:]
    wanted = {i for i in (_number(p) for p, *_ in posted) if i is not None}
    added = _number(add)
    if added is not None:
        wanted.add(added)
    rows = _products_by_id(conn, wanted)
    builder = Builder()
    inputs: list[pos.PositionInput] = []
    for index, (product_id, quantity_text, discount_text, description) in enumerate(posted, start=1):
        row = rows.get(_number(product_id) or 0)
        if row is None:
            builder.errors.append(_gettext(request, "Position %(n)s: Produkt %(id)s gibt es nicht.", n=index,
                                           id=product_id or "–"))
            continue
        line = _line_of(row, quantity_text.strip(), discount_text.strip(), description.strip())
        builder.lines.append(line)
        line.error = _line_error(request, row, line)
        if line.error is None:
            inputs.append(pos.PositionInput(quantity=parse_decimal(line.quantity) or Decimal(0),
                                            product_id=line.product_id, description=line.description or None,
                                            discount_percent=parse_decimal(line.discount)))
        else:
            builder.errors.append(_gettext(request, "Position %(n)s: %(error)s", n=index, error=line.error))
    if add is not None:
        row = rows.get(added or 0)
        if row is None or not row.active:
            builder.errors.append(_gettext(request, "Dieses Produkt ist nicht (mehr) im Katalog."))
        else:
            builder.lines.append(_line_of(row))
            inputs.append(pos.PositionInput(quantity=Decimal(1), product_id=added))
    if builder.lines and not builder.errors:
        try:
            builder.totals = pos.totals_of(pos.resolve(conn, inputs))
        except DomainError as exc:
            builder.errors.append(_domain_message(request, exc))
        else:
            for line, total in zip(builder.lines, builder.totals.positions, strict=True):
                line.total = total
    builder.approval_needed = any(crm_quotes.exceeds_discount_limit(i.discount_percent) for i in inputs)
    return builder, inputs


def _line_error(request: Request, row: sa.Row[tuple[object, ...]], line: Line) -> str | None:
    """The first problem of one row, in German, or None (the same rules crm enforces, said for a person)."""
    if not row.active:
        return _gettext(request, "%(name)s wird nicht mehr verkauft.", name=line.name)
    try:
        quantity = parse_decimal(line.quantity)
    except ValueError:
        return _gettext(request, "Menge „%(value)s“ ist keine Zahl.", value=line.quantity)
    if quantity is None or quantity <= 0:
        return _gettext(request, "Die Menge muss größer als 0 sein.")
    if quantity != quantity.quantize(Decimal("0.001")) or quantity >= Decimal("1000000000"):
        return _gettext(request, "Die Menge darf höchstens drei Nachkommastellen haben.")
    try:
        discount = parse_decimal(line.discount)
    except ValueError:
        return _gettext(request, "Rabatt „%(value)s“ ist keine Zahl.", value=line.discount)
    if discount is not None and not 0 <= discount <= 100:
        return _gettext(request, "Der Rabatt muss zwischen 0 und 100 Prozent liegen.")
    if discount is not None and discount != discount.quantize(Decimal("0.01")):
        return _gettext(request, "Der Rabatt darf höchstens zwei Nachkommastellen haben.")
    if len(line.description) > 500:
        return _gettext(request, "Die Beschreibung ist länger als 500 Zeichen.")
    return None


def _domain_message(request: Request, exc: DomainError) -> str:
    match = re.fullmatch(r"positions\[(\d+)\]\.\w+", exc.field)
    if match:
        return _gettext(request, "Position %(n)s: %(error)s", n=int(match.group(1)) + 1, error=exc.message)
    return _gettext(request, "Fehler bei %(field)s: %(error)s", field=exc.field, error=exc.message)


# -- builder pages --------------------------------------------------------------------------------------
def _account(conn: Connection, account_id: int) -> crm_queries.Account360:
    try:
        return crm_queries.account_360(conn, account_id)
    except DomainError as exc:
        raise NotFound(str(exc)) from exc


def _get_quote(conn: Connection, quote_id: int) -> sa.Row[tuple[object, ...]]:
    try:
        return crm_quotes.get_quote(conn, quote_id)
    except DomainError as exc:
        raise NotFound(str(exc)) from exc


def _builder_page(request: Request, user: Principal, conn: Connection, view: crm_queries.Account360,
                  builder: Builder, *, quote_row: Any = None, valid_until: str = "", contact_id: str = "",
                  message: str | None = None, status_code: int = 200) -> HTMLResponse:
    action = f"/quotes/{quote_row.id}/edit" if quote_row is not None else f"/customers/{view.account['id']}/quotes"
    return _page(request, "quote_builder.html", status_code, user=user, view=view, builder=builder, quote=quote_row,
                 catalogue=_catalogue(conn), q="", action=action, valid_until=valid_until, contact_id=contact_id,
                 message=message)


@router.get("/customers/{account_id}/quotes/new", response_class=HTMLResponse)
def new_quote(request: Request, account_id: int) -> HTMLResponse:
    user = require_user(request, *SELLERS)
    with engine_of(request).db.read() as conn:
        view = _account(conn, account_id)
        valid_until = (date.today() + timedelta(days=VALIDITY_DAYS)).isoformat()
        return _builder_page(request, user, conn, view, Builder(), valid_until=valid_until)


@router.get("/quotes/catalogue", response_class=HTMLResponse)
def catalogue(request: Request, q: str = "") -> HTMLResponse:
    """The filtered product list of the builder (htmx swaps it while the user types)."""
    user = require_user(request, *SELLERS)
    with engine_of(request).db.read() as conn:
        items = _catalogue(conn, q)
    return _page(request, "_quote_catalogue.html", user=user, catalogue=items, q=q)


@router.post("/quotes/preview", response_class=HTMLResponse)
def preview(request: Request, form: PageForm) -> HTMLResponse:
    """The totals box for the positions as they are in the form (and each row's total, out of band)."""
    user = require_user(request, *SELLERS)
    checked_form(request, user, form)
    with engine_of(request).db.read() as conn:
        builder, _inputs = _evaluate(request, conn, _posted_lines(form))
    return _page(request, "_quote_totals.html", user=user, builder=builder, oob=True)


@router.post("/quotes/positions", response_class=HTMLResponse)
def positions(request: Request, form: PageForm) -> HTMLResponse:
    """The positions table after adding a product (``add``) or removing a row (``remove``)."""
    user = require_user(request, *SELLERS)
    checked_form(request, user, form)
    add, remove = form.get("add"), form.get("remove")
    with engine_of(request).db.read() as conn:
        builder, _inputs = _evaluate(request, conn, _posted_lines(form), add=str(add) if add is not None else None,
                                     remove=str(remove) if remove is not None else None)
    return _page(request, "_quote_positions.html", user=user, builder=builder)


def _checked_builder(request: Request, conn: Connection, form: Any) -> tuple[Builder, list[pos.PositionInput]]:
    builder, inputs = _evaluate(request, conn, _posted_lines(form))
    if not builder.lines and not builder.errors:
        builder.errors.append(_gettext(request, "Bitte mindestens ein Produkt hinzufügen."))
    return builder, inputs


@router.post("/customers/{account_id}/quotes", response_model=None)
def create_quote(request: Request, account_id: int, form: PageForm) -> Response:
    user = require_user(request, *SELLERS)
    checked_form(request, user, form)
    engine = engine_of(request)
    valid_text, contact_text = str(form.get("valid_until") or ""), str(form.get("contact_id") or "")
    with engine.db.read() as conn:
        view = _account(conn, account_id)
        builder, inputs = _checked_builder(request, conn, form)
    valid_until: date | None = None
    try:
        valid_until = date.fromisoformat(valid_text)
    except ValueError:
        builder.errors.append(_gettext(request, "Bitte ein gültiges Datum für „Gültig bis“ angeben."))
    if contact_text and contact_text not in {str(c["id"]) for c in view.contacts}:
        builder.errors.append(_gettext(request, "Der Ansprechpartner gehört nicht zu diesem Kunden."))
    if valid_until is not None and not builder.errors:
        try:
            with engine.db.transaction() as conn:
                quote_id = crm_quotes.create_quote(conn, account_id, inputs, valid_until,
                                                   int(contact_text) if contact_text else None)
        except DomainError as exc:
            if exc.field == "valid_until":
                builder.errors.append(_gettext(request, "„Gültig bis“ darf nicht in der Vergangenheit liegen."))
            else:
                builder.errors.append(_domain_message(request, exc))
        else:
            return RedirectResponse(f"/quotes/{quote_id}?flash=created", status_code=303)
    with engine.db.read() as conn:
        return _builder_page(request, user, conn, view, builder, valid_until=valid_text, contact_id=contact_text,
                             message=_gettext(request, "Das Angebot wurde nicht gespeichert."), status_code=422)


def _stored_lines(conn: Connection, quote_id: int) -> list[dict[str, Any]]:
    return pos.read(conn, quote_position, "quote_id", quote_id)


def _editable(request: Request, quote_row: Any, lines: list[dict[str, Any]]) -> str | None:
    """Why the builder cannot change this quote, or None."""
    if quote_row.status != "draft":
        return _gettext(request, "Nur ein Entwurf kann geändert werden; legen Sie eine neue Version an.")
    if any(line["product_id"] is None or line["discount_amount"] is not None for line in lines):
        return _gettext(
            request, "Freie Positionen und Betragsrabatte bildet der Baukasten nicht ab; bitte per REST-API ändern.")
    return None


@router.get("/quotes/{quote_id}/edit", response_model=None)
def edit_quote(request: Request, quote_id: int) -> Response:
    user = require_user(request, *SELLERS)
    with engine_of(request).db.read() as conn:
        quote_row = _get_quote(conn, quote_id)
        lines = _stored_lines(conn, quote_id)
        refusal = _editable(request, quote_row, lines)
        if refusal:
            return _quote_page(request, user, conn, quote_row, message=refusal, status_code=409)
        posted = [(str(line["product_id"]), decimal_text(line["quantity"]), decimal_text(line["discount_percent"]),
                   "" if _default_description(conn, line) else str(line["description"])) for line in lines]
        builder, _inputs = _evaluate(request, conn, posted)
        view = _account(conn, int(quote_row.account_id))
        return _builder_page(request, user, conn, view, builder, quote_row=quote_row,
                             valid_until=quote_row.valid_until.isoformat(),
                             contact_id=str(quote_row.contact_id or ""))


def _default_description(conn: Connection, line: dict[str, Any]) -> bool:
    """Whether a stored description is just the product name (then the builder leaves the field empty)."""
    name = conn.execute(sa.select(product.c.name).where(product.c.id == line["product_id"])).scalar_one_or_none()
    return name == line["description"]


@router.post("/quotes/{quote_id}/edit", response_model=None)
def save_positions(request: Request, quote_id: int, form: PageForm) -> Response:
    """Replace the positions of a draft (PUT semantics through ``crm.quotes.update_positions``)."""
    user = require_user(request, *SELLERS)
    checked_form(request, user, form)
    engine = engine_of(request)
    with engine.db.read() as conn:
        quote_row = _get_quote(conn, quote_id)
        refusal = _editable(request, quote_row, _stored_lines(conn, quote_id))
        if refusal:
            return _quote_page(request, user, conn, quote_row, message=refusal, status_code=409)
        builder, inputs = _checked_builder(request, conn, form)
    if not builder.errors:
        try:
            with engine.db.transaction() as conn:
                crm_quotes.update_positions(conn, quote_id, inputs)
        except DomainError as exc:
            builder.errors.append(_domain_message(request, exc))
        else:
            return RedirectResponse(f"/quotes/{quote_id}?flash=updated", status_code=303)
    with engine.db.read() as conn:
        view = _account(conn, int(quote_row.account_id))
        return _builder_page(request, user, conn, view, builder, quote_row=quote_row,
                             valid_until=quote_row.valid_until.isoformat(), contact_id=str(quote_row.contact_id or ""),
                             message=_gettext(request, "Die Positionen wurden nicht gespeichert."), status_code=422)


# -- the quote ------------------------------------------------------------------------------------------
def _quote_page(request: Request, user: Principal, conn: Connection, quote_row: Any, message: str | None = None,
                status_code: int = 200, acquisition: str | None = None) -> HTMLResponse:
    view = _account(conn, int(quote_row.account_id))
    lines = _stored_lines(conn, int(quote_row.id))
    totals = pos.totals_of(lines) if lines else None
    versions = conn.execute(sa.select(quote.c.id, quote.c.version, quote.c.status)
                            .where(quote.c.number == quote_row.number).order_by(quote.c.version)).all()
    documents = conn.execute(sa.select(document.c.id, document.c.file_name, document.c.created_at)
                             .where(document.c.quote_id == quote_row.id).order_by(document.c.id.desc())).all()
    contact = next((c for c in view.contacts if c["id"] == quote_row.contact_id), None)
    flash = FLASHES.get(request.query_params.get("flash", ""))
    needed = quote_row.status == "draft" and crm_quotes.discount_approval_needed(conn, int(quote_row.id))
    return _page(request, "quote.html", status_code, user=user, quote=quote_row, view=view, lines=lines,
                 totals=totals, versions=versions, documents=documents, contact=contact, message=message,
                 flash=_gettext(request, flash) if flash else None, acquisition=acquisition,
                 editable=_editable(request, quote_row, lines) is None, approval_needed=needed,
                 approval_request=_approval_request(request, quote_row) if needed else None)


def _approval_key(quote_row: Any) -> str:
    return f"{quote_row.number}-v{quote_row.version}"


def _approval_request(request: Request, quote_row: Any) -> str | None:
    """The running approval process of this quote version, if one was asked for already."""
    running, _total = engine_of(request).query_instances(InstanceFilter(
        process_key=DISCOUNT_APPROVAL, business_key=_approval_key(quote_row), state="running", limit=1))
    return str(running[0].id) if running else None


@router.get("/quotes/{quote_id}", response_class=HTMLResponse)
def show_quote(request: Request, quote_id: int, acquisition: str = "") -> HTMLResponse:
    user = require_user(request)
    with engine_of(request).db.read() as conn:
        return _quote_page(request, user, conn, _get_quote(conn, quote_id),
                           acquisition=acquisition if re.fullmatch(r"[\w-]{1,64}", acquisition) else None)


@router.post("/quotes/{quote_id}/send", response_model=None)
def send_quote(request: Request, quote_id: int, form: PageForm) -> Response:
    """Mark the quote sent; a running acquisition process of the customer is only pointed to, not advanced."""
    user = require_user(request, *SELLERS)
    checked_form(request, user, form)
    engine = engine_of(request)
    try:
        with engine.db.transaction() as conn:
            quote_row = _get_quote(conn, quote_id)
            number = str(_account(conn, int(quote_row.account_id)).account["number"])
            crm_quotes.send_quote(conn, quote_id)
            keep_letter(conn, "quote", quote_id, user.name)  # what the customer gets is kept as sent
    except DomainError as exc:
        with engine.db.read() as conn:
            quote_row = _get_quote(conn, quote_id)
            if exc.field.endswith("discount_percent"):  # the discount rule of crm.quotes: ask for approval
                message = _gettext(request, "Freigabe nötig: Der Rabatt über 15 % ist nicht freigegeben.")
                return _quote_page(request, user, conn, quote_row, message=message, status_code=422)
            message = _gettext(request, "Nur ein Entwurf kann versendet werden (Status: %(status)s).",
                               status=quote_row.status)
            return _quote_page(request, user, conn, quote_row, message=message, status_code=409)
    running, _total = engine.query_instances(InstanceFilter(process_key=ACQUISITION, business_key=number,
                                                            state="running", limit=1))
    target = f"/quotes/{quote_id}?flash=sent"
    if running:
        target += "&acquisition=" + url_quote(str(running[0].id))
    return RedirectResponse(target, status_code=303)


@router.post("/quotes/{quote_id}/request-approval", response_model=None)
def request_approval(request: Request, quote_id: int, form: PageForm) -> Response:
    """Ask management to approve the draft's discount: the message starts the approval process, whose step
    records the decision on the quote (a second click while one is running starts nothing)."""
    user = require_user(request, *SELLERS)
    checked_form(request, user, form)
    engine = engine_of(request)
    with engine.db.read() as conn:
        quote_row = _get_quote(conn, quote_id)
        needed = quote_row.status == "draft" and crm_quotes.discount_approval_needed(conn, quote_id)
    if not needed:
        with engine.db.read() as conn:
            return _quote_page(request, user, conn, quote_row, status_code=409, message=_gettext(
                request, "Für dieses Angebot ist keine Freigabe nötig."))
    if _approval_request(request, quote_row) is None:
        try:
            engine.correlate(APPROVAL_REQUESTED, {"quote_id": quote_id}, business_key=_approval_key(quote_row),
                             user=user.name)
        except NotFound:
            with engine.db.read() as conn:
                return _quote_page(request, user, conn, quote_row, status_code=409, message=_gettext(
                    request, "Der Freigabeprozess ist nicht eingerichtet."))
    return RedirectResponse(f"/quotes/{quote_id}?flash=approval_requested", status_code=303)


@router.post("/quotes/{quote_id}/revise", response_model=None)
def revise_quote(request: Request, quote_id: int, form: PageForm) -> Response:
    """A new draft version of a sent quote (valid for another 30 days at least), shown right away."""
    user = require_user(request, *SELLERS)
    checked_form(request, user, form)
    engine = engine_of(request)
    try:
        with engine.db.transaction() as conn:
            quote_row = _get_quote(conn, quote_id)
            valid_until = max(quote_row.valid_until, date.today() + timedelta(days=VALIDITY_DAYS))
            new_id = crm_quotes.revise_quote(conn, quote_id, valid_until)
    except DomainError as exc:
        with engine.db.read() as conn:
            return _quote_page(request, user, conn, _get_quote(conn, quote_id),
                               message=_domain_message(request, exc), status_code=409)
    return RedirectResponse(f"/quotes/{new_id}?flash=revised", status_code=303)


@router.get("/quotes/{quote_id}/pdf", response_model=None)
def quote_pdf(request: Request, quote_id: int) -> Response:
    """Download the quote PDF: the letter kept when the quote was sent, or (a draft, or none kept) rendered for
    this download only. A GET never writes: viewing a draft five times used to store five documents."""
    user = require_user(request)
    store = DocumentStore()
    with engine_of(request).db.read() as conn:
        quote_row = _get_quote(conn, quote_id)
        if not _stored_lines(conn, quote_id):
            return _quote_page(request, user, conn, quote_row, status_code=409,
                               message=_gettext(request, "Ein Angebot ohne Positionen hat kein PDF."))
        file_name = f"Angebot-{quote_row.number}-v{quote_row.version}.pdf"
        data: bytes | None = None
        if quote_row.status != "draft":
            stored = conn.execute(sa.select(document.c.id).where(document.c.quote_id == quote_id,
                                                                 document.c.mime_type == "application/pdf")
                                  .order_by(document.c.id.desc()).limit(1)).scalar_one_or_none()
            if stored is not None:
                try:
                    data = store.read(conn, int(stored))[1]
                except DomainError:
                    data = None  # file missing or damaged: render it for this download
        if data is None:
            data = render_pdf(letter_for(conn, "quote", quote_id)[0])
    return Response(data, media_type="application/pdf", headers=download_headers(file_name))


# -- products -------------------------------------------------------------------------------------------
STEP_LABELS = {"domain": "Domain registrieren", "ip": "IP-Adresse reservieren", "hardware": "Hardware beschaffen"}
PRODUCT_FIELDS = ("code", "name", "description", "category", "kind", "list_price", "vat_rate")


def _product_values(request: Request, form: Any, new: bool) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """What the form says (as typed, for redisplay), the parsed changes, and German errors per field."""
    typed: dict[str, Any] = {name: str(form.get(name) or "").strip() for name in PRODUCT_FIELDS}
    typed["active"] = form.get("active") == "true"
    typed["provisioning_steps"] = [str(s) for s in form.getlist("provisioning_steps")]
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {"name": typed["name"], "description": typed["description"] or None,
                               "category": typed["category"], "kind": typed["kind"], "active": typed["active"],
                               "provisioning_steps": typed["provisioning_steps"]}
    if new and not typed["code"]:
        errors["code"] = _gettext(request, "Bitte einen Produktcode angeben.")
    if not typed["name"]:
        errors["name"] = _gettext(request, "Bitte einen Namen angeben.")
    for name, label in (("list_price", "Listenpreis"), ("vat_rate", "Umsatzsteuersatz")):
        try:
            changes[name] = parse_decimal(typed[name])
        except ValueError:
            errors[name] = _gettext(request, "„%(value)s“ ist kein Betrag (z. B. 29,90).", value=typed[name])
            continue
        if changes[name] is None:
            errors[name] = _gettext(request, "Bitte %(label)s angeben.", label=_gettext(request, label))
    price = changes.get("list_price")
    if "list_price" not in errors and price is not None and (price < 0 or price != price.quantize(Decimal("0.01"))):
        errors["list_price"] = _gettext(
            request, "Der Listenpreis muss ≥ 0 sein und darf höchstens zwei Nachkommastellen haben.")
    rate = changes.get("vat_rate")
    if "vat_rate" not in errors and rate is not None and not 0 <= rate <= 100:
        errors["vat_rate"] = _gettext(request, "Der Umsatzsteuersatz muss zwischen 0 und 100 liegen.")
    return typed, changes, errors


def _product_page(request: Request, user: Principal, values: dict[str, Any], product_id: int | None,
                  errors: dict[str, str] | None = None, message: str | None = None,
                  status_code: int = 200) -> HTMLResponse:
    return _page(request, "product_form.html", status_code, user=user, values=values, product_id=product_id,
                 errors=errors or {}, message=message, categories=crm_products.CATEGORIES, kinds=crm_products.KINDS,
                 steps=crm_products.PROVISIONING_STEPS, step_labels=STEP_LABELS)


def _field_of(exc: DomainError) -> str:
    return exc.field if exc.field in PRODUCT_FIELDS or exc.field in ("active", "provisioning_steps") else ""


@router.get("/products/new", response_class=HTMLResponse)
def new_product(request: Request) -> HTMLResponse:
    user = require_user(request, "manager")
    values = {"code": "", "name": "", "description": "", "category": "", "kind": "", "list_price": "",
              "vat_rate": "19", "active": True, "provisioning_steps": []}
    return _product_page(request, user, values, None)


@router.post("/products/new", response_model=None)
def create_product(request: Request, form: PageForm) -> Response:
    user = require_user(request, "manager")
    checked_form(request, user, form)
    typed, changes, errors = _product_values(request, form, new=True)
    if not errors:
        data = crm_products.ProductInput(code=typed["code"], name=changes["name"], category=changes["category"],
                                         kind=changes["kind"], list_price=changes["list_price"],
                                         vat_rate=changes["vat_rate"], description=changes["description"],
                                         active=changes["active"],
                                         provisioning_steps=tuple(changes["provisioning_steps"]))
        try:
            with engine_of(request).db.transaction() as conn:
                crm_products.create_product(conn, data)
        except DomainError as exc:
            errors[_field_of(exc)] = exc.message
        else:
            return RedirectResponse("/products?saved=" + url_quote(typed["code"]), status_code=303)
    message = _gettext(request, "Bitte die markierten Felder korrigieren.")
    if "" in errors:
        message = errors.pop("")
    return _product_page(request, user, typed, None, errors, message, 422)


@router.get("/products/{product_id}/edit", response_class=HTMLResponse)
def edit_product(request: Request, product_id: int) -> HTMLResponse:
    user = require_user(request, "manager")
    with engine_of(request).db.read() as conn:
        row = conn.execute(sa.select(product).where(product.c.id == product_id)).one_or_none()
        if row is None:
            raise NotFound(f"product {product_id} does not exist")
        steps = crm_products.provisioning_steps(conn, [product_id]).get(product_id, [])
    values = {"code": row.code, "name": row.name, "description": row.description or "", "category": row.category,
              "kind": row.kind, "list_price": f"{row.list_price:.2f}".replace(".", ","),
              "vat_rate": decimal_text(row.vat_rate), "active": row.active, "provisioning_steps": steps}
    return _product_page(request, user, values, product_id)


@router.post("/products/{product_id}/edit", response_model=None)
def save_product(request: Request, product_id: int, form: PageForm) -> Response:
    user = require_user(request, "manager")
    checked_form(request, user, form)
    typed, changes, errors = _product_values(request, form, new=False)
    with engine_of(request).db.read() as conn:
        code = conn.execute(sa.select(product.c.code).where(product.c.id == product_id)).scalar_one_or_none()
    if code is None:
        raise NotFound(f"product {product_id} does not exist")
    typed["code"] = code
    if not errors:
        try:
            with engine_of(request).db.transaction() as conn:
                crm_products.update_product(conn, product_id, **changes)
        except DomainError as exc:
            errors[_field_of(exc)] = exc.message
        else:
            return RedirectResponse("/products?saved=" + url_quote(str(code)), status_code=303)
    message = _gettext(request, "Bitte die markierten Felder korrigieren.")
    if "" in errors:
        message = errors.pop("")
    return _product_page(request, user, typed, product_id, errors, message, 422)
