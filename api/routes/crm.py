"""CRM resources: accounts with their 360° view, contacts, addresses, the product catalogue and the documents
of an account (upload, list, metadata, content).

Business rules live in ``crm``; this layer maps JSON to its services and its ``DomainError`` to a 422 problem
naming the field (or 404 when the record does not exist).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from crm import accounts as crm_accounts
from crm import campaigns as crm_campaigns
from crm import documents as crm_documents
from crm import exchange as crm_exchange
from crm import products as crm_products
from crm import queries as crm_queries
from crm.errors import DomainError

from ..deps import (
    LIST,
    FilterId,
    Id,
    Limit,
    Manager,
    Offset,
    Reader,
    Text,
    Writer,
    conflict,
    crm_errors,
    engine_of,
    found,
    read_upload,
)
from ..headers import download_headers
from ..identity import Principal
from ..listing import camel_key, camel_row, csv_response, page, wants_csv
from ..models import MAX_INT, Camel
from ..problems import ApiProblem

router = APIRouter(tags=["crm"])
ProductRef = Annotated[Text, Path(min_length=1, max_length=50, description="the product code, or its numeric id")]


class AccountIn(Camel):
    name: Text = Field(min_length=1, max_length=300)
    kind: Text = "business"
    legal_form: Text | None = Field(default=None, max_length=100)
    vat_id: Text | None = Field(default=None, max_length=30)
    segments: list[Text] = Field(default_factory=list)
    owner: Text | None = Field(default=None, max_length=200)
    sla_class: Text = "bronze"


class AccountPatch(Camel):
    name: Text | None = Field(default=None, min_length=1, max_length=300)
    legal_form: Text | None = Field(default=None, max_length=100)
    vat_id: Text | None = Field(default=None, max_length=30)
    owner: Text | None = Field(default=None, max_length=200)
    status: Text | None = None
    segments: list[Text] | None = None


class ContactIn(Camel):
    last_name: Text = Field(min_length=1, max_length=100)
    salutation: Text = "none"
    first_name: Text | None = Field(default=None, max_length=100)
    academic_title: Text | None = Field(default=None, max_length=50)
    role: Text | None = Field(default=None, max_length=100)
    email: Text | None = Field(default=None, max_length=254)
    phone: Text | None = Field(default=None, max_length=40)
    preferred_language: Text = "de"
    marketing_opt_out: bool = False


class AddressIn(Camel):
    kind: Text
    street: Text = Field(min_length=1, max_length=200)
    postal_code: Text = Field(min_length=1, max_length=20)
    city: Text = Field(min_length=1, max_length=100)
    country: Text = Field(default="DE", min_length=2, max_length=2)


class ProductIn(Camel):
    code: Text = Field(min_length=1, max_length=50)
    name: Text = Field(min_length=1, max_length=200)
    category: Text = Field(min_length=1, max_length=50)
    kind: Text
    list_price: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    vat_rate: Decimal = Field(default=Decimal("19.00"), ge=0, le=100, max_digits=5, decimal_places=2)
    description: Text | None = None
    active: bool = True
    provisioning_steps: list[Text] = Field(default_factory=list)


class ProductPatch(Camel):
    """The catalogue fields a manager may change; the code stays (quotes and orders refer to it)."""

    name: Text | None = Field(default=None, min_length=1, max_length=200)
    category: Text | None = Field(default=None, max_length=50)
    kind: Text | None = Field(default=None, max_length=50)
    list_price: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)
    vat_rate: Decimal | None = Field(default=None, ge=0, le=100, max_digits=5, decimal_places=2)
    description: Text | None = Field(default=None, max_length=10000)
    active: bool | None = None
    provisioning_steps: list[Text] | None = Field(default=None, max_length=10)


def _existing_account(conn: Any, account_id: int) -> Any:
    """The account of the path, or 404 (an unknown id in a body stays a 422 from the CRM rules)."""
    return found(crm_accounts.get_account, conn, account_id)


@router.get("/accounts")
def list_accounts(request: Request, _p: Reader, q: str = "", limit: Limit = 50, offset: Offset = 0) -> Any:
    """Accounts by name prefix or number; ``format=csv`` gives the same page as CSV."""
    with engine_of(request).db.read() as conn:
        rows, total = crm_queries.search_accounts(conn, q, limit, offset)
    return page(request, rows, total, limit, offset, "accounts")


@router.get("/accounts/{account_id}")
def get_account(request: Request, account_id: Id,
                _p: Reader) -> dict[str, Any]:
    with engine_of(request).db.read() as conn:
        _existing_account(conn, account_id)
        view = crm_queries.account_360(conn, account_id)
    return {key: ([camel_row(r) for r in value] if isinstance(value, list) and value and isinstance(value[0], dict)
                  else camel_row(value) if isinstance(value, dict) else value)
            for key, value in view.__dict__.items()}


@router.post("/accounts", status_code=201)
def create_account(request: Request, body: AccountIn,
                   principal: Writer
                   ) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        account_id = crm_accounts.create_account(
            conn, body.name, kind=body.kind, legal_form=body.legal_form, vat_id=body.vat_id, segments=body.segments,
            owner=body.owner or principal.name, sla_class=body.sla_class)
        return camel_row(dict(crm_accounts.get_account(conn, account_id)._mapping))


@router.patch("/accounts/{account_id}")
def patch_account(request: Request, account_id: Id, body: AccountPatch,
                  _p: Writer) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    with engine_of(request).db.transaction() as conn:
        _existing_account(conn, account_id)
        status = changes.pop("status", None)
        segments = changes.pop("segments", None)
        if changes:
            crm_accounts.update_account(conn, account_id, **changes)
        if segments is not None:
            crm_accounts.set_segments(conn, account_id, segments)
        if status is not None:
            crm_accounts.set_account_status(conn, account_id, status)
        return camel_row(dict(crm_accounts.get_account(conn, account_id)._mapping))


@router.post("/accounts/{account_id}/contacts", status_code=201)
def add_contact(request: Request, account_id: Id, body: ContactIn,
                _p: Writer) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        _existing_account(conn, account_id)
        contact_id = crm_accounts.create_contact(conn, crm_accounts.ContactInput(**body.model_dump()), account_id)
        return {"id": contact_id, "letterSalutation": crm_accounts.contact_salutation(conn, contact_id)}


@router.post("/accounts/{account_id}/addresses", status_code=201)
def add_address(request: Request, account_id: Id, body: AddressIn,
                _p: Writer) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        _existing_account(conn, account_id)
        return {"id": crm_accounts.add_address(conn, account_id, **body.model_dump())}


@router.get("/products", responses=LIST)
def list_products(request: Request, _p: Reader,
                  q: Annotated[Text, Query(max_length=200)] = "",
                  category: Annotated[Text | None, Query(max_length=50)] = None,
                  kind: Annotated[Text | None, Query(max_length=30)] = None,
                  active_only: Annotated[bool, Query(alias="activeOnly")] = False,
                  limit: Limit = 50, offset: Offset = 0) -> Any:
    """The catalogue by category and code, with provisioning steps; ``q`` searches code and name, ``category``,
    ``kind`` and ``activeOnly`` filter; ``format=csv`` gives the same page as CSV (importable again)."""
    with engine_of(request).db.read() as conn:
        rows, total = crm_exchange.list_products(conn, q, category=category, kind=kind,
                                                 active=True if active_only else None, limit=limit, offset=offset)
    if not rows and wants_csv(request):  # an empty page still names its columns
        return csv_response([], "products", [camel_key(name) for name in crm_exchange.PRODUCT_COLUMNS])
    return page(request, rows, total, limit, offset, "products")


@router.post("/products", status_code=201)
def create_product(request: Request, body: ProductIn,
                   _p: Manager) -> dict[str, Any]:
    data = body.model_dump()
    data["provisioning_steps"] = tuple(data["provisioning_steps"])
    with engine_of(request).db.transaction() as conn:
        return {"id": crm_products.create_product(conn, crm_products.ProductInput(**data))}


def _product(conn: Any, reference: str) -> dict[str, Any]:
    """The product a path names by code or id, or 404."""
    product_id = found(crm_products.product_id_by_reference, conn, reference)
    return found(crm_products.product_view, conn, product_id)


@router.get("/products/{reference}")
def get_product(request: Request, reference: ProductRef, _p: Reader
                ) -> dict[str, Any]:
    """One product with its provisioning steps, by code (``ADSL-16``) or id."""
    with engine_of(request).db.read() as conn:
        return camel_row(_product(conn, reference))


@router.patch("/products/{reference}")
def patch_product(request: Request, reference: ProductRef, body: ProductPatch,
                  _p: Manager) -> dict[str, Any]:
    """Change catalogue data (validated like a new product); quotes and orders keep the prices they have."""
    changes = body.model_dump(exclude_unset=True)
    with engine_of(request).db.transaction() as conn:
        product_id = int(_product(conn, reference)["id"])
        with crm_errors():
            crm_products.update_product(conn, product_id, **changes)
        return camel_row(crm_products.product_view(conn, product_id))


# --- documents -----------------------------------------------------------------------------------------------

DOCUMENT_LINKS = ("quote_id", "order_id", "invoice_id")
DOCUMENT_UPLOAD: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": "the document; its part's Content-Type (or else its file name) gives the type"},
        **{camel_key(link): {"type": "integer", "minimum": 1, "maximum": MAX_INT,
                             "description": f"link to this {link.removesuffix('_id')} of the same account"}
           for link in DOCUMENT_LINKS}}}}}}}
UNSUPPORTED: dict[int | str, dict[str, Any]] = {415: {"description": "A file type that is not accepted"}}
CONTENT: dict[int | str, dict[str, Any]] = {200: {"content": {
    mime: {"schema": {"type": "string", "format": "binary"}} for mime in crm_documents.ACCEPTED_TYPES}}}


def _document_out(row: Any) -> dict[str, Any]:
    out = camel_row(dict(row._mapping) if not isinstance(row, dict) else row)
    out["contentUrl"] = f"/api/v1/documents/{out['id']}/content"
    return out


def _upload_links(fields: dict[str, str], account_id: int) -> crm_documents.DocumentLinks:
    """The optional record links of an upload form: whole numbers, named as the form spells them."""
    links: dict[str, int] = {}
    for link in DOCUMENT_LINKS:
        text = fields.get(camel_key(link), "").strip()
        if not text:
            continue
        if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_INT):
            raise DomainError(camel_key(link), f"{camel_key(link)} must be a record id, got {text!r}")
        links[link] = int(text)
    return crm_documents.DocumentLinks(account_id=account_id, **links)


def _upload_problem(exc: DomainError) -> Exception:
    """A refused upload as the client sees it: an unaccepted type is a 415, anything else a 422 on its field."""
    field = {"data": "file", "file_name": "file", "mime_type": "file"}.get(exc.field, camel_key(exc.field))
    if exc.field == "mime_type":
        return ApiProblem(415, "Unsupported media type", exc.message, "unsupported-media-type",
                          [{"field": field, "message": exc.message}])
    return DomainError(field, exc.message)


@router.post("/accounts/{account_id}/documents", status_code=201, openapi_extra=DOCUMENT_UPLOAD,
             responses=UNSUPPORTED)
async def upload_document(request: Request, account_id: Id, principal: Writer) -> dict[str, Any]:
    """Store a file of the account (multipart field ``file``, optionally linked to a quote, order or invoice of
    the account); larger than 50 MiB is a 413, a type not accepted a 415."""
    upload = await read_upload(request, crm_documents.MAX_SIZE, "the document", raw_body=False)

    def store() -> dict[str, Any]:
        with engine_of(request).db.transaction() as conn:
            _existing_account(conn, account_id)
            try:
                links = _upload_links(upload.fields, account_id)
                name = upload.file_name or ""
                mime = crm_documents.accepted_type(upload.content, upload.content_type, name)
                document_id = crm_documents.DocumentStore().store(conn, upload.content, name, mime, links,
                                                                  uploaded_by=principal.name)
            except DomainError as exc:
                raise _upload_problem(exc) from exc
            return _document_out(crm_documents.get_document(conn, document_id))

    return await run_in_threadpool(store)


@router.get("/accounts/{account_id}/documents", responses=LIST)
def list_documents(request: Request, account_id: Id, _p: Reader,
                   q: Annotated[str, Query(max_length=200)] = "",
                   quote_id: Annotated[FilterId, Query(alias="quoteId")] = None,
                   order_id: Annotated[FilterId, Query(alias="orderId")] = None,
                   invoice_id: Annotated[FilterId, Query(alias="invoiceId")] = None,
                   limit: Limit = 50, offset: Offset = 0) -> Any:
    """The account's documents, newest first (``q`` searches the file name); ``format=csv`` as CSV."""
    links = {name: value for name, value in
             (("quote_id", quote_id), ("order_id", order_id), ("invoice_id", invoice_id)) if value is not None}
    with engine_of(request).db.read() as conn:
        _existing_account(conn, account_id)
        rows, total = crm_documents.list_documents(conn, account_id, links=links, text=q.replace("\x00", ""),
                                                   limit=limit, offset=offset)
    return page(request, [_document_out(r) for r in rows], total, limit, offset, "documents")


