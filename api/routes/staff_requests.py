"""Staff requests (``crm.staff``): time entries, expense claims, vacation requests with the entitlements
behind them, sick notes; the decision of a manager and the withdrawal by the employee.

Staff requests are personal: a clerk sees and files their own, managers and integrations anyone's. CRM field
paths keep their index brackets here (``items[1].receiptDocumentId``), as clients of this resource read them.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from crm import service_queries as crm_lists
from crm import staff as crm_staff
from crm.errors import DomainError
from engine.errors import NotFound

from ..deps import (
    EARLIEST,
    LATEST,
    LIST,
    Approver,
    Day,
    FilterText,
    Id,
    Limit,
    Offset,
    Reader,
    RefId,
    Text,
    Writer,
    choice,
    crm_errors,
    engine_of,
    found,
)
from ..identity import Principal
from ..listing import camel_row, page
from ..models import Camel
from ..problems import ApiProblem

router = APIRouter(tags=["service desk"])


class StaffKind(StrEnum):
    """The path segment of each kind of staff request."""

    time_entries = "time-entries"
    expense_claims = "expense-claims"
    vacation_requests = "vacation-requests"
    sick_notes = "sick-notes"


CRM_KIND = {StaffKind.time_entries: "time_entry", StaffKind.expense_claims: "expense_claim",
            StaffKind.vacation_requests: "vacation_request", StaffKind.sick_notes: "sick_note"}
STAFF_STATUSES = ("submitted", "approved", "rejected", "cancelled")
Employee = Annotated[Text, Field(min_length=1, max_length=200)]


class TimeEntryIn(Camel):
    employee: Employee | None = None
    work_date: Day
    project: Text = Field(max_length=100)
    hours: Decimal = Field(gt=0, le=24, max_digits=4, decimal_places=2)
    description: Text | None = Field(default=None, max_length=500)


class ExpenseItemIn(Camel):
    category: str = Field(max_length=20)
    description: Text = Field(max_length=300)
    amount: Decimal = Field(gt=0, le=1_000_000, max_digits=9, decimal_places=2)
    receipt_document_id: RefId | None = None


class ExpenseClaimIn(Camel):
    employee: Employee | None = None
    purpose: Text = Field(max_length=300)
    trip_start: Day
    trip_end: Day
    items: list[ExpenseItemIn] = Field(min_length=1, max_length=100)


class PeriodIn(Camel):
    employee: Employee | None = None
    first_day: Day
    last_day: Day


class SickNoteIn(PeriodIn):
    certificate_document_id: RefId | None = None


class EntitlementIn(Camel):
    employee: Employee
    year: int = Field(ge=EARLIEST, le=LATEST)
    days: Decimal = Field(ge=0, le=100, max_digits=4, decimal_places=1)


class DecisionIn(Camel):
    approve: bool


class CertificateIn(Camel):
    document_id: RefId


def _acting_for(principal: Principal, named: str | None) -> str:
    """Whose request it is: the caller's own, or anyone's for a manager or an integration."""
    if named is None or named == principal.name:
        return principal.name
    if not principal.has("manager", "integration"):
        raise ApiProblem(403, "Forbidden", "only a manager or an integration can act for another employee",
                         "forbidden")
    return named


def _visible_to(principal: Principal, named: str | None) -> str | None:
    """Staff requests (sick notes!) are personal: a clerk sees their own, managers and integrations anyone's."""
    if principal.has("manager", "integration"):
        return named
    return _acting_for(principal, named)


def _staff_request(conn: Any, principal: Principal, kind: StaffKind, request_id: int) -> dict[str, Any]:
    row: dict[str, Any] = found(crm_lists.get_staff_request, conn, CRM_KIND[kind], request_id)
    _visible_to(principal, str(row["employee"]))
    out = camel_row(row)
    if "items" in row:
        out["items"] = [camel_row(item) for item in row["items"]]
    return out


