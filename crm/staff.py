"""Staff requests for the admin processes: time sheets, travel expenses, vacation, sick notes.

Each is an approval workflow (submitted → approved / rejected, or cancelled by the employee) decided by
someone other than the employee. The rules: at most 10 working hours a day (ArbZG § 3); every expense except
per-diem allowances needs a receipt; vacation is counted in working days (Mon–Fri) and a request must fit into
what is left of the year's entitlement, counting pending requests too; a sickness of more than three calendar
days needs a doctor's certificate before it is acknowledged (EFZG § 5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .appointments import AppointmentInput, create_appointment
from .errors import DomainError
from .schema import (
    appointment,
    appointment_participant,
    document,
    expense_claim,
    expense_item,
    sick_note,
    time_entry,
    vacation_entitlement,
    vacation_request,
)
from .status import Transitions, change_status

TRANSITIONS: Transitions = {
    "submitted": frozenset({"approved", "rejected", "cancelled"}),
    "approved": frozenset({"cancelled"}),
}
REQUEST_TABLES = {
    "time_entry": time_entry,
    "expense_claim": expense_claim,
    "vacation_request": vacation_request,
    "sick_note": sick_note,
}
MAX_HOURS_PER_DAY = Decimal(10)
EXPENSE_CATEGORIES = ("travel", "hotel", "meals", "per_diem", "other")
NO_RECEIPT_NEEDED = ("per_diem",)
CERTIFICATE_AFTER_DAYS = 3
COUNTED = ("submitted", "approved")  # requests that use up vacation days
CALENDAR_ZONE = ZoneInfo("Europe/Berlin")  # whose midnight a vacation day starts at
CALENDAR_CHUNK_DAYS = 14  # an appointment lasts at most 14 days, so longer vacations take several


def _employee(name: str) -> str:
    return v.required_text("employee", name, 200)


def _period(first_day: date, last_day: date, first: str = "first_day", last: str = "last_day") -> None:
    if last_day < first_day:
        raise DomainError(last, f"{last} must not be before {first}")


def _submitted(employee: str, now: datetime | None) -> dict[str, object]:
    return {"employee": _employee(employee), "status": "submitted", "submitted_at": v.timestamp(now)}


def _insert(conn: Connection, table: sa.Table, values: dict[str, object]) -> int:
    return int(conn.execute(table.insert().values(**values).returning(table.c.id)).scalar_one())


def _lock_employee(conn: Connection, table: sa.Table, employee: str) -> None:
    """Serialise an employee's concurrent requests of one kind before checking limits.

    A no-op UPDATE on the employee's rows takes row locks on PostgreSQL and the write lock on SQLite, so the
    sum read next cannot change under us until commit.
    """
    conn.execute(table.update().where(table.c.employee == employee).values(employee=table.c.employee))


def submit_time_entry(
    conn: Connection,
    employee: str,
    work_date: date,
    project: str,
    hours: Decimal,
    description: str | None = None,
    now: datetime | None = None,
) -> int:
    """Book hours on a project; a day's total (without rejected or cancelled entries) stays within 10 h."""
    values = _submitted(employee, now)
    if (
        not isinstance(hours, Decimal)
        or not hours.is_finite()
        or hours <= 0
        or hours != hours.quantize(Decimal("0.01"))
    ):
        raise DomainError(
            "hours", f"hours must be a positive Decimal with at most two decimals, got {hours!r}"
        )
    _lock_employee(conn, time_entry, str(values["employee"]))
    booked = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(time_entry.c.hours), 0)).where(
            time_entry.c.employee == values["employee"],
            time_entry.c.work_date == work_date,
            time_entry.c.status.in_(COUNTED),
        )
    ).scalar_one()
    if Decimal(booked).quantize(Decimal("0.01")) + hours > MAX_HOURS_PER_DAY:
        raise DomainError(
            "hours",
            f"{work_date} already has {booked} h; more than {MAX_HOURS_PER_DAY} h a day "
            "is not allowed (ArbZG § 3)",
        )
    values.update(
        work_date=work_date,
        project=v.required_text("project", project, 100),
        hours=hours,
        description=v.optional_text("description", description, 500),
    )
    return _insert(conn, time_entry, values)


