"""Quotes (``crm.quotes``): drafts with positions from the catalogue, revisions, send, accept, reject.

Business rules live in ``crm``; ``deps.crm_errors`` makes their ``DomainError`` a 422 naming the field as the
client wrote it (``positions.0.productId``), except where it says that a state change is not allowed now: a 409
(send a quote twice, change a sent one). Unknown ids in the path are 404; unknown ids in a body are 422.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.engine import Connection

from crm import positions as crm_positions
from crm import queries as crm_queries
from crm import quotes as crm_quotes

from ..deps import (
    AccountFilter,
    Day,
    Id,
    Limit,
    Offset,
    Positions,
    Reader,
    RefId,
    Search,
    StatusFilter,
    Writer,
    crm_errors,
    document_view,
    engine_of,
    found,
    position_inputs,
)
from ..listing import camel_row, page
from ..models import Camel

router = APIRouter(tags=["sales"])


class QuoteIn(Camel):
    account_id: RefId
    valid_until: Day
    positions: Positions


class PositionsIn(Camel):
    positions: Positions


class QuotePatch(Camel):
    """A draft's validity and addressee (a contact of the quoted account, ``null``: nobody in particular)."""

    valid_until: Day | None = None
    contact_id: RefId | None = None


class RevisionIn(Camel):
    valid_until: Day | None = None


def _quote_view(conn: Connection, quote_id: int) -> dict[str, Any]:
    row = crm_quotes.get_quote(conn, quote_id)
    view = document_view(row, crm_positions.of_quote(conn, quote_id))
    view["versions"] = [camel_row(v) for v in crm_quotes.versions(conn, row.number)]
    # a discount over the limit without management's approval: sending and ordering answer 422 until the
    # process quote-discount-approval (or the acquisition's approval task) has recorded it
    view["discountApprovalNeeded"] = crm_quotes.discount_approval_needed(conn, quote_id)
    return view


@router.get("/quotes")
def list_quotes(request: Request, _p: Reader, account_id: AccountFilter = None, status: StatusFilter = None,
                q: Search = "", limit: Limit = 50, offset: Offset = 0) -> Any:
    """Quotes (every version), newest first; ``q`` searches number and account name; ``format=csv`` for CSV."""
    with engine_of(request).db.read() as conn:
        rows, total = crm_queries.list_quotes(conn, account_id, status, q, limit, offset)
    return page(request, rows, total, limit, offset, "quotes")


@router.post("/quotes", status_code=201)
def create_quote(request: Request, body: QuoteIn, _p: Writer) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn, crm_errors(too_large="positions"):
        quote_id = crm_quotes.create_quote(conn, body.account_id, position_inputs(body.positions), body.valid_until)
        return _quote_view(conn, quote_id)


@router.get("/quotes/{quote_id}")
def get_quote(request: Request, quote_id: Id, _p: Reader) -> dict[str, Any]:
    with engine_of(request).db.read() as conn:
        found(crm_quotes.get_quote, conn, quote_id)
        return _quote_view(conn, quote_id)


@router.patch("/quotes/{quote_id}")
def patch_quote(request: Request, quote_id: Id, body: QuotePatch, _p: Writer) -> dict[str, Any]:
    """Change a draft's validity or addressee; positions have ``PUT …/positions``, a sent quote is revised (409)."""
    with engine_of(request).db.transaction() as conn:
        found(crm_quotes.get_quote, conn, quote_id)
        with crm_errors("status"):
            crm_quotes.update_quote(conn, quote_id, **body.model_dump(exclude_unset=True))
        return _quote_view(conn, quote_id)


@router.put("/quotes/{quote_id}/positions")
def replace_quote_positions(request: Request, quote_id: Id, body: PositionsIn, _p: Writer) -> dict[str, Any]:
    """Replace all positions of a draft; a sent quote is revised instead (409)."""
    with engine_of(request).db.transaction() as conn:
        found(crm_quotes.get_quote, conn, quote_id)
        with crm_errors("status", too_large="positions"):
            crm_quotes.update_positions(conn, quote_id, position_inputs(body.positions))
        return _quote_view(conn, quote_id)


@router.post("/quotes/{quote_id}/revisions", status_code=201)
def revise_quote(request: Request, quote_id: Id, _p: Writer, body: RevisionIn | None = None) -> dict[str, Any]:
    """A new draft version of the quote with its positions; only the latest version can be revised (409)."""
    with engine_of(request).db.transaction() as conn:
        found(crm_quotes.get_quote, conn, quote_id)
        with crm_errors("version"):
            new_id = crm_quotes.revise_quote(conn, quote_id, body.valid_until if body else None)
        return _quote_view(conn, new_id)


def _quote_action(request: Request, quote_id: int, action: Callable[[Connection, int], None],
                  *conflicts: str) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        found(crm_quotes.get_quote, conn, quote_id)
        with crm_errors("status", *conflicts):
            action(conn, quote_id)
        return _quote_view(conn, quote_id)


@router.post("/quotes/{quote_id}/send")
def send_quote(request: Request, quote_id: Id, _p: Writer) -> dict[str, Any]:
    return _quote_action(request, quote_id, crm_quotes.send_quote)


@router.post("/quotes/{quote_id}/accept")
def accept_quote(request: Request, quote_id: Id, _p: Writer) -> dict[str, Any]:
    """Only a sent quote within its validity can be accepted (409 otherwise)."""
    return _quote_action(request, quote_id, crm_quotes.accept_quote, "valid_until")


@router.post("/quotes/{quote_id}/reject")
def reject_quote(request: Request, quote_id: Id, _p: Writer) -> dict[str, Any]:
    return _quote_action(request, quote_id, crm_quotes.reject_quote)
