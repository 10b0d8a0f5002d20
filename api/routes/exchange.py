"""Data exchange: CSV export and import of accounts, contacts and products; vCards of contacts.

Imports take the file as a multipart upload (field ``file``) or as a ``text/csv`` body and answer 200 with a
per-row report even when rows fail (each row is its own savepoint); only an unreadable file is a 422 problem
naming the column at fault. The exports under ``/exports`` write every row with the columns the imports read
(segments, addresses, provisioning steps), so an export imported elsewhere and exported again is the same file
but for the ids.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from crm import accounts as crm_accounts
from crm import exchange as crm_exchange

from ..deps import Text, crm_errors, engine_of, found, read_upload, unreadable
from ..identity import Principal
from ..listing import camel_key, camel_row, csv_response, page, wants_csv
from ..models import MAX_INT, Camel
from ..security import require

router = APIRouter(tags=["exchange"])
MAX_UPLOAD = 10 * 1024 * 1024
VCARD = "text/vcard; charset=utf-8"
CSV_OR_JSON: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {}, "text/csv": {}}}}
CSV_ONLY: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}
VCARD_ONLY: dict[int | str, dict[str, Any]] = {200: {"content": {"text/vcard": {"schema": {"type": "string"}}}}}
UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "the CSV file (UTF-8, ';' or ',')"}}}},
    "text/csv": {"schema": {"type": "string"}},
}}}
DryRun = Annotated[bool, Query(alias="dryRun", description="report what would happen, keep nothing")]
DecimalComma = Annotated[bool, Query(alias="decimalComma", description="German decimal comma in numbers")]


class RowErrorOut(Camel):
    field: str
    message: str


class ImportRowOut(Camel):
    row: int = Field(description="row number as a spreadsheet shows it (the header is row 1)")
    status: Literal["created", "updated", "error"]
    id: int | None = None
    key: str | None = Field(default=None, description="account number, product code or contact name")
    errors: list[RowErrorOut]


class ImportReportOut(Camel):
    kind: Literal["accounts", "contacts", "products"]
    dry_run: bool
    delimiter: str
    ignored_columns: list[str]
    total: int
    created: int
    updated: int
    failed: int
    rows: list[ImportRowOut]


async def _import(request: Request, kind: crm_exchange.ImportKind, dry_run: bool, principal: Principal
                  ) -> dict[str, Any]:
    content = (await read_upload(request, MAX_UPLOAD)).content

    def run() -> dict[str, Any]:
        with engine_of(request).db.transaction() as conn:
            return crm_exchange.import_csv(conn, kind, content, dry_run=dry_run,
                                           default_owner=principal.name).as_dict()

    try:
        return await run_in_threadpool(run)
    except crm_exchange.CsvError as exc:
        raise unreadable(camel_key(exc.field), exc.message) from None


@router.post("/imports/accounts", response_model=ImportReportOut, openapi_extra=UPLOAD_BODY)
async def import_accounts(request: Request, principal: Annotated[Principal, Depends(require("clerk", "manager"))],
                          dry_run: DryRun = False) -> dict[str, Any]:
    """Accounts by ``number`` (updated when it exists, else created with that number); segments, addresses."""
    return await _import(request, "accounts", dry_run, principal)


@router.post("/imports/contacts", response_model=ImportReportOut, openapi_extra=UPLOAD_BODY)
async def import_contacts(request: Request, principal: Annotated[Principal, Depends(require("clerk", "manager"))],
                          dry_run: DryRun = False) -> dict[str, Any]:
    """Contacts of the account named by ``accountNumber``; the same person of the same account is updated."""
    return await _import(request, "contacts", dry_run, principal)


@router.post("/imports/products", response_model=ImportReportOut, openapi_extra=UPLOAD_BODY)
async def import_products(request: Request, principal: Annotated[Principal, Depends(require("manager"))],
                          dry_run: DryRun = False) -> dict[str, Any]:
    """Products by ``code`` (updated when it exists); prices with decimal point or German decimal comma."""
    return await _import(request, "products", dry_run, principal)


def _columns(fields: tuple[str, ...]) -> list[str]:
    return [camel_key(name) for name in fields]


@router.get("/exports/accounts", response_class=Response, responses=CSV_ONLY)
def export_accounts(request: Request, _p: Annotated[Principal, Depends(require())],
                    decimal_comma: DecimalComma = False) -> Response:
    """Every account with segments and addresses, as ``POST /imports/accounts`` reads it."""
    with engine_of(request).db.read() as conn:
        rows = crm_exchange.account_rows(conn)
    return csv_response([camel_row(r) for r in rows], "accounts", _columns(crm_exchange.ACCOUNT_COLUMNS),
                        decimal_comma)


@router.get("/exports/contacts", response_class=Response, responses=CSV_ONLY)
def export_contacts(request: Request, _p: Annotated[Principal, Depends(require())],
                    decimal_comma: DecimalComma = False) -> Response:
    """Every contact with its account number, as ``POST /imports/contacts`` reads it."""
    with engine_of(request).db.read() as conn:
        rows, _total = crm_exchange.list_contacts(conn, limit=MAX_INT)
    return csv_response([camel_row(r) for r in rows], "contacts", _columns(crm_exchange.CONTACT_COLUMNS),
                        decimal_comma)


@router.get("/exports/products", response_class=Response, responses=CSV_ONLY)
def export_products(request: Request, _p: Annotated[Principal, Depends(require())],
                    decimal_comma: DecimalComma = False) -> Response:
    """Every product with its provisioning steps, as ``POST /imports/products`` reads it."""
    with engine_of(request).db.read() as conn:
        rows = crm_exchange.product_rows(conn)
    return csv_response([camel_row(r) for r in rows], "products", _columns(crm_exchange.PRODUCT_COLUMNS),
                        decimal_comma)


@router.get("/contacts", responses=CSV_OR_JSON)
def list_contacts(request: Request, _p: Annotated[Principal, Depends(require())],
                  q: Annotated[str, Query(max_length=200)] = "",
                  account_id: Annotated[int | None, Query(alias="accountId", ge=1, le=MAX_INT)] = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                  offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0) -> Any:
    """Contacts by name, e-mail or account; ``format=csv`` gives the same page as CSV (importable again)."""
    with engine_of(request).db.read() as conn:
        rows, total = crm_exchange.list_contacts(conn, q, account_id, limit, offset)
    if not rows and wants_csv(request):  # an empty page still names its columns
        return csv_response([], "contacts", _columns(crm_exchange.CONTACT_COLUMNS))
    return page(request, rows, total, limit, offset, "contacts")


def _vcard_response(text: str, filename: str) -> Response:
    return Response(text, media_type=VCARD, headers={"Content-Disposition": f'attachment; filename="{filename}.vcf"'})


VCardVersion = Annotated[Literal["3.0", "4.0"], Query(description="vCard 3.0 (every address book) or 4.0")]


@router.get("/contacts/{contact_id}.vcf", response_class=Response, responses=VCARD_ONLY)
def contact_vcard(request: Request, contact_id: Annotated[int, Path(ge=1, le=MAX_INT)],
                  _p: Annotated[Principal, Depends(require())], version: VCardVersion = "3.0") -> Response:
    """One contact as a vCard for the address book."""
    with engine_of(request).db.read() as conn:
        text = found(crm_exchange.contacts_vcard, conn, [contact_id], version)
    return _vcard_response(text, f"contact-{contact_id}")


@router.get("/accounts/{account_id}/contacts.vcf", response_class=Response, responses=VCARD_ONLY)
def account_contacts_vcard(request: Request, account_id: Annotated[int, Path(ge=1, le=MAX_INT)],
                           _p: Annotated[Principal, Depends(require())], version: VCardVersion = "3.0") -> Response:
    """All contacts of an account as one vCard file."""
    with engine_of(request).db.read() as conn:
        ids = found(crm_exchange.contact_ids_of_account, conn, account_id)
        text = crm_exchange.contacts_vcard(conn, ids, version)
        number = crm_accounts.get_account(conn, account_id).number
    return _vcard_response(text, f"{number}-contacts")


class ContactPatch(Camel):
    """A person's data; ``null`` clears an optional field (the last name stays required)."""

    salutation: Text | None = Field(default=None, max_length=20)
    academic_title: Text | None = Field(default=None, max_length=50)
    first_name: Text | None = Field(default=None, max_length=100)
    last_name: Text | None = Field(default=None, max_length=100)
    role: Text | None = Field(default=None, max_length=100)
    email: Text | None = Field(default=None, max_length=254)
    phone: Text | None = Field(default=None, max_length=40)
    preferred_language: Text | None = Field(default=None, max_length=5)
    marketing_opt_out: bool | None = None