@dataclass(frozen=True)
class TimeSheetLine:
    work_date: date
    project: str
    hours: Decimal
    description: str | None = None


def submit_time_sheet(
    conn: Connection,
    employee: str,
    week_start: date,
    lines: Sequence[TimeSheetLine],
    now: datetime | None = None,
) -> list[int]:
    """A week's entries at once (all or none): the week starts on a Monday and every entry lies in it.

    A refused entry names its position (``entries[2].hours``), so the employee knows which line to fix.
    """
    if week_start.weekday() != 0:
        raise DomainError("week_start", f"week_start must be a Monday, {week_start} is not")
    if not lines:
        raise DomainError("entries", "a time sheet needs at least one entry")
    week_end = week_start + timedelta(days=6)
    ids: list[int] = []
    for i, line in enumerate(lines):
        if not week_start <= line.work_date <= week_end:
            raise DomainError(f"entries[{i}].date", f"{line.work_date} is not in the week {week_start}–{week_end}")
        try:
            ids.append(submit_time_entry(conn, employee, line.work_date, line.project, line.hours,
                                         line.description, now))
        except DomainError as exc:
            raise DomainError(f"entries[{i}].{exc.field}", exc.message) from None
    return ids


def submitted_time_sheet(conn: Connection, employee: str, lines: Sequence[TimeSheetLine]) -> list[int] | None:
    """The ids of an identical sheet already waiting for a decision (a repeated submission), else None."""
    ids: list[int] = []
    for line in lines:
        found = conn.execute(
            sa.select(time_entry.c.id).where(
                time_entry.c.employee == employee,
                time_entry.c.status == "submitted",
                time_entry.c.work_date == line.work_date,
                time_entry.c.project == line.project,
                time_entry.c.hours == line.hours,
                time_entry.c.description.is_(None)
                if line.description is None
                else time_entry.c.description == line.description,
                time_entry.c.id.notin_(ids),
            ).order_by(time_entry.c.id)
        ).scalar()
        if found is None:
            return None
        ids.append(int(found))
    return ids


@dataclass(frozen=True)
class ExpenseInput:
    category: str
    description: str
    amount: Decimal
    receipt_document_id: int | None = None


def submit_expense_claim(
    conn: Connection,
    employee: str,
    purpose: str,
    trip_start: date,
    trip_end: date,
    items: Sequence[ExpenseInput],
    now: datetime | None = None,
) -> int:
    """A travel expense claim; the total is the sum of the items, each with its receipt unless a per diem."""
    _period(trip_start, trip_end, "trip_start", "trip_end")
    if not items:
        raise DomainError("items", "an expense claim needs at least one item")
    rows: list[dict[str, object]] = []
    total = Decimal("0.00")
    for i, item in enumerate(items):
        where = f"items[{i}]"
        category = v.one_of(f"{where}.category", item.category, EXPENSE_CATEGORIES)
        amount = v.money(f"{where}.amount", item.amount)
        if amount == 0:
            raise DomainError(f"{where}.amount", "amount must be greater than zero")
        total += amount
        receipt = item.receipt_document_id
        if receipt is None and category not in NO_RECEIPT_NEEDED:
            raise DomainError(f"{where}.receipt_document_id", f"a {category} expense needs a receipt")
        if (
            receipt is not None
            and conn.execute(sa.select(document.c.id).where(document.c.id == receipt)).first() is None
        ):
            raise DomainError(f"{where}.receipt_document_id", f"document {receipt} does not exist")
        rows.append(
            {
                "line_no": i + 1,
                "category": category,
                "amount": amount,
                "receipt_document_id": receipt,
                "description": v.required_text(f"{where}.description", item.description, 300),
            }
        )
    values = _submitted(employee, now)
    values.update(
        purpose=v.required_text("purpose", purpose, 300),
        trip_start=trip_start,
        trip_end=trip_end,
        total=total,
    )
    claim_id = _insert(conn, expense_claim, values)
    conn.execute(expense_item.insert(), [{**row, "expense_claim_id": claim_id} for row in rows])
    return claim_id


def working_days(first_day: date, last_day: date) -> int:
    """Monday to Friday in [first_day, last_day]; public holidays are not taken off (they differ by state)."""
    _period(first_day, last_day)
    return sum(
        1 for n in range((last_day - first_day).days + 1) if (first_day + timedelta(days=n)).weekday() < 5
    )


