"""Data exchange: CSV import of accounts, contacts and products, the rows the exports write, vCards of contacts.

A clerk's spreadsheet is never all good: each row is imported inside its own SAVEPOINT, so a failing row leaves
nothing behind while the others land, and the report names the row, the column and the reason. Only a file that
cannot be read at all (not UTF-8 text, broken quoting, a required column missing) fails as a whole, with a
:class:`CsvError` naming the column (or ``file``).

The column vocabulary is the one the exports write (camelCase: ``legalForm``, ``lastName``, ``listPrice``, …);
headers are matched ignoring case, ``_`` and spaces, so ``legal_form`` or ``Legal Form`` work too. Columns the
import does not know (``id``, ``nameKey``, ``letterSalutation``, …) are listed in the report and skipped, so every
export can be imported again. Matching: accounts by ``number`` (update, else create with that number), products
by ``code``, contacts by account + last name + first name + e-mail (else created for the account given by
``accountNumber``). A blank cell clears an optional field; for a field with a default (kind, status, active, …)
it means the default on create and "unchanged" on update. Addresses are only ever added, never deleted.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import sqlalchemy as sa
import vobject
from sqlalchemy.engine import Connection

from . import validation as v
from .accounts import (
    ACCOUNT_NUMBER_BASE,
    ACCOUNT_TRANSITIONS,
    ADDRESS_KINDS,
    ContactInput,
    add_address,
    create_account,
    create_contact,
    get_account,
    set_account_status,
    set_segments,
    update_account,
    update_contact,
)
from .csv_text import restore
from .errors import DomainError
from .products import CATEGORIES, KINDS, ProductInput, create_product, product_id_by_code, update_product
from .salutation import letter_salutation
from .schema import account, account_segment, address, contact, counter, product, product_step
from .sql import insert_or_ignore

ImportKind = Literal["accounts", "contacts", "products"]
MAX_ROWS = 20000
VCARD_VERSIONS = ("3.0", "4.0")
_ADDRESS_PARTS = ("street", "postal_code", "city", "country")
_TRUE = {"true", "1", "ja", "j", "yes", "y", "wahr", "x"}
_FALSE = {"false", "0", "nein", "n", "no", "falsch"}


class CsvError(DomainError):
    """The file as a whole cannot be imported; ``field`` is the column at fault or ``file``."""


# --- columns -------------------------------------------------------------------------------------------------

def _camel(name: str) -> str:
    head, *tail = name.split("_")
    return head + "".join(part.title() for part in tail)


def _address_fields() -> list[str]:
    return [f"{kind}_{part}" for kind in ADDRESS_KINDS for part in _ADDRESS_PARTS]


# what the exports write, in this order (snake_case here; the CSV header is the camelCase form)
ACCOUNT_COLUMNS = ("id", "number", "name", "kind", "legal_form", "vat_id", "status", "sla_class", "owner",
                   "segments", *_address_fields(), "created_at")
CONTACT_COLUMNS = ("id", "account_id", "account_number", "account_name", "salutation", "academic_title",
                   "first_name", "last_name", "role", "email", "phone", "preferred_language", "marketing_opt_out",
                   "letter_salutation", "created_at")
PRODUCT_COLUMNS = ("id", "code", "name", "description", "category", "kind", "list_price", "vat_rate", "active",
                   "provisioning_steps")


def _text(raw: str) -> str | None:
    text = raw.strip()
    return text or None


def _bool(raw: str) -> bool | None:
    text = raw.strip().casefold()
    if not text:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{raw.strip()!r} is not a yes/no value (true/false, ja/nein, 1/0)")


def parse_decimal(raw: str) -> Decimal | None:
    """``39.90``, ``39,90`` (German decimal comma), ``1.234,56`` or ``1,234.56``: the last separator is the
    decimal one, any other is a thousands separator. A trailing ``€`` or ``%`` is allowed."""
    text = "".join(raw.split()).removesuffix("€").removesuffix("%")
    if not text:
        return None
    if "," in text and "." in text:
        decimal_sep = "," if text.rfind(",") > text.rfind(".") else "."
        thousands = "." if decimal_sep == "," else ","
        text = text.replace(thousands, "").replace(decimal_sep, ".")
    else:
        text = text.replace(",", ".")
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or not re.fullmatch(r"-?\d*(\.\d*)?", text):
        raise ValueError(f"{raw.strip()!r} is not a number")
    return value


def _datetime(raw: str) -> datetime | None:
    text = raw.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 timestamp (2026-03-02T09:00:00+00:00)") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value  # naive: read as UTC


def _lines(raw: str) -> str | None:
    """An address cell: one address per line (several addresses of one kind)."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    return text or None


