"""CRM resources (first slice): accounts with their 360° view, contacts, addresses and the product catalogue.

Business rules live in ``crm``; this layer maps JSON to its services and its ``DomainError`` to a 422 problem
naming the field (or 404 when the record does not exist).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field

from crm import accounts as crm_accounts
from crm import products as crm_products
from crm import queries as crm_queries
from crm.errors import DomainError
from engine.errors import NotFound

from ..identity import Principal
from ..listing import camel_row, csv_response, page, wants_csv
from ..models import MAX_INT, Camel
from ..security import require
from .definitions import engine_of

router = APIRouter(tags=["crm"])
AccountId = Annotated[int, Path(ge=1, le=MAX_INT)]


class AccountIn(Camel):
    name: str = Field(min_length=1, max_length=300)
    kind: str = "business"
    legal_form: str | None = Field(default=None, max_length=100)
    vat_id: str | None = Field(default=None, max_length=30)
    segments: list[str] = Field(default_factory=list)
    owner: str | None = Field(default=None, max_length=200)
    sla_class: str = "bronze"


class AccountPatch(Camel):
    name: str | None = Field(default=None, min_length=1, max_length=300)
    legal_form: str | None = Field(default=None, max_length=100)
    vat_id: str | None = Field(default=None, max_length=30)
    owner: str | None = Field(default=None, max_length=200)
    status: str | None = None
    segments: list[str] | None = None


class ContactIn(Camel):
    last_name: str = Field(min_length=1, max_length=100)
    salutation: str = "none"
    first_name: str | None = Field(default=None, max_length=100)
    academic_title: str | None = Field(default=None, max_length=50)
    role: str | None = Field(default=None, max_length=100)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)
    preferred_language: str = "de"
    marketing_opt_out: bool = False


class AddressIn(Camel):
    kind: str
    street: str = Field(min_length=1, max_length=200)
    postal_code: str = Field(min_length=1, max_length=20)
    city: str = Field(min_length=1, max_length=100)
    country: str = Field(default="DE", min_length=2, max_length=2)


class ProductIn(Camel):
    code: str = Field(min_length=1, max_length=50)
    name: str = Field(min_length=1, max_length=200)
    category: str = Field(min_length=1, max_length=50)
    kind: str
    list_price: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    vat_rate: Decimal = Field(default=Decimal("19.00"), ge=0, le=100, max_digits=5, decimal_places=2)
    description: str | None = None
    active: bool = True
    provisioning_steps: list[str] = Field(default_factory=list)


def _existing_account(conn: Any, account_id: int) -> Any:
    """The account of the path, or 404 (an unknown id in a body stays a 422 from the CRM rules)."""
    try:
        return crm_accounts.get_account(conn, account_id)
    except DomainError as exc:
        raise NotFound(str(exc)) from exc


@router.get("/accounts")
def list_accounts(request: Request, _p: Annotated[Principal, Depends(require())], q: str = "",
                  limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                  offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0) -> Any:
    """Accounts by name prefix or number; ``format=csv`` gives the same page as CSV."""
    with engine_of(request).db.read() as conn:
        rows, total = crm_queries.search_accounts(conn, q, limit, offset)
    return page(request, rows, total, limit, offset, "accounts")


@router.get("/accounts/{account_id}")
def get_account(request: Request, account_id: AccountId,
                _p: Annotated[Principal, Depends(require())]) -> dict[str, Any]:
    with engine_of(request).db.read() as conn:
        _existing_account(conn, account_id)
        view = crm_queries.account_360(conn, account_id)
    return {key: ([camel_row(r) for r in value] if isinstance(value, list) and value and isinstance(value[0], dict)
                  else camel_row(value) if isinstance(value, dict) else value)
            for key, value in view.__dict__.items()}


@router.post("/accounts", status_code=201)
def create_account(request: Request, body: AccountIn,
                   principal: Annotated[Principal, Depends(require("clerk", "manager", "integration"))]
                   ) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        account_id = crm_accounts.create_account(
            conn, body.name, kind=body.kind, legal_form=body.legal_form, vat_id=body.vat_id, segments=body.segments,
            owner=body.owner or principal.name, sla_class=body.sla_class)
        return camel_row(dict(crm_accounts.get_account(conn, account_id)._mapping))


@router.patch("/accounts/{account_id}")
def patch_account(request: Request, account_id: AccountId, body: AccountPatch,
                  _p: Annotated[Principal, Depends(require("clerk", "manager", "integration"))]) -> dict[str, Any]:
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
def add_contact(request: Request, account_id: AccountId, body: ContactIn,
                _p: Annotated[Principal, Depends(require("clerk", "manager", "integration"))]) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        _existing_account(conn, account_id)
        contact_id = crm_accounts.create_contact(conn, crm_accounts.ContactInput(**body.model_dump()), account_id)
        return {"id": contact_id, "letterSalutation": crm_accounts.contact_salutation(conn, contact_id)}


@router.post("/accounts/{account_id}/addresses", status_code=201)
def add_address(request: Request, account_id: AccountId, body: AddressIn,
                _p: Annotated[Principal, Depends(require("clerk", "manager", "integration"))]) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        _existing_account(conn, account_id)
        return {"id": crm_accounts.add_address(conn, account_id, **body.model_dump())}


@router.get("/products")
def list_products(request: Request, _p: Annotated[Principal, Depends(require())],
                  active_only: Annotated[bool, Query(alias="activeOnly")] = False) -> Any:
    with engine_of(request).db.read() as conn:
        rows = crm_queries.list_products(conn, include_inactive=not active_only)
    if wants_csv(request):
        return csv_response([camel_row(r) for r in rows], "products",
                            decimal_comma=request.query_params.get("decimalComma") == "true")
    return [camel_row(r) for r in rows]


@router.post("/products", status_code=201)
def create_product(request: Request, body: ProductIn,
                   _p: Annotated[Principal, Depends(require("manager"))]) -> dict[str, Any]:
    data = body.model_dump()
    data["provisioning_steps"] = tuple(data["provisioning_steps"])
    with engine_of(request).db.transaction() as conn:
        return {"id": crm_products.create_product(conn, crm_products.ProductInput(**data))}
