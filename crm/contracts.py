"""Contracts: term, notice period, auto-renewal, and the renewal reminder derived from them.

Dates follow German civil-law reckoning (BGB §§ 187, 188): a term of n months that starts on the 15th ends on
the 14th n months later; when that month has no such day it ends on the month's last day (31 Jan + 1 month
→ 28 Feb). The notice deadline is the last day a notice can arrive: the end minus the notice period
(end 31 Dec, 3 months → 30 Sep). The reminder goes out ``REMINDER_LEAD`` before that deadline, so someone can
still act. An auto-renewing contract that was not terminated extends by its renewal term.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .accounts import get_account
from .errors import DomainError
from .numbering import yearly_number
from .schema import booked_service, contract, contract_service

REMINDER_LEAD = timedelta(days=30)
DAY = timedelta(days=1)


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (or earlier), clamped to the month's last day."""
    years, month0 = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month0 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def term_end(start: date, months: int) -> date:
    """Last day of a term of ``months`` starting on ``start`` (BGB § 188 (2), (3))."""
    same_day = add_months(start, months)
    return same_day if same_day.day < start.day else same_day - DAY


def notice_deadline(end: date, notice_months: int) -> date:
    """Last day a notice must arrive to end the contract on ``end``."""
    return add_months(end + DAY, -notice_months) - DAY


@dataclass(frozen=True)
class ContractTerms:
    start_date: date
    term_months: int
    notice_months: int
    auto_renewal: bool = True
    renewal_months: int = 12
    booked_service_ids: tuple[int, ...] = field(default_factory=tuple)


def _dates(end: date, notice_months: int) -> dict[str, date]:
    deadline = notice_deadline(end, notice_months)
    return {"end_date": end, "notice_deadline": deadline, "reminder_date": deadline - REMINDER_LEAD}


def _term(months: object) -> int:
    return v.positive_int("term_months", months, 120)


def _notice(months: object, term: int) -> int:
    """A notice period shorter than the term it ends (0: notice until the last day)."""
    if isinstance(months, bool) or not isinstance(months, int) or not 0 <= months < term:
        raise DomainError("notice_months", "notice_months must be a whole number from 0 to below the term")
    return months


def _renewal(months: object) -> int:
    return v.positive_int("renewal_months", months, 60)


def create_contract(
    conn: Connection, account_id: int, terms: ContractTerms, now: datetime | None = None
) -> int:
    """A contract over some of the account's booked services (their contract end follows the contract)."""
    get_account(conn, account_id)
    term = _term(terms.term_months)
    notice = _notice(terms.notice_months, term)
    renewal = _renewal(terms.renewal_months)
    services = sorted(set(terms.booked_service_ids))
    if services:
        owners = {
            row.id: row.account_id
            for row in conn.execute(
                sa.select(booked_service.c.id, booked_service.c.account_id).where(
                    booked_service.c.id.in_(services)
                )
            )
        }
        foreign = [s for s in services if owners.get(s) != account_id]
        if foreign:
            raise DomainError(
                "booked_service_ids", f"services {foreign} are not booked services of this account"
            )
    end = term_end(terms.start_date, term)
    number, _ = yearly_number(conn, "contract", "V", terms.start_date.year)
    values = {
        "number": number,
        "account_id": account_id,
        "start_date": terms.start_date,
        "term_months": term,
        "notice_months": notice,
        "auto_renewal": bool(terms.auto_renewal),
        "renewal_months": renewal,
        "status": "active",
        "created_at": v.timestamp(now),
        **_dates(end, notice),
    }
    contract_id = int(conn.execute(contract.insert().values(**values).returning(contract.c.id)).scalar_one())
    if services:
        conn.execute(
            contract_service.insert(),
            [{"contract_id": contract_id, "booked_service_id": s} for s in services],
        )
        _set_service_end(conn, contract_id, end)
    return contract_id


def _set_service_end(conn: Connection, contract_id: int, end: date) -> None:
    ids = sa.select(contract_service.c.booked_service_id).where(contract_service.c.contract_id == contract_id)
    conn.execute(booked_service.update().where(booked_service.c.id.in_(ids)).values(contract_end=end))


def get_contract(conn: Connection, contract_id: int) -> sa.Row[tuple[object, ...]]:
    row = conn.execute(sa.select(contract).where(contract.c.id == contract_id)).one_or_none()
    if row is None:
        raise DomainError("contract_id", f"contract {contract_id} does not exist")
    return row


def reminders_due(conn: Connection, today: date) -> list[int]:
    """Active contracts whose reminder date has come, not yet reminded for the current term."""
    query = (
        sa.select(contract.c.id)
        .where(
            contract.c.status == "active",
            contract.c.reminder_date <= today,
            contract.c.notice_deadline >= today,
            sa.or_(contract.c.reminded_on.is_(None), contract.c.reminded_on < contract.c.reminder_date),
        )
        .order_by(contract.c.reminder_date, contract.c.id)
    )
    return [int(i) for i in conn.execute(query).scalars()]