def _list(raw: str) -> list[str] | None:
    items = [item.strip() for item in raw.split(",")]
    return [item for item in items if item] or None


Parser = Callable[[str], Any]
_ACCOUNT_PARSERS: dict[str, Parser] = {
    "number": _text, "name": _text, "kind": _text, "legal_form": _text, "vat_id": _text, "status": _text,
    "sla_class": _text, "owner": _text, "segments": _list, "created_at": _datetime,
    **{name: _lines for name in _address_fields()},
}
_CONTACT_PARSERS: dict[str, Parser] = {
    "account_number": _text, "salutation": _text, "academic_title": _text, "first_name": _text, "last_name": _text,
    "role": _text, "email": _text, "phone": _text, "preferred_language": _text, "marketing_opt_out": _bool,
    "created_at": _datetime,
}
_PRODUCT_PARSERS: dict[str, Parser] = {
    "code": _text, "name": _text, "description": _text, "category": _text, "kind": _text,
    "list_price": parse_decimal, "vat_rate": parse_decimal, "active": _bool, "provisioning_steps": _list,
}


def _norm(header: str) -> str:
    return re.sub(r"[^0-9a-z]", "", header.casefold())


# --- reading the file ----------------------------------------------------------------------------------------

@dataclass
class CsvTable:
    """A decoded file: the header as written, the delimiter found, and the data rows with their row numbers
    as a spreadsheet shows them (the header is row 1)."""

    header: list[str]
    delimiter: str
    rows: list[tuple[int, list[str]]]


