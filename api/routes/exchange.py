"""Data exchange: CSV export and import of accounts, contacts and products; vCards of contacts.

Imports take the file as a multipart upload (field ``file``) or as a ``text/csv`` body and answer 200 with a
per-row report even when rows fail (each row is its own savepoint); only an unreadable file is a 422 problem
naming the column at fault. The exports under ``/exports`` write every row with the columns the imports read
(segments, addresses, provisioning steps), so an export imported elsewhere and exported again is the same file
but for the ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from crm import accounts as crm_accounts
from crm import exchange as crm_exchange
from crm.errors import DomainError
from engine.errors import NotFound

from ..identity import Principal
from ..listing import camel_key, camel_row, csv_response, page, wants_csv
from ..models import MAX_INT, Camel
from ..problems import ApiProblem
from ..security import require
from .definitions import engine_of
from .service_desk import Text

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


def _unreadable(field: str, message: str) -> ApiProblem:
    return ApiProblem(422, "Invalid file", f"{field}: {message}", "invalid-file",
                      [{"field": field, "message": message}])


@dataclass(frozen=True)
class Upload:
    """A file sent by a client: its bytes, the name and type the client gave, and the other form fields."""

    content: bytes
    file_name: str | None = None
    content_type: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and a few small fields around the file


async def read_upload(request: Request, max_size: int, what: str = "the CSV file", raw_body: bool = True) -> Upload:
    """The file of a multipart upload (field ``file``) or, with ``raw_body``, the request body itself.

    Larger than ``max_size`` is a 413 — decided from ``Content-Length`` before anything is parsed or spooled when
    the client sends it, else after reading at most one byte more than allowed.
    """
    too_large = ApiProblem(413, "Too large", f"the file is larger than {max_size // 1024 // 1024} MiB", "too-large",
                           [{"field": "file", "message": f"at most {max_size} bytes"}])
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_size + MULTIPART_OVERHEAD:
        raise too_large
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=1, max_fields=10)
        except Exception as exc:  # starlette raises its own error types for broken multipart bodies
            raise _unreadable("file", f"the multipart body cannot be read: {exc}") from None
        upload = form.get("file")
        fields = {name: value for name, value in form.items() if name != "file" and isinstance(value, str)}
        if isinstance(upload, UploadFile):
            content = await upload.read(max_size + 1)
            if len(content) > max_size:
                raise too_large
            return Upload(content, upload.filename, upload.content_type, fields)
        if isinstance(upload, str) and raw_body:
            content = upload.encode()
        else:
            raise _unreadable("file", f"upload {what} in the form field 'file'")
    elif raw_body:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_size:
                raise too_large
            chunks.append(chunk)
        content = b"".join(chunks)
    else:
        raise ApiProblem(415, "Unsupported media type", f"send {what} as multipart/form-data (field 'file')",
                         "unsupported-media-type", [{"field": "file", "message": "multipart/form-data expected"}])
    if len(content) > max_size:
        raise too_large
    return Upload(content)


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
        raise _unreadable(camel_key(exc.field), exc.message) from None


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
        try:
            text = crm_exchange.contacts_vcard(conn, [contact_id], version)
        except DomainError as exc:
            raise NotFound(str(exc)) from exc
    return _vcard_response(text, f"contact-{contact_id}")


@router.get("/accounts/{account_id}/contacts.vcf", response_class=Response, responses=VCARD_ONLY)
def account_contacts_vcard(request: Request, account_id: Annotated[int, Path(ge=1, le=MAX_INT)],
                           _p: Annotated[Principal, Depends(require())], version: VCardVersion = "3.0") -> Response:
    """All contacts of an account as one vCard file."""
    with engine_of(request).db.read() as conn:
        try:
            ids = crm_exchange.contact_ids_of_account(conn, account_id)
        except DomainError as exc:
            raise NotFound(str(exc)) from exc
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
    try:
        row = crm_accounts.get_contact(conn, contact_id)
    except DomainError as exc:
        raise NotFound(str(exc)) from exc
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
        try:
            crm_accounts.update_contact(conn, contact_id, **body.model_dump(exclude_unset=True))
        except DomainError as exc:
            raise DomainError(camel_key(exc.field), exc.message) from exc
        return _contact(conn, contact_id)
