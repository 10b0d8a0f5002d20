"""Read models for lists and the customer 360° view: one query per block, no N+1 loops."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .accounts import search_key
from .activities import timeline
from .booked_services import services_of
from .documents import documents_of
from .errors import DomainError
from .salutation import letter_salutation
from .schema import (
    account,
    account_segment,
    address,
    contact,
    contract,
    incident,
    invoice,
    opportunity,
    order,
    product,
    quote,
)
from .service_desk import OPEN_INCIDENT
from .sql import epoch_microseconds

AT_RISK_SHARE = Fraction(1, 5)  # less than a fifth of the resolution time left (exact: see sla_state)
SLA_STATES = ("within", "at_risk", "breached")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ACTIVITIES_SHOWN = 50


@dataclass
class Account360:
    account: dict[str, Any]
    segments: list[str]
    addresses: list[dict[str, Any]]
    contacts: list[dict[str, Any]]
    quotes: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    invoices: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)  # the newest ACTIVITIES_SHOWN
    opportunities: list[dict[str, Any]] = field(default_factory=list)
    contracts: list[dict[str, Any]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)


def _rows(conn: Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in conn.execute(query)]


def search_accounts(
    conn: Connection, text: str = "", limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """Accounts whose name or number starts with (or whose name contains) the search text."""
    where: Any = sa.true()
    by_name: Any = account.c.name
    if text.strip():
        # the casefolded search key ("straße" finds "STRASSE"); LIKE wildcards in the text match literally
        needle = search_key(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where = sa.or_(
            account.c.name_key.like(f"%{needle}%", escape="\\"),
            sa.func.lower(account.c.number).like(f"{needle}%", escape="\\"),
        )
        # sort the matches instead of walking the name index: SQLite otherwise reads every account in name order
        # to find 50 matches (≈ 150–250 ms at 100 000 accounts when they sort late or there are none, 30 ms so)
        by_name = sa.func.coalesce(account.c.name, "")
    total = conn.execute(sa.select(sa.func.count()).select_from(account).where(where)).scalar_one()
    rows = _rows(
        conn,
        sa.select(account).where(where).order_by(by_name, account.c.id).limit(limit).offset(offset),
    )
    return rows, int(total)


def account_360(conn: Connection, account_id: int) -> Account360:
    row = conn.execute(sa.select(account).where(account.c.id == account_id)).first()
    if row is None:
        raise DomainError("account", f"account {account_id} does not exist")
    contacts = _rows(
        conn, sa.select(contact).where(contact.c.account_id == account_id).order_by(contact.c.last_name)
    )
    for person in contacts:
        person["letter_salutation"] = letter_salutation(
            person["salutation"],
            person["last_name"],
            person["first_name"],
            person["academic_title"],
            person["preferred_language"],
        )
    view = Account360(
        account=dict(row._mapping),
        segments=[
            r.segment
            for r in conn.execute(
                sa.select(account_segment.c.segment).where(account_segment.c.account_id == account_id)
            )
        ],
        addresses=_rows(conn, sa.select(address).where(address.c.account_id == account_id)),
        contacts=contacts,
        quotes=_rows(
            conn, sa.select(quote).where(quote.c.account_id == account_id).order_by(quote.c.created_at.desc())
        ),
        orders=_rows(
            conn, sa.select(order).where(order.c.account_id == account_id).order_by(order.c.created_at.desc())
        ),
        invoices=_rows(
            conn,
            sa.select(invoice)
            .where(invoice.c.account_id == account_id)
            .order_by(invoice.c.issue_date.desc()),
        ),
        incidents=_rows(
            conn,
            sa.select(incident)
            .where(incident.c.account_id == account_id)
            .order_by(incident.c.opened_at.desc()),
        ),
        services=[dict(r._mapping) for r in services_of(conn, account_id)],
        activities=[dict(r._mapping) for r in timeline(conn, account_id=account_id, limit=ACTIVITIES_SHOWN)],
        opportunities=_rows(
            conn,
            sa.select(opportunity)
            .where(opportunity.c.account_id == account_id)
            .order_by(opportunity.c.expected_close),
        ),
        contracts=_rows(
            conn,
            sa.select(contract)
            .where(contract.c.account_id == account_id)
            .order_by(contract.c.start_date.desc()),
        ),
        documents=[dict(r._mapping) for r in documents_of(conn, account_id)],
    )
    return view  # quotes and invoices carry their stored net, vat and gross (written with their positions)


def list_products(conn: Connection, include_inactive: bool = True) -> list[dict[str, Any]]:
    query = sa.select(product).order_by(product.c.category, product.c.code)
    if not include_inactive:
        query = query.where(product.c.active.is_(True))
    return _rows(conn, query)


def sla_state(opened_at: datetime, due: datetime, now: datetime) -> str:
    """Where an open incident stands against its resolution deadline: breached once due, at risk with less than
    AT_RISK_SHARE of its time left, else within. Whole microseconds times integers, no float share, so that
    ``sla_state_sql`` decides every boundary the same way on both databases."""
    if due <= now:
        return "breached"
    left, allowed = due - now, due - opened_at
    return "at_risk" if left * AT_RISK_SHARE.denominator < allowed * AT_RISK_SHARE.numerator else "within"


def sla_state_sql(opened_at: Any, due: Any, now: datetime) -> Any:
    """``sla_state`` as a SQL CASE over two timestamp columns, so lists filter and count by it in the database
    (paging and totals stay right at 100 000 accounts)."""
    now_us = (v.aware("now", now) - _EPOCH) // timedelta(microseconds=1)
    due_us, opened_us = epoch_microseconds(due), epoch_microseconds(opened_at)
    left, allowed = due_us - now_us, due_us - opened_us
    return sa.case(
        (due_us <= now_us, "breached"),
        (left * AT_RISK_SHARE.denominator < allowed * AT_RISK_SHARE.numerator, "at_risk"),
        else_="within",
    )


def incident_sla_state(now: datetime) -> Any:
    """The resolution SLA state of an incident row (meaningful while it is open)."""
    return sla_state_sql(incident.c.opened_at, incident.c.resolution_due, now)


def incidents_by_sla(conn: Connection, now: datetime) -> dict[str, int]:
    """Open incidents counted by their resolution deadline: within, at risk, breached."""
    states = (
        sa.select(incident_sla_state(now).label("state")).where(incident.c.status.in_(OPEN_INCIDENT)).subquery()
    )
    counted = {str(state): int(count) for state, count in
               conn.execute(sa.select(states.c.state, sa.func.count()).group_by(states.c.state))}
    return {state: counted.get(state, 0) for state in SLA_STATES}


# --- sales lists (REST and pages): filters, search on number or account name, and a total for paging ---

from datetime import date  # noqa: E402

from .schema import booked_service  # noqa: E402


def _needle(text: str) -> str:
    """The casefolded search text with LIKE wildcards escaped, so they match literally."""
    return search_key(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _search(text: str, *prefix_columns: Any, contains_columns: tuple[Any, ...] = ()) -> Any:
    """Number-like columns match by prefix, the account name key (and ``contains_columns``) anywhere."""
    if not text.strip():
        return sa.true()
    needle = _needle(text)
    return sa.or_(
        account.c.name_key.like(f"%{needle}%", escape="\\"),
        *(sa.func.lower(c).like(f"{needle}%", escape="\\") for c in prefix_columns),
        *(sa.func.lower(c).like(f"%{needle}%", escape="\\") for c in contains_columns),
    )


def _filtered_page(
    conn: Connection, query: Any, where: list[Any], order_by: list[Any], limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of ``query`` (already joined to the account) and the number of all rows matching ``where``."""
    filtered = query.where(*where)
    total = conn.execute(sa.select(sa.func.count()).select_from(filtered.subquery())).scalar_one()
    return _rows(conn, filtered.order_by(*order_by).limit(limit).offset(offset)), int(total)