def set_entitlement(conn: Connection, employee: str, year: int, days: Decimal) -> None:
    """The year's vacation days of an employee (contract plus carry-over), replacing what was set."""
    name = _employee(employee)
    if not isinstance(days, Decimal) or not days.is_finite() or not 0 <= days <= 100 or days % Decimal("0.5"):
        raise DomainError("days", f"days must be a Decimal from 0 to 100 in half days, got {days!r}")
    updated = conn.execute(
        vacation_entitlement.update()
        .where(vacation_entitlement.c.employee == name, vacation_entitlement.c.year == year)
        .values(days=days)
    )
    if updated.rowcount == 0:
        conn.execute(vacation_entitlement.insert().values(employee=name, year=year, days=days))


def remaining_vacation(conn: Connection, employee: str, year: int) -> Decimal:
    """Entitlement minus the days of submitted and approved requests of that year."""
    entitlement = conn.execute(
        sa.select(vacation_entitlement.c.days).where(
            vacation_entitlement.c.employee == employee, vacation_entitlement.c.year == year
        )
    ).scalar_one_or_none()
    if entitlement is None:
        raise DomainError("employee", f"{employee} has no vacation entitlement for {year}")
    used = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(vacation_request.c.days), 0)).where(
            vacation_request.c.employee == employee,
            vacation_request.c.status.in_(COUNTED),
            vacation_request.c.first_day >= date(year, 1, 1),
            vacation_request.c.first_day <= date(year, 12, 31),
        )
    ).scalar_one()
    return (Decimal(entitlement) - Decimal(used)).quantize(Decimal("0.1"))


def request_vacation(
    conn: Connection, employee: str, first_day: date, last_day: date, now: datetime | None = None
) -> int:
    """Ask for vacation; refused when it overlaps another request or exceeds the remaining days."""
    name = _employee(employee)
    days = Decimal(working_days(first_day, last_day))
    if first_day.year != last_day.year:
        raise DomainError("last_day", "a vacation request must not span two years; split it at New Year")
    if days == 0:
        raise DomainError("last_day", "the period has no working day")
    # Lock the entitlement row first: two requests at once then see each other's days.
    locked = conn.execute(
        vacation_entitlement.update()
        .where(
            vacation_entitlement.c.employee == name,
            vacation_entitlement.c.year == first_day.year,
        )
        .values(days=vacation_entitlement.c.days)
    ).rowcount
    if not locked:
        raise DomainError("employee", f"{name} has no vacation entitlement for {first_day.year}")
    overlap = conn.execute(
        sa.select(vacation_request.c.id).where(
            vacation_request.c.employee == name,
            vacation_request.c.status.in_(COUNTED),
            vacation_request.c.first_day <= last_day,
            vacation_request.c.last_day >= first_day,
        )
    ).first()
    if overlap is not None:
        raise DomainError("first_day", f"the period overlaps vacation request {overlap.id}")
    remaining = remaining_vacation(conn, name, first_day.year)
    if days > remaining:
        raise DomainError(
            "last_day", f"{days} working days requested but only {remaining} left in {first_day.year}"
        )
    values = _submitted(name, now)
    values.update(first_day=first_day, last_day=last_day, days=days)
    return _insert(conn, vacation_request, values)


def submitted_request(
    conn: Connection, kind: str, employee: str, **fields: object
) -> int | None:
    """A submitted or approved request of ``kind`` with exactly these field values (a repeated submission)."""
    table = request_table(kind)
    query = sa.select(table.c.id).where(table.c.employee == employee, table.c.status.in_(COUNTED))
    for name, value in fields.items():
        query = query.where(table.c[name] == value)
    found = conn.execute(query.order_by(table.c.id)).scalar()
    return None if found is None else int(found)


def vacation_topic(request_id: int) -> str:
    return f"Urlaub (Antrag {request_id})"