def _contact(conn: Any, contact_id: int) -> dict[str, Any]:
    """The contact with its letter salutation, or 404 (registered after ``.vcf`` so that path stays a vCard)."""
    row = found(crm_accounts.get_contact, conn, contact_id)
    return {**camel_row(dict(row._mapping)), "letterSalutation": crm_accounts.contact_salutation(conn, contact_id)}


@router.get("/contacts/{contact_id}")
def get_contact(request: Request, contact_id: Annotated[int, Path(ge=1, le=MAX_INT)],
                _p: Annotated[Principal, Depends(require())]) -> dict[str, Any]:
    with engine_of(request).db.read() as conn:
        return _contact(conn, contact_id)


@router.patch("/contacts/{contact_id}")
def patch_contact(request: Request, contact_id: Annotated[int, Path(ge=1, le=MAX_INT)], body: ContactPatch,
                  _p: Annotated[Principal, Depends(require("clerk", "manager", "integration"))]) -> dict[str, Any]:
    """Change a person's data, checked as on creation (phone to E.164, e-mail, salutation, language)."""
    with engine_of(request).db.transaction() as conn:
        _contact(conn, contact_id)
        with crm_errors():
            crm_accounts.update_contact(conn, contact_id, **body.model_dump(exclude_unset=True))
        return _contact(conn, contact_id)
