"""``crm.*`` operators for the admin processes (time sheet, travel expenses, vacation, sick note):
the service-task face of the CRM services those processes use.

Same rules as ``connectors.crm_actions``: one transaction per call, a CRM ``DomainError`` becomes the BPMN
business error ``CrmRejected``, creating operators are safe to repeat (a retried job finds the request its
first attempt stored: an identical request still waiting for a decision).
"""

from __future__ import annotations

import base64
import binascii
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection, Engine

from crm import service_queries, staff
from crm.documents import DocumentLinks, DocumentStore
from crm.errors import DomainError

from .crm_actions import CrmActions
from .registry import ConnectorContext, Registry

CENT = Decimal("0.01")
StaffKind = Literal["time_entry", "expense_claim", "vacation_request", "sick_note"]


class TimeSheetEntry(BaseModel):
    date: date
    project: str
    hours: Decimal = Field(gt=0, decimal_places=2)
    note: str | None = None


class TimeSheet(BaseModel):
    employee: str
    week_start: date
    entries: list[TimeSheetEntry] = Field(min_length=1, max_length=100)


class Decision(BaseModel):
    kind: StaffKind
    request_ids: list[int] = Field(min_length=1)
    approved: bool
    decided_by: str


class Receipt(BaseModel):
    """A receipt uploaded with the claim (the form's file field), stored as a document."""

    file_name: str
    mime_type: str
    content: str = Field(description="the file, base64-encoded")


class ExpenseLine(BaseModel):
    date: date
    category: str
    description: str
    amount: Decimal = Field(gt=0, decimal_places=2)
    receipt_document_id: int | None = None
    receipt: Receipt | None = None


class ExpenseClaim(BaseModel):
    employee: str
    purpose: str
    trip_start: date
    trip_end: date
    items: list[ExpenseLine] = Field(min_length=1, max_length=100)


class Period(BaseModel):
    employee: str
    first_day: date
    last_day: date


class SickReport(Period):
    certificate_document_id: int | None = None


class VacationRef(BaseModel):
    request_id: int


class Certificate(BaseModel):
    sick_note_id: int
    document_id: int