def _staff_list(request: Request, principal: Principal, kind: StaffKind, employee: str | None, status: str | None,
                since: date | None, until: date | None, limit: int, offset: int) -> Any:
    choice("status", status, STAFF_STATUSES)
    who = _visible_to(principal, employee)
    with engine_of(request).db.read() as conn:
        rows, total = crm_lists.list_staff_requests(conn, CRM_KIND[kind], employee=who, status=status,
                                                    since=since, until=until, limit=limit, offset=offset)
    return page(request, rows, total, limit, offset, kind.value)


def _remaining(conn: Any, employee: str, year: int) -> str | None:
    try:
        return str(crm_staff.remaining_vacation(conn, employee, year))
    except DomainError:
        return None


StaffFrom = Annotated[Day | None, Query(alias="from")]


@router.get("/staff/time-entries", responses=LIST)
def list_time_entries(request: Request, principal: Reader, employee: FilterText = None, status: FilterText = None,
                      since: StaffFrom = None, until: Day | None = None, limit: Limit = 50,
                      offset: Offset = 0) -> Any:
    """Time-sheet entries by work date, newest first (a clerk sees their own)."""
    return _staff_list(request, principal, StaffKind.time_entries, employee, status, since, until, limit, offset)


@router.post("/staff/time-entries", status_code=201)
def submit_time_entry(request: Request, body: TimeEntryIn, principal: Writer) -> dict[str, Any]:
    """Book hours on a project (at most 10 h a day, ArbZG § 3)."""
    who = _acting_for(principal, body.employee)
    with engine_of(request).db.transaction() as conn:
        with crm_errors(bracketed=True):
            entry_id = crm_staff.submit_time_entry(conn, who, body.work_date, body.project, body.hours,
                                                   body.description)
        return _staff_request(conn, principal, StaffKind.time_entries, entry_id)


@router.get("/staff/expense-claims", responses=LIST)
def list_expense_claims(request: Request, principal: Reader, employee: FilterText = None,
                        status: FilterText = None, since: StaffFrom = None, until: Day | None = None,
                        limit: Limit = 50, offset: Offset = 0) -> Any:
    return _staff_list(request, principal, StaffKind.expense_claims, employee, status, since, until, limit, offset)


@router.post("/staff/expense-claims", status_code=201)
def submit_expense_claim(request: Request, body: ExpenseClaimIn, principal: Writer) -> dict[str, Any]:
    """A travel expense claim; every item but a per diem needs a receipt document."""
    who = _acting_for(principal, body.employee)
    items = [crm_staff.ExpenseInput(**item.model_dump()) for item in body.items]
    with engine_of(request).db.transaction() as conn:
        with crm_errors(bracketed=True):
            claim_id = crm_staff.submit_expense_claim(conn, who, body.purpose, body.trip_start, body.trip_end, items)
        return _staff_request(conn, principal, StaffKind.expense_claims, claim_id)


@router.get("/staff/vacation-requests", responses=LIST)
def list_vacation_requests(request: Request, principal: Reader, employee: FilterText = None,
                           status: FilterText = None, since: StaffFrom = None, until: Day | None = None,
                           limit: Limit = 50, offset: Offset = 0) -> Any:
    return _staff_list(request, principal, StaffKind.vacation_requests, employee, status, since, until, limit,
                       offset)


@router.post("/staff/vacation-requests", status_code=201)
def request_vacation(request: Request, body: PeriodIn, principal: Writer) -> dict[str, Any]:
    """Ask for vacation (working days, within what is left of the year); the answer tells what remains."""
    who = _acting_for(principal, body.employee)
    with engine_of(request).db.transaction() as conn:
        with crm_errors(bracketed=True):
            request_id = crm_staff.request_vacation(conn, who, body.first_day, body.last_day)
        out = _staff_request(conn, principal, StaffKind.vacation_requests, request_id)
        return {**out, "remainingDays": _remaining(conn, who, body.first_day.year)}


