"""Customers and contact persons created and changed in the browser, and an account's stored documents.

Every change goes through ``crm.accounts`` (the functions REST uses); its ``DomainError`` is shown next to the
field it names, in German. Clerks and managers edit; everybody logged in may look. Removing an address asks first.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from crm import accounts as crm_accounts
from crm import documents as crm_documents
from crm.errors import DomainError
from engine.database import Database
from engine.errors import NotFound

from ..headers import download_headers
from ..identity import Principal
from . import labels
from .rendering import PageForbidden, PageForm, checked_form, render, require_user

router = APIRouter(include_in_schema=False)
EDITORS = ("clerk", "manager")
ACCOUNT_FIELDS = ("name", "kind", "legal_form", "vat_id", "owner", "sla_class")
ADDRESS_FIELDS = ("kind", "street", "postal_code", "city", "country")
CONTACT_FIELDS = ("salutation", "academic_title", "first_name", "last_name", "role", "email", "phone",
                  "preferred_language")
MAX_FIELD = 1000  # what a page accepts per field before the CRM's own, smaller limits speak


def database(request: Request) -> Database:
    db: Database = request.app.state.engine.db
    return db


def text_of(form: FormData, name: str) -> str:
    return str(form.get(name) or "").strip()[:MAX_FIELD]


def _account_or_404(conn: Any, account_id: int) -> Any:
    try:
        return crm_accounts.get_account(conn, account_id)
    except DomainError as exc:
        raise NotFound(f"Kunde {account_id} gibt es nicht.") from exc


def _form_page(request: Request, user: Principal, template: str, status_code: int = 200, **context: Any
               ) -> HTMLResponse:
    context.setdefault("errors", {})
    context.setdefault("values", {})
    return render(request, template, status_code, user=user, labels=labels.ALL, legal_forms=labels.LEGAL_FORMS,
                  **context)


def _refused(errors: dict[str, str]) -> str:
    return "Bitte die markierten Felder korrigieren." if errors else ""


# -- new customer ---------------------------------------------------------------------------------------
@router.get("/customers/new", response_class=HTMLResponse)
def new_customer(request: Request) -> HTMLResponse:
    user = require_user(request, *EDITORS)
    return _form_page(request, user, "customer_form.html", account=None,
                      values={"kind": "business", "sla_class": "bronze", "address_kind": "billing", "country": "DE"})


def _account_changes(form: FormData) -> dict[str, str | None]:
    values: dict[str, str | None] = {name: text_of(form, name) for name in ACCOUNT_FIELDS}
    for optional in ("legal_form", "vat_id", "owner"):
        values[optional] = values[optional] or None
    return values


def _segments(form: FormData) -> list[str]:
    return [part.strip() for part in text_of(form, "segments").split(",") if part.strip()]


@router.post("/customers/new", response_model=None)
def create_customer(request: Request, form: PageForm) -> Response:
    """A new prospect, with its first address when one is given; nothing is stored unless all of it is valid.
    An account of the same name (a second click, or a customer already known) is shown instead of a copy."""
    user = require_user(request, *EDITORS)
    checked_form(request, user, form)
    values = _account_changes(form)
    address = {name: text_of(form, "address_" + name if name == "kind" else name) for name in ADDRESS_FIELDS}
    with_address = any(address[name] for name in ("street", "postal_code", "city"))
    shown = {**{k: v or "" for k, v in values.items()}, "segments": text_of(form, "segments"),
             "address_kind": address["kind"], **{k: address[k] for k in ("street", "postal_code", "city", "country")}}
    errors: dict[str, str] = {}
    db = database(request)
    if not form.get("confirm_duplicate") and values["name"]:
        with db.read() as conn:
            try:
                twins = crm_accounts.possible_duplicates(conn, str(values["name"]), None)
            except DomainError:
                twins = []
        if twins:
            return _form_page(request, user, "customer_form.html", 409, account=None, values=shown, twins=twins,
                              message="Einen Kunden mit diesem Namen gibt es schon.")
    try:
        with db.transaction() as conn:
            try:
                account_id = crm_accounts.create_account(
                    conn, str(values["name"] or ""), segments=_segments(form), kind=str(values["kind"] or ""),
                    legal_form=values["legal_form"], vat_id=values["vat_id"], owner=values["owner"],
                    sla_class=str(values["sla_class"] or ""))
            except DomainError as exc:
                errors[exc.field] = labels.field_message(exc)
                raise
            if with_address:
                try:
                    crm_accounts.add_address(conn, account_id, **address)
                except DomainError as exc:
                    errors["address_kind" if exc.field == "kind" else exc.field] = labels.field_message(exc)
                    raise
    except DomainError:
        return _form_page(request, user, "customer_form.html", 422, account=None, values=shown, errors=errors,
                          message=_refused(errors))
    return RedirectResponse(f"/customers/{account_id}?flash=created", status_code=303)


# -- edit the account -----------------------------------------------------------------------------------
@router.get("/customers/{account_id}/edit", response_class=HTMLResponse)
def edit_customer(request: Request, account_id: int) -> HTMLResponse:
    user = require_user(request, *EDITORS)
    with database(request).read() as conn:
        row = _account_or_404(conn, account_id)
        segments = crm_accounts.segments_of(conn, account_id)
    values = {name: getattr(row, name) or "" for name in ACCOUNT_FIELDS}
    values["segments"] = ", ".join(segments)
    return _form_page(request, user, "customer_form.html", account=row, values=values)


@router.post("/customers/{account_id}/edit", response_model=None)
def save_customer(request: Request, account_id: int, form: PageForm) -> Response:
    user = require_user(request, *EDITORS)
    checked_form(request, user, form)
    values = _account_changes(form)
    errors: dict[str, str] = {}
    db = database(request)
    with db.read() as conn:
        row = _account_or_404(conn, account_id)
    try:
        with db.transaction() as conn:
            crm_accounts.update_account(conn, account_id, **values)
            crm_accounts.set_segments(conn, account_id, _segments(form))
    except DomainError as exc:
        errors[exc.field] = labels.field_message(exc)
        shown = {**{k: v or "" for k, v in values.items()}, "segments": text_of(form, "segments")}
        return _form_page(request, user, "customer_form.html", 422, account=row, values=shown, errors=errors,
                          message=_refused(errors))
    return RedirectResponse(f"/customers/{account_id}?flash=saved", status_code=303)


# -- addresses ------------------------------------------------------------------------------------------
def _address_of(conn: Any, account_id: int, address_id: int) -> Any:
    try:
        row = crm_accounts.get_address(conn, address_id)
    except DomainError as exc:
        raise NotFound("Diese Adresse gibt es nicht (mehr).") from exc
    if row.account_id != account_id:
        raise NotFound("Diese Adresse gibt es nicht (mehr).")
    return row


@router.get("/customers/{account_id}/addresses/new", response_class=HTMLResponse)
@router.get("/customers/{account_id}/addresses/{address_id}/edit", response_class=HTMLResponse)
def address_form(request: Request, account_id: int, address_id: int | None = None) -> HTMLResponse:
    user = require_user(request, *EDITORS)
    with database(request).read() as conn:
        row = _account_or_404(conn, account_id)
        values = {"kind": "installation", "country": "DE"}
        if address_id is not None:
            found = _address_of(conn, account_id, address_id)
            values = {name: getattr(found, name) for name in ADDRESS_FIELDS}
    return _form_page(request, user, "address_form.html", account=row, address_id=address_id, values=values)


@router.post("/customers/{account_id}/addresses/new", response_model=None)
@router.post("/customers/{account_id}/addresses/{address_id}/edit", response_model=None)
def save_address(request: Request, account_id: int, form: PageForm, address_id: int | None = None) -> Response:
    user = require_user(request, *EDITORS)
    checked_form(request, user, form)
    values = {name: text_of(form, name) for name in ADDRESS_FIELDS}
    db = database(request)
    try:
        with db.transaction() as conn:
            _account_or_404(conn, account_id)
            if address_id is None:
                crm_accounts.add_address(conn, account_id, **values)
            else:
                _address_of(conn, account_id, address_id)
                crm_accounts.update_address(conn, address_id, **values)
    except DomainError as exc:
        errors = {exc.field: labels.field_message(exc)}
        with db.read() as conn:
            row = _account_or_404(conn, account_id)
        return _form_page(request, user, "address_form.html", 422, account=row, address_id=address_id,
                          values=values, errors=errors, message=_refused(errors))
    return RedirectResponse(f"/customers/{account_id}?flash=address", status_code=303)


@router.get("/customers/{account_id}/addresses/{address_id}/remove", response_class=HTMLResponse)
def confirm_remove_address(request: Request, account_id: int, address_id: int) -> HTMLResponse:
    """The question before the address goes: what is removed, and a button that does it."""
    user = require_user(request, *EDITORS)
    with database(request).read() as conn:
        row = _account_or_404(conn, account_id)
        found = _address_of(conn, account_id, address_id)
    return _form_page(request, user, "confirm.html", account=row, title="Adresse entfernen?",
                      question="Soll diese Adresse wirklich entfernt werden?",
                      detail=f"{labels.label(labels.ADDRESS_KIND, found.kind)}: {found.street}, "
                             f"{found.postal_code} {found.city} ({found.country})",
                      action=f"/customers/{account_id}/addresses/{address_id}/remove", button="Adresse entfernen",
                      back=f"/customers/{account_id}")


@router.post("/customers/{account_id}/addresses/{address_id}/remove", response_model=None)
def remove_address(request: Request, account_id: int, address_id: int, form: PageForm) -> Response:
    user = require_user(request, *EDITORS)
    checked_form(request, user, form)
    with database(request).transaction() as conn:
        _account_or_404(conn, account_id)
        _address_of(conn, account_id, address_id)
        crm_accounts.remove_address(conn, address_id)
    return RedirectResponse(f"/customers/{account_id}?flash=address_removed", status_code=303)


# -- contact persons ------------------------------------------------------------------------------------
def _contact_of(conn: Any, account_id: int, contact_id: int) -> Any:
    try:
        row = crm_accounts.get_contact(conn, contact_id)
    except DomainError as exc:
        raise NotFound("Diesen Ansprechpartner gibt es nicht.") from exc
    if row.account_id != account_id:
        raise NotFound("Diesen Ansprechpartner gibt es nicht.")
    return row


@router.get("/customers/{account_id}/contacts/new", response_class=HTMLResponse)
@router.get("/customers/{account_id}/contacts/{contact_id}/edit", response_class=HTMLResponse)
def contact_form(request: Request, account_id: int, contact_id: int | None = None) -> HTMLResponse:
    user = require_user(request, *EDITORS)
    with database(request).read() as conn:
        row = _account_or_404(conn, account_id)
        values: dict[str, Any] = {"salutation": "none", "preferred_language": "de"}
        if contact_id is not None:
            person = _contact_of(conn, account_id, contact_id)
            values = {name: getattr(person, name) or "" for name in CONTACT_FIELDS}
            values["marketing_opt_out"] = bool(person.marketing_opt_out)
    return _form_page(request, user, "contact_form.html", account=row, contact_id=contact_id, values=values)


@router.post("/customers/{account_id}/contacts/new", response_model=None)
@router.post("/customers/{account_id}/contacts/{contact_id}/edit", response_model=None)
def save_contact(request: Request, account_id: int, form: PageForm, contact_id: int | None = None) -> Response:
    """Add or change a contact person through ``crm.accounts`` (e-mail checked, phone stored as E.164); a person
    with the e-mail address of one the account has already is not added twice (a second click shows them)."""
    user = require_user(request, *EDITORS)
    checked_form(request, user, form)
    values: dict[str, Any] = {name: text_of(form, name) or None for name in CONTACT_FIELDS}
    values["salutation"] = values["salutation"] or "none"
    values["preferred_language"] = values["preferred_language"] or "de"
    values["last_name"] = values["last_name"] or ""
    values["marketing_opt_out"] = form.get("marketing_opt_out") == "on"
    db = database(request)
    try:
        with db.transaction() as conn:
            _account_or_404(conn, account_id)
            if contact_id is None:
                known = crm_accounts.contact_by_email(conn, account_id, values["email"]) if values["email"] else None
                if known is not None:
                    return RedirectResponse(f"/customers/{account_id}?flash=contact_known#contact-{known}",
                                            status_code=303)
                contact_id = crm_accounts.create_contact(conn, crm_accounts.ContactInput(**values), account_id)
            else:
                _contact_of(conn, account_id, contact_id)
                crm_accounts.update_contact(conn, contact_id, **values)
    except DomainError as exc:
        errors = {exc.field: labels.field_message(exc)}
        with db.read() as conn:
            row = _account_or_404(conn, account_id)
        shown = {k: v if v is not None else "" for k, v in values.items()}
        return _form_page(request, user, "contact_form.html", 422, account=row, contact_id=contact_id,
                          values=shown, errors=errors, message=_refused(errors))
    return RedirectResponse(f"/customers/{account_id}?flash=contact#contact-{contact_id}", status_code=303)


# -- documents ------------------------------------------------------------------------------------------
@router.get("/documents/{document_id}/download", response_model=None)
def download_document(request: Request, document_id: int) -> Response:
    """A stored document (quote, order confirmation, invoice PDF, upload) as an attachment with the download
    headers (nosniff, sandbox CSP): a customer's documents for every login, a personal one (no account) for its
    uploader and managers only."""
    user = require_user(request)
    with database(request).read() as conn:
        try:
            meta = crm_documents.get_document(conn, document_id)
        except DomainError as exc:
            raise NotFound("Dieses Dokument gibt es nicht.") from exc
        if meta.account_id is None and meta.uploaded_by != user.name and not user.has("manager"):
            raise PageForbidden()
        try:
            row, data = crm_documents.DocumentStore().read(conn, document_id)
        except DomainError as exc:
            raise NotFound("Die Datei dieses Dokuments fehlt oder ist beschädigt.") from exc
    return Response(data, media_type=str(row.mime_type), headers=download_headers(str(row.file_name)))