def read_csv(data: bytes | str) -> CsvTable:
    """Decode (UTF-8, with or without BOM), detect ``;`` or ``,`` from the header and split into rows."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CsvError("file", f"the file is not UTF-8 text (byte {exc.start}); save it as 'CSV UTF-8'") from None
    else:
        text = data.removeprefix("\ufeff")
    if "\x00" in text:
        raise CsvError("file", "the file is not CSV text (it contains NUL bytes)")
    if not text.strip():
        raise CsvError("file", "the file is empty")
    first_line = text.lstrip("\r\n").splitlines()[0]
    delimiter = ";" if first_line.count(";") >= first_line.count(",") and ";" in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[tuple[int, list[str]]] = []
    try:
        for record in reader:
            if len(records) > MAX_ROWS:
                raise CsvError("file", f"the file has more than {MAX_ROWS} rows; split it")
            records.append((len(records) + 1, [restore(cell) for cell in record]))
    except csv.Error as exc:
        raise CsvError("file", f"the file is not valid CSV near line {reader.line_num}: {exc}") from None
    records = [(n, r) for n, r in records if any(cell.strip() for cell in r)]
    if not records:
        raise CsvError("file", "the file is empty")
    header = records[0][1]
    return CsvTable([h.strip() for h in header], delimiter, records[1:])


# --- the report ----------------------------------------------------------------------------------------------

@dataclass
class RowResult:
    row: int
    status: Literal["created", "updated", "error"]
    id: int | None = None
    key: str | None = None  # account number, product code or contact name: what the clerk recognises
    errors: list[dict[str, str]] = field(default_factory=list)


@dataclass
class ImportReport:
    kind: ImportKind
    dry_run: bool
    delimiter: str
    ignored_columns: list[str]
    rows: list[RowResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    def as_dict(self) -> dict[str, Any]:
        """camelCase, the shape the REST answer documents."""
        return {
            "kind": self.kind, "dryRun": self.dry_run, "delimiter": self.delimiter,
            "ignoredColumns": self.ignored_columns, "total": len(self.rows), "created": self.count("created"),
            "updated": self.count("updated"), "failed": self.count("error"),
            "rows": [{"row": r.row, "status": r.status, "id": r.id, "key": r.key, "errors": r.errors}
                     for r in self.rows],
        }


# --- importing -----------------------------------------------------------------------------------------------

Handler = Callable[[Connection, dict[str, Any], set[str]], tuple[Literal["created", "updated"], int, str]]


@dataclass(frozen=True)
class _Spec:
    parsers: dict[str, Parser]
    required: tuple[str, ...]  # at least one of these columns must be present
    handler: Handler


def import_csv(conn: Connection, kind: ImportKind, data: bytes | str, *, dry_run: bool = False,
               default_owner: str | None = None) -> ImportReport:
    """Import every row of ``data`` in its own savepoint; ``dry_run`` reports the same but keeps nothing.

    Raises :class:`CsvError` only when the file itself is unreadable; row problems land in the report.
    ``default_owner`` owns new accounts when the file has no ``owner`` column (the importing user).
    """
    spec = _specs(default_owner)[kind]
    table = read_csv(data)
    columns: dict[int, str] = {}
    ignored: list[str] = []
    by_norm = {_norm(name): name for name in spec.parsers}
    for index, header in enumerate(table.header):
        name = by_norm.get(_norm(header))
        if name is None:
            ignored.append(header)
        elif name in columns.values():
            raise CsvError(_camel(name), f"column {header!r} appears twice")
        else:
            columns[index] = name
    present = set(columns.values())
    if not present & set(spec.required):
        wanted = " or ".join(_camel(r) for r in spec.required)
        raise CsvError(_camel(spec.required[0]), f"required column {wanted} is missing (header: "
                                                 f"{table.delimiter.join(table.header)[:200]!r})")
    report = ImportReport(kind, dry_run, table.delimiter, ignored)
    outer = conn.begin_nested() if dry_run else None
    try:
        for number, record in table.rows:
            report.rows.append(_import_row(conn, spec, columns, present, number, record, len(table.header)))
    finally:
        if outer is not None:
            outer.rollback()
    if dry_run:
        for result in report.rows:
            if result.status == "created":
                result.id = None  # rolled back: the id does not exist
    return report


def _import_row(conn: Connection, spec: _Spec, columns: dict[int, str], present: set[str], number: int,
                record: list[str], width: int) -> RowResult:
    if len(record) > width and any(cell.strip() for cell in record[width:]):
        return RowResult(number, "error", errors=[{"field": "(row)", "message":
                         f"the row has {len(record)} cells but the header only {width} columns"}])
    values: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    for index, name in columns.items():
        raw = record[index] if index < len(record) else ""
        try:
            values[name] = spec.parsers[name](raw)
        except ValueError as exc:
            errors.append({"field": _camel(name), "message": f"{_camel(name)}: {exc}"})
    if errors:
        return RowResult(number, "error", errors=errors)
    try:
        with conn.begin_nested():
            status, row_id, key = spec.handler(conn, values, present)
    except DomainError as exc:
        return RowResult(number, "error", errors=[{"field": _camel(exc.field), "message": exc.message}])
    except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
        return RowResult(number, "error", errors=[{"field": "(row)", "message": f"the database refused the row: "
                                                   f"{reason}"}])
    return RowResult(number, status, row_id, key)


def _specs(default_owner: str | None) -> dict[ImportKind, _Spec]:
    def accounts(conn: Connection, values: dict[str, Any], present: set[str]
                 ) -> tuple[Literal["created", "updated"], int, str]:
        return _import_account(conn, values, present, default_owner)

    return {
        "accounts": _Spec(_ACCOUNT_PARSERS, ("name", "number"), accounts),
        "contacts": _Spec(_CONTACT_PARSERS, ("last_name",), _import_contact),
        "products": _Spec(_PRODUCT_PARSERS, ("code",), _import_product),
    }


# accounts

def account_id_by_number(conn: Connection, number: str) -> int | None:
    found = conn.execute(sa.select(account.c.id).where(account.c.number == number)).scalar_one_or_none()
    return None if found is None else int(found)


def _import_account(conn: Connection, values: dict[str, Any], present: set[str], default_owner: str | None
                    ) -> tuple[Literal["created", "updated"], int, str]:
    number = values.get("number")
    existing = account_id_by_number(conn, number) if number else None
    if existing is None:
        account_id = _create_account(conn, values, present, default_owner)
        result: Literal["created", "updated"] = "created"
    else:
        account_id, result = existing, "updated"
        changes: dict[str, Any] = {name: values[name] for name in ("name", "legal_form", "vat_id", "owner")
                                   if name in present}
        changes.update({name: values[name] for name in ("kind", "sla_class") if values.get(name)})
        if changes:
            update_account(conn, account_id, **changes)
        if "segments" in present:
            set_segments(conn, account_id, values["segments"] or ())
        target = values.get("status")
        if target and target != get_account(conn, account_id).status:
            set_account_status(conn, account_id, target)
    _add_addresses(conn, account_id, values, present)
    return result, account_id, str(get_account(conn, account_id).number)


def _create_account(conn: Connection, values: dict[str, Any], present: set[str], default_owner: str | None) -> int:
    """A new account; a given number is kept (and the counter moved past it, so new numbers never collide)."""
    number: str | None = values.get("number")
    if number is not None:
        number = v.required_text("number", number, 20)
        match = re.fullmatch(r"K-(\d{1,9})", number)
        sequence = int(match.group(1)) - ACCOUNT_NUMBER_BASE if match else 0
        if sequence > 0 and number == f"K-{ACCOUNT_NUMBER_BASE + sequence}":
            insert_or_ignore(conn, counter, {"kind": "account", "year": 0, "value": 0})
            # the next number drawn is exactly this one when the counter is still below it
            conn.execute(counter.update().where(counter.c.kind == "account", counter.c.year == 0,
                                                counter.c.value < sequence - 1).values(value=sequence - 1))
    path = _status_path(values.get("status") or "prospect")
    account_id = create_account(
        conn, values.get("name") or "", kind=values.get("kind") or "business", legal_form=values.get("legal_form"),
        vat_id=values.get("vat_id"), segments=values.get("segments") or (),
        owner=values.get("owner") if "owner" in present else default_owner,
        sla_class=values.get("sla_class") or "bronze", now=values.get("created_at"))
    if number is not None and get_account(conn, account_id).number != number:
        conn.execute(account.update().where(account.c.id == account_id).values(number=number))
    for status in path:
        set_account_status(conn, account_id, status)
    return account_id


def _status_path(target: str) -> list[str]:
    """The allowed steps from ``prospect`` to ``target`` (an imported customer was a prospect once)."""
    paths: dict[str, list[str]] = {"prospect": []}
    queue = deque(["prospect"])
    while queue:
        state = queue.popleft()
        for following in sorted(ACCOUNT_TRANSITIONS.get(state, frozenset())):
            if following not in paths:
                paths[following] = [*paths[state], following]
                queue.append(following)
    if target not in paths:
        raise DomainError("status", f"status must be one of {', '.join(sorted(paths))}, got {target!r}")
    return paths[target]


def _add_addresses(conn: Connection, account_id: int, values: dict[str, Any], present: set[str]) -> None:
    """Address cells may hold several addresses of one kind, one per line; known ones are not added twice."""
    known = {(r.kind, r.street, r.postal_code, r.city, r.country)
             for r in conn.execute(sa.select(address).where(address.c.account_id == account_id))}
    for kind in ADDRESS_KINDS:
        names = [f"{kind}_{part}" for part in _ADDRESS_PARTS]
        if not present & set(names):
            continue
        cells = {name: (values.get(name) or "").split("\n") for name in names}
        count = max(len(lines) for lines in cells.values())
        for name in names[:3]:
            if values.get(name) and len(cells[name]) != count:
                raise DomainError(name, f"{_camel(name)} has {len(cells[name])} lines but the address has {count}")
        for line in range(count):
            parts = {part: (cells[name][line] if line < len(cells[name]) else "").strip()
                     for part, name in zip(_ADDRESS_PARTS, names, strict=True)}
            country = (parts["country"] or "DE").upper()
            if not any(parts[p] for p in _ADDRESS_PARTS[:3]):
                continue
            if (kind, parts["street"], parts["postal_code"], parts["city"], country) in known:
                continue
            try:
                add_address(conn, account_id, kind, parts["street"], parts["postal_code"], parts["city"], country)
            except DomainError as exc:
                raise DomainError(f"{kind}_{exc.field}", exc.message) from exc
            known.add((kind, parts["street"], parts["postal_code"], parts["city"], country))


# contacts

def _import_contact(conn: Connection, values: dict[str, Any], present: set[str]
                    ) -> tuple[Literal["created", "updated"], int, str]:
    account_id: int | None = None
    number = values.get("account_number")
    if number:
        account_id = account_id_by_number(conn, number)
        if account_id is None:
            raise DomainError("account_number", f"account {number} does not exist")
    last_name = v.required_text("last_name", values.get("last_name"), 100)
    first_name = v.optional_text("first_name", values.get("first_name"), 100)
    email = v.email(values.get("email"))
    key = " ".join(p for p in (first_name, last_name) if p)
    existing = _matching_contact(conn, account_id, last_name, first_name, email)
    if existing is None:
        data = ContactInput(
            last_name=last_name, first_name=first_name, email=email,
            salutation=values.get("salutation") or "none", academic_title=values.get("academic_title"),
            role=values.get("role"), phone=values.get("phone"),
            preferred_language=values.get("preferred_language") or "de",
            marketing_opt_out=bool(values.get("marketing_opt_out")))
        return "created", create_contact(conn, data, account_id, now=values.get("created_at")), key
    # a blank cell clears an optional field, but leaves one with a default (salutation, language, opt-out) as it is
    changes: dict[str, Any] = {name: values[name] for name in ("academic_title", "role", "phone") if name in present}
    changes.update({name: values[name] for name in ("salutation", "preferred_language", "marketing_opt_out")
                    if values.get(name) is not None})
    update_contact(conn, existing, **changes)
    return "updated", existing, key


def _matching_contact(conn: Connection, account_id: int | None, last_name: str, first_name: str | None,
                      email: str | None) -> int | None:
    """The same person of the same account: equal names and e-mail (so importing a file twice adds nobody)."""
    def same(column: Any, value: Any) -> Any:
        return column.is_(None) if value is None else column == value

    query = sa.select(contact.c.id).where(
        same(contact.c.account_id, account_id), contact.c.last_name == last_name,
        same(contact.c.first_name, first_name),
        contact.c.email.is_(None) if email is None else sa.func.lower(contact.c.email) == email.lower(),
    ).order_by(contact.c.id).limit(1)
    found = conn.execute(query).scalar_one_or_none()
    return None if found is None else int(found)


# products

def _import_product(conn: Connection, values: dict[str, Any], present: set[str]
                    ) -> tuple[Literal["created", "updated"], int, str]:
    code = v.required_text("code", values.get("code"), 50)
    existing = product_id_by_code(conn, code)
    if existing is None:
        price = values.get("list_price")
        if price is None:
            raise DomainError("list_price", "list_price is required")
        vat = values.get("vat_rate")
        data = ProductInput(
            code=code, name=values.get("name") or "", category=values.get("category") or "",
            kind=values.get("kind") or "", list_price=price,
            vat_rate=Decimal("19.00") if vat is None else vat, description=values.get("description"),
            active=True if values.get("active") is None else bool(values["active"]),
            provisioning_steps=tuple(values.get("provisioning_steps") or ()))
        return "created", create_product(conn, data), code
    # a blank cell clears the description (and the steps), but leaves a field with a default as it is
    changes: dict[str, Any] = {name: values[name] for name in ("name", "description") if name in present}
    changes.update({name: values[name] for name in ("category", "kind", "list_price", "vat_rate", "active")
                    if values.get(name) is not None})
    if "provisioning_steps" in present:
        changes["provisioning_steps"] = values["provisioning_steps"] or ()
    update_product(conn, existing, **changes)
    return "updated", existing, code


# --- the rows the exports write ------------------------------------------------------------------------------

def _rows(conn: Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in conn.execute(query)]


def account_rows(conn: Connection) -> list[dict[str, Any]]:
    """Every account with its segments and addresses (several of one kind: one per line), by name: the
    lossless export the account import reads back."""
    accounts = _rows(conn, sa.select(account).order_by(account.c.name, account.c.id))
    segments: dict[int, list[str]] = {}
    for account_id, segment in conn.execute(
            sa.select(account_segment.c.account_id, account_segment.c.segment).order_by(account_segment.c.segment)):
        segments.setdefault(int(account_id), []).append(str(segment))
    addresses: dict[tuple[int, str], list[Any]] = {}
    for found in conn.execute(sa.select(address).order_by(address.c.id)):
        addresses.setdefault((int(found.account_id), str(found.kind)), []).append(found)
    result: list[dict[str, Any]] = []
    for item in accounts:
        row: dict[str, Any] = {name: item.get(name) for name in ACCOUNT_COLUMNS}
        row["segments"] = segments.get(item["id"], [])
        for kind in ADDRESS_KINDS:
            of_kind = addresses.get((item["id"], kind), [])
            for part in _ADDRESS_PARTS:
                row[f"{kind}_{part}"] = "\n".join(str(getattr(a, part)) for a in of_kind) or None
        result.append(row)
    return result


def product_rows(conn: Connection) -> list[dict[str, Any]]:
    """Every product with its provisioning steps, by category and code."""
    return list_products(conn, limit=None)[0]


def list_products(conn: Connection, text: str = "", *, category: str | None = None, kind: str | None = None,
                  active: bool | None = None, limit: int | None = 50, offset: int = 0
                  ) -> tuple[list[dict[str, Any]], int]:
    """Products whose code or name contains the text (case-insensitive), of a category, kind or active state, by
    category and code, with their provisioning steps: the catalogue list and the export the import reads back."""
    where: list[Any] = []
    if category is not None:
        where.append(product.c.category == v.one_of("category", category, CATEGORIES))
    if kind is not None:
        where.append(product.c.kind == v.one_of("kind", kind, KINDS))
    if active is not None:
        where.append(product.c.active.is_(v.flag("active", active)))
    pattern = _contains_pattern(text)
    if pattern is not None:
        where.append(sa.or_(*[sa.func.lower(column).like(pattern, escape="\\")
                              for column in (product.c.code, product.c.name)]))
    total = conn.execute(sa.select(sa.func.count()).select_from(product).where(*where)).scalar_one()
    items = _rows(conn, sa.select(product).where(*where).order_by(product.c.category, product.c.code)
                  .limit(limit).offset(offset))
    steps: dict[int, list[str]] = {}
    if items:
        for product_id, step in conn.execute(
                sa.select(product_step.c.product_id, product_step.c.step)
                .where(product_step.c.product_id.in_([item["id"] for item in items])).order_by(product_step.c.step)):
            steps.setdefault(int(product_id), []).append(str(step))
    rows = [{**{name: item.get(name) for name in PRODUCT_COLUMNS}, "provisioning_steps": steps.get(item["id"], [])}
            for item in items]
    return rows, int(total)


def _contains_pattern(text: str) -> str | None:
    """A LIKE pattern for "contains the text" (casefolded, spaces collapsed, wildcards literal); None: no text."""
    needle = " ".join(text.replace("\x00", "").casefold().split())
    if not needle:
        return None
    return "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def list_contacts(conn: Connection, text: str = "", account_id: int | None = None, limit: int = 50,
                  offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Contacts whose name, e-mail or account contains the text (case-insensitive), by name, with their account's
    number and name and the letter salutation: the list and the export the contact import reads back."""
    where: list[Any] = []
    if account_id is not None:
        where.append(contact.c.account_id == account_id)
    pattern = _contains_pattern(text)
    if pattern is not None:
        where.append(sa.or_(*[sa.func.lower(column).like(pattern, escape="\\") for column in (
            contact.c.last_name, contact.c.first_name, contact.c.email, account.c.name, account.c.number)]))
    source = contact.outerjoin(account, account.c.id == contact.c.account_id)
    total = conn.execute(sa.select(sa.func.count()).select_from(source).where(*where)).scalar_one()
    query = (
        sa.select(contact, account.c.number.label("account_number"), account.c.name.label("account_name"))
        .select_from(source).where(*where)
        .order_by(contact.c.last_name, contact.c.first_name, contact.c.id).limit(limit).offset(offset)
    )
    rows: list[dict[str, Any]] = []
    for item in _rows(conn, query):
        item["letter_salutation"] = letter_salutation(item["salutation"], item["last_name"], item["first_name"],
                                                      item["academic_title"], item["preferred_language"])
        rows.append({name: item.get(name) for name in CONTACT_COLUMNS})
    return rows, int(total)