@router.get("/staff/vacation-balance")
def vacation_balance(request: Request, principal: Reader,
                     year: Annotated[int, Query(ge=EARLIEST, le=LATEST)],
                     employee: FilterText = None) -> dict[str, Any]:
    """Vacation days left in a year: the entitlement minus submitted and approved requests."""
    who = _visible_to(principal, employee) or principal.name
    with engine_of(request).db.read() as conn:
        remaining = _remaining(conn, who, year)
    if remaining is None:
        raise NotFound(f"{who} has no vacation entitlement for {year}")
    return {"employee": who, "year": year, "remainingDays": remaining}


@router.put("/staff/vacation-entitlements")
def set_entitlement(request: Request, body: EntitlementIn, _p: Approver) -> dict[str, Any]:
    """The year's vacation days of an employee (contract plus carry-over), replacing what was set."""
    with engine_of(request).db.transaction() as conn:
        with crm_errors(bracketed=True):
            crm_staff.set_entitlement(conn, body.employee, body.year, body.days)
        return {"employee": body.employee, "year": body.year, "days": str(body.days),
                "remainingDays": _remaining(conn, body.employee, body.year)}


@router.get("/staff/sick-notes", responses=LIST)
def list_sick_notes(request: Request, principal: Reader, employee: FilterText = None, status: FilterText = None,
                    since: StaffFrom = None, until: Day | None = None, limit: Limit = 50,
                    offset: Offset = 0) -> Any:
    return _staff_list(request, principal, StaffKind.sick_notes, employee, status, since, until, limit, offset)


@router.post("/staff/sick-notes", status_code=201)
def report_sickness(request: Request, body: SickNoteIn, principal: Writer) -> dict[str, Any]:
    """Report a sickness; more than three days need a doctor's certificate before it is acknowledged."""
    who = _acting_for(principal, body.employee)
    with engine_of(request).db.transaction() as conn:
        with crm_errors(bracketed=True):
            note_id = crm_staff.report_sickness(conn, who, body.first_day, body.last_day,
                                                body.certificate_document_id)
        return _staff_request(conn, principal, StaffKind.sick_notes, note_id)


@router.post("/staff/sick-notes/{note_id}/certificate")
def attach_certificate(request: Request, note_id: Id, body: CertificateIn, principal: Writer) -> dict[str, Any]:
    with engine_of(request).db.transaction() as conn:
        _staff_request(conn, principal, StaffKind.sick_notes, note_id)
        with crm_errors(bracketed=True):
            crm_staff.attach_certificate(conn, note_id, body.document_id)
        return _staff_request(conn, principal, StaffKind.sick_notes, note_id)


@router.get("/staff/{kind}/{request_id}")
def get_staff_request(request: Request, kind: StaffKind, request_id: Id, principal: Reader) -> dict[str, Any]:
    """One staff request (an expense claim with its items)."""
    with engine_of(request).db.read() as conn:
        return _staff_request(conn, principal, kind, request_id)


@router.post("/staff/{kind}/{request_id}/decision")
def decide(request: Request, kind: StaffKind, request_id: Id, body: DecisionIn, principal: Approver
           ) -> dict[str, Any]:
    """Approve or reject a submitted request (not one's own); a request already decided is a 409."""
    with engine_of(request).db.transaction() as conn:
        _staff_request(conn, principal, kind, request_id)
        with crm_errors("status", "certificate_document_id", bracketed=True):
            crm_staff.decide(conn, CRM_KIND[kind], request_id, body.approve, principal.name)
        return _staff_request(conn, principal, kind, request_id)


@router.post("/staff/{kind}/{request_id}/cancel")
def cancel_request(request: Request, kind: StaffKind, request_id: Id, principal: Writer) -> dict[str, Any]:
    """The employee withdraws a request (an approved vacation gives its days back)."""
    with engine_of(request).db.transaction() as conn:
        row = _staff_request(conn, principal, kind, request_id)
        _acting_for(principal, str(row["employee"]))
        with crm_errors("status", bracketed=True):
            crm_staff.cancel_request(conn, CRM_KIND[kind], request_id)
        return _staff_request(conn, principal, kind, request_id)