def mark_reminded(conn: Connection, contract_id: int, today: date) -> None:
    get_contract(conn, contract_id)
    conn.execute(contract.update().where(contract.c.id == contract_id).values(reminded_on=today))


def renew_contract(conn: Connection, contract_id: int, months: int | None = None) -> date:
    """Extend an active contract by ``months`` (default: its renewal term) from its current end, as agreed with
    the customer at the renewal reminder; returns the new end. Reminder and notice dates follow the new end,
    so the next reminder comes before the new notice deadline."""
    row = get_contract(conn, contract_id)
    if row.status != "active":
        raise DomainError("status", f"contract {row.number} is {row.status}")
    extension = v.positive_int("months", row.renewal_months if months is None else months, 120)
    end = term_end(row.end_date + DAY, extension)
    updated = conn.execute(
        contract.update()
        .where(contract.c.id == contract_id, contract.c.status == "active", contract.c.end_date == row.end_date)
        .values(**_dates(end, row.notice_months))
    )
    if updated.rowcount != 1:
        raise DomainError("status", "the contract was changed concurrently; reload and retry")
    _set_service_end(conn, contract_id, end)
    return end


_UPDATABLE = ("term_months", "notice_months", "auto_renewal", "renewal_months")


def update_contract(conn: Connection, contract_id: int, **changes: object) -> None:
    """Change the terms of an active contract (the PATCH of the REST layer), checked as on creation; end,
    notice deadline and reminder date follow. The term can change only while the first term runs: after a
    renewal the end is the renewal's. A terminated or ended contract stays as it is (``DomainError("status")``).
    """
    row = get_contract(conn, contract_id)
    v.changeable(changes, _UPDATABLE)
    if row.status != "active":
        raise DomainError("status", f"contract {row.number} is {row.status}: its terms can no longer change")
    end = row.end_date
    term = int(row.term_months)
    if "term_months" in changes:
        term = _term(changes["term_months"])
        if end != term_end(row.start_date, int(row.term_months)):
            raise DomainError("term_months", f"contract {row.number} was renewed (ends {end}): its first term "
                                             "can no longer change")
        end = term_end(row.start_date, term)
    notice = _notice(changes.get("notice_months", row.notice_months), term)
    values: dict[str, object] = {"term_months": term, "notice_months": notice, **_dates(end, notice)}
    if "auto_renewal" in changes:
        values["auto_renewal"] = v.flag("auto_renewal", changes["auto_renewal"])
    if "renewal_months" in changes:
        values["renewal_months"] = _renewal(changes["renewal_months"])
    updated = conn.execute(
        contract.update()
        .where(contract.c.id == contract_id, contract.c.status == "active", contract.c.end_date == row.end_date)
        .values(**values)
    )
    if updated.rowcount != 1:
        raise DomainError("status", "the contract was changed concurrently; reload and retry")
    if end != row.end_date:
        _set_service_end(conn, contract_id, end)


def give_notice(conn: Connection, contract_id: int, received_on: date) -> date:
    """Terminate: the contract ends at the current term's end if the notice is in time, else at the next one.

    Returns the end date. A contract without auto-renewal ends at its end anyway; notice just confirms it.
    """
    row = get_contract(conn, contract_id)
    if row.status != "active":
        raise DomainError("status", f"contract {row.number} is {row.status}")
    end = row.end_date
    if received_on > row.notice_deadline and row.auto_renewal:
        end = term_end(end + DAY, row.renewal_months)
    updated = conn.execute(
        contract.update()
        .where(contract.c.id == contract_id, contract.c.status == "active")
        .values(status="notice_given", notice_received_on=received_on, **_dates(end, row.notice_months))
    )
    if updated.rowcount != 1:
        raise DomainError("status", "the contract was changed concurrently; reload and retry")
    _set_service_end(conn, contract_id, end)
    return end


def roll_over(conn: Connection, today: date) -> dict[str, list[int]]:
    """The daily contract run: renew auto-renewing contracts past their end, end the others."""
    renewed: list[int] = []
    ended: list[int] = []
    rows = conn.execute(
        sa.select(contract)
        .where(contract.c.status.in_(("active", "notice_given")), contract.c.end_date < today)
        .order_by(contract.c.id)
    ).all()
    for row in rows:
        if row.status == "active" and row.auto_renewal:
            end = row.end_date
            while end < today:
                end = term_end(end + DAY, row.renewal_months)
            conn.execute(
                contract.update().where(contract.c.id == row.id).values(**_dates(end, row.notice_months))
            )
            _set_service_end(conn, row.id, end)
            renewed.append(int(row.id))
        else:
            conn.execute(contract.update().where(contract.c.id == row.id).values(status="ended"))
            ended.append(int(row.id))
    return {"renewed": renewed, "ended": ended}


def services_of_contract(conn: Connection, contract_id: int) -> list[int]:
    query = (
        sa.select(contract_service.c.booked_service_id)
        .where(contract_service.c.contract_id == contract_id)
        .order_by(contract_service.c.booked_service_id)
    )
    return [int(i) for i in conn.execute(query).scalars()]