# --- vCards --------------------------------------------------------------------------------------------------

def contact_ids_of_account(conn: Connection, account_id: int) -> list[int]:
    get_account(conn, account_id)
    query = sa.select(contact.c.id).where(contact.c.account_id == account_id).order_by(
        contact.c.last_name, contact.c.first_name, contact.c.id)
    return [int(i) for i in conn.execute(query).scalars()]


def contacts_vcard(conn: Connection, contact_ids: Sequence[int], version: str = "3.0") -> str:
    """The contacts as vCards (3.0, what every address book reads, or 4.0), in the order given: name with
    academic title, job title, company, e-mail, phone, the account's billing address and the language."""
    if version not in VCARD_VERSIONS:
        raise DomainError("version", f"version must be one of {', '.join(VCARD_VERSIONS)}, got {version!r}")
    ids = list(dict.fromkeys(contact_ids))
    if not ids:
        return ""
    query = (sa.select(contact, account.c.name.label("account_name"))
             .select_from(contact.outerjoin(account, account.c.id == contact.c.account_id))
             .where(contact.c.id.in_(ids)))
    people = {int(row.id): row for row in conn.execute(query)}
    missing = [i for i in ids if i not in people]
    if missing:
        raise DomainError("contact_id", f"contact {missing[0]} does not exist")
    billing = _billing_addresses(conn, {int(p.account_id) for p in people.values() if p.account_id is not None})
    return "".join(_vcard(people[i], billing.get(people[i].account_id), version) for i in ids)