def _of_accounts(table: sa.Table, text: str, account_id: int | None, status: str | None) -> tuple[Any, list[Any]]:
    """The query and filters of an account's numbered records (quotes, orders, invoices, contracts), with the
    account name; ``text`` searches their number and the account."""
    query = sa.select(table, account.c.name.label("account_name")).join(account, account.c.id == table.c.account_id)
    where = [_search(text, table.c.number)]
    if account_id is not None:
        where.append(table.c.account_id == account_id)
    if status:
        where.append(table.c.status == status)
    return query, where


def list_quotes(
    conn: Connection,
    account_id: int | None = None,
    status: str | None = None,
    text: str = "",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Quotes (every version) with the account name, newest first; ``text`` searches number and account."""
    query, where = _of_accounts(quote, text, account_id, status)
    return _filtered_page(conn, query, where, [quote.c.created_at.desc(), quote.c.id.desc()], limit, offset)


def list_orders(
    conn: Connection,
    account_id: int | None = None,
    status: str | None = None,
    text: str = "",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Orders with the account name, newest first; ``text`` searches number and account."""
    query, where = _of_accounts(order, text, account_id, status)
    return _filtered_page(conn, query, where, [order.c.created_at.desc(), order.c.id.desc()], limit, offset)


def _service_view() -> Any:
    """Booked services with product code and name and the account name."""
    return (
        sa.select(
            booked_service,
            product.c.code.label("product_code"),
            product.c.name.label("product_name"),
            account.c.name.label("account_name"),
        )
        .join(product, product.c.id == booked_service.c.product_id)
        .join(account, account.c.id == booked_service.c.account_id)
    )


def list_booked_services(
    conn: Connection,
    account_id: int | None = None,
    status: str | None = None,
    text: str = "",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Booked services with product and account name, newest first; ``text`` searches account, product
    code or name and domain."""
    query = _service_view()
    where = [
        _search(text, product.c.code, booked_service.c.domain_name, contains_columns=(product.c.name,))
    ]
    if account_id is not None:
        where.append(booked_service.c.account_id == account_id)
    if status:
        where.append(booked_service.c.status == status)
    return _filtered_page(conn, query, where, [booked_service.c.id.desc()], limit, offset)


def get_booked_service_view(conn: Connection, service_id: int) -> dict[str, Any] | None:
    """One booked service with product and account name (the detail page and REST resource)."""
    row = conn.execute(_service_view().where(booked_service.c.id == service_id)).first()
    return dict(row._mapping) if row is not None else None


def list_invoices(
    conn: Connection,
    today: date,
    account_id: int | None = None,
    status: str | None = None,
    overdue: bool | None = None,
    text: str = "",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Invoices with the account name and an ``overdue`` flag (open and past due on ``today``), newest first."""
    query, where = _of_accounts(invoice, text, account_id, status)
    is_overdue = sa.and_(invoice.c.status == "open", invoice.c.due_date < today)
    if overdue is not None:
        where.append(is_overdue if overdue else sa.not_(is_overdue))
    rows, total = _filtered_page(
        conn, query, where, [invoice.c.issue_date.desc(), invoice.c.id.desc()], limit, offset
    )
    for row in rows:
        row["overdue"] = row["status"] == "open" and row["due_date"] < today
    return rows, total


def list_contracts(
    conn: Connection,
    account_id: int | None = None,
    status: str | None = None,
    text: str = "",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Contracts with the account name, by start date (newest first); ``text`` searches number and account."""
    query, where = _of_accounts(contract, text, account_id, status)
    return _filtered_page(conn, query, where, [contract.c.start_date.desc(), contract.c.id.desc()], limit, offset)