def book_vacation_calendar(conn: Connection, request_id: int, now: datetime | None = None) -> list[int]:
    """Block the employee's calendar for an approved vacation, from the first day's midnight to the end of the
    last day (local time), in appointments of at most two weeks; already booked → the same ids again.

    An appointment of the employee in that time is refused (``participants``): they move it first.
    """
    _table, row = request_row(conn, "vacation_request", request_id)
    if row.status != "approved":
        raise DomainError("status", f"vacation request {request_id} is {row.status}, not approved")
    topic = vacation_topic(request_id)
    booked = [
        int(r.id)
        for r in conn.execute(
            sa.select(appointment.c.id)
            .join(appointment_participant, appointment_participant.c.appointment_id == appointment.c.id)
            .where(
                appointment.c.topic == topic,
                appointment.c.status == "planned",
                appointment_participant.c.participant == row.employee,
            )
            .order_by(appointment.c.starts_at)
        )
    ]
    if booked:
        return booked
    ids: list[int] = []
    first: date = row.first_day
    while first <= row.last_day:
        last = min(row.last_day, first + timedelta(days=CALENDAR_CHUNK_DAYS - 1))
        starts = datetime.combine(first, time(), CALENDAR_ZONE)
        ends = datetime.combine(last + timedelta(days=1), time(), CALENDAR_ZONE)
        ids.append(create_appointment(conn, AppointmentInput(topic, starts, ends, [row.employee]), now))
        first = last + timedelta(days=1)
    return ids


def certificate_needed(first_day: date, last_day: date) -> bool:
    return (last_day - first_day).days + 1 > CERTIFICATE_AFTER_DAYS


def report_sickness(
    conn: Connection,
    employee: str,
    first_day: date,
    last_day: date,
    certificate_document_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """The sick note as reported (the certificate may follow with :func:`attach_certificate`)."""
    _period(first_day, last_day)
    values = _submitted(employee, now)
    values.update(first_day=first_day, last_day=last_day, certificate_document_id=None)
    note_id = _insert(conn, sick_note, values)
    if certificate_document_id is not None:
        attach_certificate(conn, note_id, certificate_document_id)
    return note_id


def attach_certificate(conn: Connection, sick_note_id: int, document_id: int) -> None:
    if conn.execute(sa.select(document.c.id).where(document.c.id == document_id)).first() is None:
        raise DomainError("certificate_document_id", f"document {document_id} does not exist")
    updated = conn.execute(
        sick_note.update().where(sick_note.c.id == sick_note_id).values(certificate_document_id=document_id)
    )
    if updated.rowcount != 1:
        raise DomainError("sick_note_id", f"sick note {sick_note_id} does not exist")


def request_table(kind: str) -> sa.Table:
    """The table of a kind of staff request (a key of ``REQUEST_TABLES``)."""
    table = REQUEST_TABLES.get(kind)
    if table is None:
        raise DomainError("kind", f"kind must be one of {', '.join(REQUEST_TABLES)}")
    return table


def request_row(conn: Connection, kind: str, request_id: int) -> tuple[sa.Table, sa.Row[tuple[object, ...]]]:
    table = request_table(kind)
    row = conn.execute(sa.select(table).where(table.c.id == request_id)).one_or_none()
    if row is None:
        raise DomainError("id", f"{kind} {request_id} does not exist")
    return table, row


def decide(
    conn: Connection, kind: str, request_id: int, approve: bool, decided_by: str, now: datetime | None = None
) -> None:
    """Approve or reject a submitted request of ``kind`` (a key of ``REQUEST_TABLES``)."""
    table, row = request_row(conn, kind, request_id)
    decider = v.required_text("decided_by", decided_by, 200)
    if decider == row.employee:
        raise DomainError("decided_by", "nobody can decide their own request")
    if (
        approve
        and kind == "sick_note"
        and certificate_needed(row.first_day, row.last_day)
        and row.certificate_document_id is None
    ):
        raise DomainError(
            "certificate_document_id",
            f"a sickness of more than {CERTIFICATE_AFTER_DAYS} days needs a doctor's certificate",
        )
    change_status(
        conn,
        table,
        request_id,
        TRANSITIONS,
        "approved" if approve else "rejected",
        decided_by=decider,
        decided_at=v.timestamp(now),
    )


def cancel_request(conn: Connection, kind: str, request_id: int) -> None:
    """The employee withdraws a request (an approved vacation gives its days back)."""
    table = request_table(kind)
    change_status(conn, table, request_id, TRANSITIONS, "cancelled")