def _billing_addresses(conn: Connection, account_ids: Iterable[int]) -> dict[int, Any]:
    """The first billing address of each account (one query)."""
    result: dict[int, Any] = {}
    ids = list(account_ids)
    if ids:
        query = sa.select(address).where(address.c.account_id.in_(ids), address.c.kind == "billing").order_by(
            address.c.id)
        for row in conn.execute(query):
            result.setdefault(int(row.account_id), row)
    return result


def _vcard(person: Any, billing: Any, version: str) -> str:
    card = vobject.vCard()
    card.add("version").value = version
    if version == "4.0":
        card.add("kind").value = "individual"
    card.add("uid").value = "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"silverflow:contact:{person.id}:"
                                                                             f"{person.created_at.isoformat()}"))
    card.add("n").value = vobject.vcard.Name(family=person.last_name, given=person.first_name or "",
                                             prefix=person.academic_title or "")
    card.add("fn").value = " ".join(p for p in (person.academic_title, person.first_name, person.last_name) if p)
    if version == "4.0" and person.salutation in ("Herr", "Frau", "divers"):
        card.add("gender").value = {"Herr": "M", "Frau": "F", "divers": "O"}[person.salutation]
    if person.role:
        card.add("title").value = person.role
        card.add("role").value = person.role
    if person.account_name:
        card.add("org").value = [person.account_name]
    if person.email:
        mail = card.add("email")
        mail.value = person.email
        mail.params["TYPE"] = ["work"] if version == "4.0" else ["INTERNET", "WORK"]
    if person.phone:
        tel = card.add("tel")
        tel.value = person.phone
        tel.params["TYPE"] = ["work", "voice"] if version == "4.0" else ["WORK", "VOICE"]
    if billing is not None:
        adr = card.add("adr")
        adr.value = vobject.vcard.Address(street=billing.street, city=billing.city, code=billing.postal_code,
                                          country=billing.country)
        adr.params["TYPE"] = ["work"] if version == "4.0" else ["WORK"]
    card.add("lang").value = person.preferred_language
    return str(card.serialize())
