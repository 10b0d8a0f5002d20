"""The shared vocabulary of routes and pages, in one place (DESIGN: "shared route vocabulary in one api/deps.py").

- **The engine and the database**: ``engine_of(request)`` is the app's BPM engine; ``database_of(request)`` its
  database (a unit of work is ``with database.transaction() as conn`` or ``with database.read() as conn``).
  ``EngineDep`` and ``Db`` are the same as typed dependencies.
- **Roles**: ``Reader`` (any login), ``Writer`` (clerk, manager, integration), ``Approver`` (manager,
  integration), ``Manager``.
- **Ids and paging**: ``Id`` (a path id), ``RefId`` (an id in a body), ``FilterId``/``AccountFilter`` (query),
  ``Limit``/``Offset``; ``LIST`` and ``ICS`` document what a list or a calendar answers.
- **Text and dates**: ``Text`` is text both databases can store; ``Search``, ``FilterText`` and ``StatusFilter``
  are query strings made of it. ``When`` (an instant with zone) and ``Day`` are bounded to the years
  ``EARLIEST``..``LATEST``: beyond them a value is a typing error (and overflows term, deadline and due-date
  arithmetic). ``utc_now``/``utc_today`` are the clock as the CRM sees it (UTC).
- **Uploads**: ``read_upload`` reads a multipart file (or a raw body) with its size bound.
- **CRM errors**: ``crm_errors`` is the one translator of a ``crm`` ``DomainError`` into problem+json: a field
  named as "not allowed in the current state" is a 409 (``conflict``), anything else a 422 naming the field as
  the client spells it; a number the database cannot hold is a 422 too. ``found`` turns an unknown path id into
  a 404 (an unknown id in a body stays a 422 from the CRM rules).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from pydantic import AfterValidator, AwareDatetime, Field
from sqlalchemy import exc as sa_exc
from starlette.datastructures import UploadFile

from crm import positions as crm_positions
from crm import validation as crm_checks
from crm.errors import DomainError
from crm.pricing import Totals
from engine.database import Database
from engine.errors import NotFound
from engine.runtime import Engine

from .identity import Principal
from .listing import camel_key, camel_row
from .models import MAX_INT, Camel
from .problems import ApiProblem
from .security import require

# --- the engine and the database -----------------------------------------------------------------------------


def engine_of(request: Request) -> Engine:
    """The BPM engine the app serves (routes and pages alike)."""
    engine: Engine = request.app.state.engine
    return engine


def database_of(request: Request) -> Database:
    """The database of the app: ``transaction()`` is a unit of work, ``read()`` a read that never takes a lock."""
    return engine_of(request).db


EngineDep = Annotated[Engine, Depends(engine_of)]
Db = Annotated[Database, Depends(database_of)]

# --- roles ---------------------------------------------------------------------------------------------------

Reader = Annotated[Principal, Depends(require())]
Writer = Annotated[Principal, Depends(require("clerk", "manager", "integration"))]
Approver = Annotated[Principal, Depends(require("manager", "integration"))]
Manager = Annotated[Principal, Depends(require("manager"))]

# --- ids and paging ------------------------------------------------------------------------------------------

Id = Annotated[int, Path(ge=1, le=MAX_INT)]
RefId = Annotated[int, Field(ge=1, le=MAX_INT)]
FilterId = Annotated[int | None, Query(ge=1, le=MAX_INT)]
AccountFilter = Annotated[int | None, Query(alias="accountId", ge=1, le=MAX_INT)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=MAX_INT)]
# a list answers JSON by default and CSV with format=csv (or Accept: text/csv)
LIST: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {}, "text/csv": {}}}}
ICS: dict[int | str, dict[str, Any]] = {200: {"content": {"text/calendar": {}}}}

# --- text and dates ------------------------------------------------------------------------------------------

EARLIEST, LATEST = 1900, 2200  # beyond these years a date is a typing error (and overflows on arithmetic)


def _plain(value: str) -> str:
    """Text both databases can store: PostgreSQL refuses NUL, and lone surrogates cannot be encoded."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    return value


def _instant(value: datetime) -> datetime:
    if not EARLIEST <= value.year <= LATEST:
        raise ValueError(f"must be between the years {EARLIEST} and {LATEST}")
    return value


def _day(value: date) -> date:
    if not EARLIEST <= value.year <= LATEST:
        raise ValueError(f"must be between the years {EARLIEST} and {LATEST}")
    return value


