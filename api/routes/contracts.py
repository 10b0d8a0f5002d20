"""Contracts (``crm.contracts``): terms and notice periods over booked services, changes of the terms,
notice.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from sqlalchemy.engine import Connection

from crm import contracts as crm_contracts
from crm import queries as crm_queries

from ..deps import (
    AccountFilter,
    Day,
    Id,
    Limit,
    Offset,
    Reader,
    RefId,
    Search,
    StatusFilter,
    Writer,
    crm_errors,
    engine_of,
    found,
)
from ..listing import camel_row, page
from ..models import MAX_INT, Camel

router = APIRouter(tags=["sales"])


class ContractIn(Camel):
    account_id: RefId
    start_date: Day
    term_months: int = Field(ge=1, le=MAX_INT)
    notice_months: int = Field(default=3, ge=0, le=MAX_INT)
    auto_renewal: bool = True
    renewal_months: int = Field(default=12, ge=1, le=MAX_INT)
    booked_service_ids: list[RefId] = Field(default_factory=list, max_length=1000)


class NoticeIn(Camel):
    received_on: Day


class ContractPatch(Camel):
    """New terms of an active contract; omitted ones stay."""

    term_months: int | None = Field(default=None, ge=1, le=MAX_INT)
    notice_months: int | None = Field(default=None, ge=0, le=MAX_INT)
    auto_renewal: bool | None = None
    renewal_months: int | None = Field(default=None, ge=1, le=MAX_INT)


def _contract_view(conn: Connection, contract_id: int) -> dict[str, Any]:
    row = crm_contracts.get_contract(conn, contract_id)
    return {**camel_row(dict(row._mapping)),
            "bookedServiceIds": crm_contracts.services_of_contract(conn, contract_id)}


@router.get("/contracts")
def list_contracts(request: Request, _p: Reader, account_id: AccountFilter = None, status: StatusFilter = None,
                   q: Search = "", limit: Limit = 50, offset: Offset = 0) -> Any:
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
    with engine_of(request).db.transaction() as conn, crm_errors():
        contract_id = crm_contracts.create_contract(conn, body.account_id, terms)
        return _contract_view(conn, contract_id)


@router.get("/contracts/{contract_id}")
def get_contract(request: Request, contract_id: Id, _p: Reader) -> dict[str, Any]:
    with engine_of(request).db.read() as conn:
        found(crm_contracts.get_contract, conn, contract_id)
        return _contract_view(conn, contract_id)


@router.patch("/contracts/{contract_id}")
def patch_contract(request: Request, contract_id: Id, body: ContractPatch, _p: Writer) -> dict[str, Any]:
    """Change the terms of an active contract (a terminated or ended one is a 409); end, notice deadline and
    renewal reminder date follow. The term changes only during the first term (after a renewal: 422)."""
    with engine_of(request).db.transaction() as conn:
        found(crm_contracts.get_contract, conn, contract_id)
        with crm_errors("status"):
            crm_contracts.update_contract(conn, contract_id, **body.model_dump(exclude_unset=True))
        return _contract_view(conn, contract_id)


@router.post("/contracts/{contract_id}/notice")
def give_notice(request: Request, contract_id: Id, body: NoticeIn, _p: Writer) -> dict[str, Any]:
    """Terminate: ends at this term's end when the notice is in time, else at the next renewal's end."""
    with engine_of(request).db.transaction() as conn:
        found(crm_contracts.get_contract, conn, contract_id)
        with crm_errors("status"):
            end = crm_contracts.give_notice(conn, contract_id, body.received_on)
        return {"endDate": end, "contract": _contract_view(conn, contract_id)}