class StaffActions(CrmActions):
    def __init__(self, engine: Engine, documents: DocumentStore | None = None) -> None:
        super().__init__(engine)
        self.documents = documents

    def submit_time_sheet(self, params: TimeSheet, context: ConnectorContext) -> dict[str, Any]:
        """Store a week's entries; the result lists them for the team lead's form."""
        lines = [staff.TimeSheetLine(e.date, e.project, e.hours, e.note or None) for e in params.entries]
        with self._transaction() as conn:
            ids = staff.submitted_time_sheet(conn, params.employee, lines)
            if ids is None:
                ids = staff.submit_time_sheet(conn, params.employee, params.week_start, lines, self.clock())
        total = sum((line.hours for line in lines), Decimal(0))
        return {"entry_ids": ids, "total_hours": str(total)}

    def decide(self, params: Decision, context: ConnectorContext) -> dict[str, Any]:
        """Approve or reject requests of one kind; a request already so decided is left as it is."""
        status = "approved" if params.approved else "rejected"
        with self._transaction() as conn:
            for request_id in params.request_ids:
                _table, row = staff.request_row(conn, params.kind, request_id)
                if row.status != status:
                    staff.decide(conn, params.kind, request_id, params.approved, params.decided_by, self.clock())
        return {"kind": params.kind, "request_ids": params.request_ids, "status": status}

    def submit_expense_claim(self, params: ExpenseClaim, context: ConnectorContext) -> dict[str, Any]:
        """Store the claim with its receipts (uploaded ones become documents); the result drops the files."""
        total = sum((line.amount for line in params.items), Decimal(0))
        with self._transaction() as conn:
            claim_id = staff.submitted_request(conn, "expense_claim", params.employee, purpose=params.purpose,
                                               trip_start=params.trip_start, trip_end=params.trip_end, total=total)
            if claim_id is None:
                items = [staff.ExpenseInput(line.category, f"{line.date:%d.%m.%Y}: {line.description}",
                                            line.amount, self._receipt(conn, params.employee, i, line))
                         for i, line in enumerate(params.items)]
                claim_id = staff.submit_expense_claim(conn, params.employee, params.purpose, params.trip_start,
                                                      params.trip_end, items, self.clock())
            stored = service_queries.get_staff_request(conn, "expense_claim", claim_id)
        return {"claim_id": claim_id, "total": str(Decimal(stored["total"]).quantize(CENT)),
                "items": [{"category": item["category"], "description": item["description"],
                           "amount": str(Decimal(item["amount"]).quantize(CENT)),
                           "receipt_document_id": item["receipt_document_id"]} for item in stored["items"]]}

    def _receipt(self, conn: Connection, employee: str, index: int, line: ExpenseLine) -> int | None:
        if line.receipt is None:
            return line.receipt_document_id
        where = f"items[{index}].receipt"
        try:
            data = base64.b64decode(line.receipt.content, validate=True)
        except (binascii.Error, ValueError):
            raise DomainError(f"{where}.content", "the receipt is not valid base64") from None
        store = self.documents or DocumentStore()
        try:
            return store.store(conn, data, line.receipt.file_name, line.receipt.mime_type, DocumentLinks(),
                               uploaded_by=employee, now=self.clock())
        except DomainError as exc:
            raise DomainError(f"{where}.{exc.field}", exc.message) from None

    def request_vacation(self, params: Period, context: ConnectorContext) -> dict[str, Any]:
        """Store the request if it fits the remaining days; the result tells what is left after it."""
        with self._transaction() as conn:
            request_id = staff.submitted_request(conn, "vacation_request", params.employee,
                                                 first_day=params.first_day, last_day=params.last_day)
            if request_id is None:
                request_id = staff.request_vacation(conn, params.employee, params.first_day, params.last_day,
                                                    self.clock())
            _table, row = staff.request_row(conn, "vacation_request", request_id)
            remaining = staff.remaining_vacation(conn, params.employee, params.first_day.year)
        tenth = Decimal("0.1")  # the same text on SQLite and PostgreSQL
        return {"request_id": request_id, "days": str(Decimal(row.days).quantize(tenth)),
                "remaining_days": str(remaining.quantize(tenth))}

    def vacation_calendar(self, params: VacationRef, context: ConnectorContext) -> dict[str, Any]:
        """The approved vacation in the employee's calendar (refused while they have appointments then)."""
        with self._transaction() as conn:
            ids = staff.book_vacation_calendar(conn, params.request_id, self.clock())
        return {"appointment_ids": ids}

    def report_sickness(self, params: SickReport, context: ConnectorContext) -> dict[str, Any]:
        """Store the sick note; the result says whether a doctor's certificate is still owed."""
        with self._transaction() as conn:
            note_id = staff.submitted_request(conn, "sick_note", params.employee, first_day=params.first_day,
                                              last_day=params.last_day)
            if note_id is None:
                note_id = staff.report_sickness(conn, params.employee, params.first_day, params.last_day,
                                                params.certificate_document_id, self.clock())
            _table, row = staff.request_row(conn, "sick_note", note_id)
        return {"sick_note_id": note_id, "certificate_needed": staff.certificate_needed(row.first_day, row.last_day),
                "has_certificate": row.certificate_document_id is not None}

    def attach_certificate(self, params: Certificate, context: ConnectorContext) -> dict[str, Any]:
        with self._transaction() as conn:
            staff.attach_certificate(conn, params.sick_note_id, params.document_id)
        return {"sick_note_id": params.sick_note_id, "certificate_document_id": params.document_id}


def register(registry: Registry, engine: Engine, documents: DocumentStore | None = None) -> StaffActions:
    """``documents``: where uploaded receipts go (default: ``$SILVERFLOW_DOCUMENTS_DIR`` at upload time)."""
    actions = StaffActions(engine, documents)
    registry.register("crm.submit_time_sheet", actions.submit_time_sheet, TimeSheet)
    registry.register("crm.decide_staff_requests", actions.decide, Decision)
    registry.register("crm.submit_expense_claim", actions.submit_expense_claim, ExpenseClaim)
    registry.register("crm.request_vacation", actions.request_vacation, Period)
    registry.register("crm.vacation_calendar", actions.vacation_calendar, VacationRef)
    registry.register("crm.report_sickness", actions.report_sickness, SickReport)
    registry.register("crm.attach_certificate", actions.attach_certificate, Certificate)
    return actions