Text = Annotated[str, AfterValidator(_plain)]
Search = Annotated[Text, Query(max_length=200)]
FilterText = Annotated[Text | None, Query(min_length=1, max_length=200)]
StatusFilter = Annotated[Text | None, Query(max_length=30)]
When = Annotated[AwareDatetime, AfterValidator(_instant)]
Day = Annotated[date, AfterValidator(_day)]


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc_today() -> date:
    """The business day as the CRM sees it (its timestamps are UTC)."""
    return utc_now().date()


# --- uploads -------------------------------------------------------------------------------------------------


def unreadable(field: str, message: str) -> ApiProblem:
    """A file that cannot be read as what it should be: a 422 naming the field (or column) at fault."""
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
            raise unreadable("file", f"the multipart body cannot be read: {exc}") from None
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
            raise unreadable("file", f"upload {what} in the form field 'file'")
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


# --- CRM errors as problem+json ------------------------------------------------------------------------------


def client_field(name: str, bracketed: bool = False) -> str:
    """A CRM field path as the client writes it: ``positions[0].product_id`` → ``positions.0.productId`` (as a
    request validation error names it); ``bracketed`` keeps the index brackets (``items[0].receiptDocumentId``)."""
    if bracketed:
        return camel_key(name)
    return ".".join(camel_key(part) for part in re.split(r"[.\[\]]+", name) if part)


def conflict(detail: str, errors: list[dict[str, Any]] | None = None) -> ApiProblem:
    """A 409: the request is well-formed but not allowed in the record's current state."""
    return ApiProblem(409, "Conflict", detail, "conflict", errors)


@contextmanager
def crm_errors(*conflicts: str, too_large: str = "(request)", bracketed: bool = False,
               **renames: str) -> Iterator[None]:
    """The one translation of a CRM ``DomainError``: on one of ``conflicts`` (fields as ``crm`` names them) it means
    "not allowed in the current state", a 409 naming the field; any other is bad input, a 422 naming the field as
    the client spells it (``renames`` for the fields the body calls otherwise: ``booked_service_id="serviceId"``).
    A number the database cannot hold (PostgreSQL's numeric overflow) is bad input too, named ``too_large``."""
    try:
        yield
    except DomainError as exc:
        name = renames.get(exc.field) or client_field(exc.field, bracketed)
        if exc.field in conflicts or name in {client_field(f, bracketed) for f in conflicts}:
            raise conflict(f"{name}: {exc.message}", [{"field": name, "message": exc.message}]) from exc
        if name == exc.field:
            raise
        raise DomainError(name, exc.message) from exc
    except sa_exc.DataError as exc:
        raise DomainError(too_large, "a value is larger than can be stored") from exc


def found(read: Callable[..., Any], *args: Any) -> Any:
    """The record a path id names, or 404 (an unknown id in a body stays a 422 from the CRM rules)."""
    try:
        return read(*args)
    except DomainError as exc:
        raise NotFound(exc.message) from exc


def choice(field_name: str, value: str | None, options: tuple[str, ...]) -> str | None:
    """A filter value must be one the CRM knows: a typo is a 422, not an empty list."""
    with crm_errors():
        return None if value is None else crm_checks.one_of(field_name, value, options)


def record(row: Any) -> dict[str, Any]:
    """A CRM row (a mapping or a SQLAlchemy row) as camelCase JSON."""
    return camel_row(row if isinstance(row, dict) else dict(row._mapping))


# --- positions of quotes, orders and invoices ----------------------------------------------------------------

Quantity = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)]
Amount = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]


class PositionIn(Camel):
    """A position: a catalogue product (price, VAT rate and description default to it) or a free text line."""

    product_id: RefId | None = None
    description: str | None = Field(default=None, max_length=500)
    quantity: Quantity
    unit_price: Amount | None = None
    discount_percent: Percent | None = None
    discount_amount: Amount | None = None
    vat_rate: Percent | None = None


Positions = Annotated[list[PositionIn], Field(max_length=500)]


def position_inputs(positions: Sequence[PositionIn] | None) -> list[crm_positions.PositionInput]:
    return [crm_positions.PositionInput(**p.model_dump()) for p in positions or ()]


def _totals(totals: Totals) -> dict[str, Any]:
    return {"net": str(totals.net),
            "vatByRate": [{"rate": str(rate), "vat": str(vat)} for rate, vat in totals.vat_by_rate.items()],
            "vat": str(totals.vat), "gross": str(totals.gross)}


def document_view(row: Any, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """A quote, order or invoice with its positions and totals (VAT per rate recomputed from the positions)."""
    return {**camel_row(dict(row._mapping)), "positions": [camel_row(line) for line in lines],
            "totals": _totals(crm_positions.totals_of(lines))}