CAMPAIGN_GROUP = "sales"  # the candidate group of the campaign mailing process: it works with the recipient lists


def _may_read_internal(conn: Any, principal: Principal, row: Any) -> bool:
    """A document of no account is personal (a receipt, a sick note's certificate): its uploader, a manager or an
    integration may read it. A campaign mailing's recipient list is no one's: the sales group may read it too."""
    if row.uploaded_by == principal.name or principal.has("manager", "integration"):
        return True
    return CAMPAIGN_GROUP in principal.groups and crm_campaigns.mailing_list_campaign(conn, row) is not None


def _readable_document(conn: Any, principal: Principal, document_id: int) -> Any:
    """The document of a path, or 404; one of no account only for those :func:`_may_read_internal` allows."""
    row = found(crm_documents.get_document, conn, document_id)
    if row.account_id is None and not _may_read_internal(conn, principal, row):
        raise ApiProblem(403, "Forbidden", f"document {document_id} is a personal document of another employee",
                         "forbidden")
    return row


@router.get("/documents/{document_id}")
def get_document(request: Request, document_id: Id, principal: Reader
                 ) -> dict[str, Any]:
    """A document's facts (name, type, size, sha256, links) without its bytes."""
    with engine_of(request).db.read() as conn:
        return _document_out(_readable_document(conn, principal, document_id))


@router.get("/documents/{document_id}/content", response_class=Response, responses=CONTENT)
def document_content(request: Request, document_id: Id,
                     principal: Reader) -> Response:
    """The stored bytes with their MIME type, as a download named like the uploaded file; a file that went
    missing or was altered on disk is a 409, never wrong content."""
    with engine_of(request).db.read() as conn:
        _readable_document(conn, principal, document_id)
        try:
            row, data = crm_documents.DocumentStore().read(conn, document_id)
        except DomainError as exc:
            raise conflict(exc.message, [{"field": "documentId", "message": exc.message}]) from exc
    return Response(data, media_type=str(row.mime_type), headers=download_headers(str(row.file_name)))
