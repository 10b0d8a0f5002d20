"""``crm.*`` for the admin processes: repeated jobs store nothing twice, refusals are ``CrmRejected`` naming the
field, uploaded receipts become documents, a long vacation takes several calendar entries."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors import staff_actions
from connectors.registry import BusinessError, ConnectorContext, Registry
from crm.documents import DocumentLinks, DocumentStore
from crm.schema import appointment, document, expense_claim, sick_note, time_entry, vacation_request
from crm.staff import CALENDAR_ZONE, set_entitlement
from engine.database import create_db_engine

EMPLOYEE = "kim"


@pytest.fixture
def actions(db_url: str, tmp_path: Path) -> Iterator[tuple[Registry, sa.engine.Engine]]:
    engine = create_db_engine(db_url)
    registry = Registry()
    staff_actions.register(registry, engine, DocumentStore(tmp_path))
    yield registry, engine
    engine.dispose()


def ctx() -> ConnectorContext:
    return ConnectorContext("job-1", "instance", "element", None)


def count(engine: sa.engine.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_time_sheet_is_stored_once_and_decided_once(actions: tuple[Registry, sa.engine.Engine]) -> None:
    registry, engine = actions
    sheet = {"employee": EMPLOYEE, "week_start": "2027-03-08",
             "entries": [{"date": "2027-03-08", "project": "Support", "hours": "7.5"},
                         {"date": "2027-03-12", "project": "Messe", "hours": 8, "note": "Standdienst"}]}
    first = registry.run("crm.submit_time_sheet", sheet, ctx())
    assert registry.run("crm.submit_time_sheet", sheet, ctx()) == first
    assert first["total_hours"] == "15.5" and count(engine, time_entry) == 2
    decision = {"kind": "time_entry", "request_ids": first["entry_ids"], "approved": True, "decided_by": "chef"}
    assert registry.run("crm.decide_staff_requests", decision, ctx())["status"] == "approved"
    assert registry.run("crm.decide_staff_requests", decision, ctx())["status"] == "approved"


@pytest.mark.parametrize(("week_start", "entry", "field"), [
    ("2027-03-09", {"date": "2027-03-09", "project": "Support", "hours": 1}, "week_start"),
    ("2027-03-08", {"date": "2027-03-15", "project": "Support", "hours": 1}, "entries[0].date"),
    ("2027-03-08", {"date": "2027-03-08", "project": "", "hours": 1}, "entries[0].project"),
])
def test_time_sheet_refusals_name_the_line(actions: tuple[Registry, sa.engine.Engine], week_start: str,
                                           entry: dict[str, object], field: str) -> None:
    registry, engine = actions
    with pytest.raises(BusinessError) as refused:
        registry.run("crm.submit_time_sheet", {"employee": EMPLOYEE, "week_start": week_start, "entries": [entry]},
                     ctx())
    assert (refused.value.code, refused.value.data) == ("CrmRejected", {"field": field})
    assert count(engine, time_entry) == 0


def test_expense_claim_stores_uploaded_receipts_once(actions: tuple[Registry, sa.engine.Engine]) -> None:
    registry, engine = actions
    receipt = {"file_name": "taxi.pdf", "mime_type": "application/pdf",
               "content": base64.b64encode(b"%PDF-1.4 Taxi").decode()}
    params = {"employee": EMPLOYEE, "purpose": "Kunde Hofmann", "trip_start": "2027-06-01", "trip_end": "2027-06-01",
              "items": [{"date": "2027-06-01", "category": "travel", "description": "Taxi", "amount": 23.5,
                         "receipt": receipt}]}
    first = registry.run("crm.submit_expense_claim", params, ctx())
    assert registry.run("crm.submit_expense_claim", params, ctx()) == first
    assert first["total"] == "23.50" and first["items"][0]["description"] == "01.06.2027: Taxi"
    assert count(engine, expense_claim) == 1
    with engine.connect() as conn:
        stored = conn.execute(sa.select(document)).all()
    assert [(d.id, d.file_name, d.uploaded_by) for d in stored] == [
        (first["items"][0]["receipt_document_id"], "taxi.pdf", EMPLOYEE)]
    params["items"][0]["receipt"] = {**receipt, "content": "not base64!"}  # type: ignore[index]
    with pytest.raises(BusinessError) as refused:
        registry.run("crm.submit_expense_claim", {**params, "purpose": "Kunde Wolf"}, ctx())
    assert refused.value.data == {"field": "items[0].receipt.content"}


def test_vacation_request_and_a_long_vacation_in_the_calendar(actions: tuple[Registry, sa.engine.Engine]) -> None:
    registry, engine = actions
    with engine.begin() as conn:
        set_entitlement(conn, EMPLOYEE, 2027, Decimal(30))
    period = {"employee": EMPLOYEE, "first_day": "2027-07-05", "last_day": "2027-07-23"}  # three weeks
    first = registry.run("crm.request_vacation", period, ctx())
    assert registry.run("crm.request_vacation", period, ctx()) == first
    assert (first["days"], first["remaining_days"], count(engine, vacation_request)) == ("15.0", "15.0", 1)
    with pytest.raises(BusinessError) as not_yet:
        registry.run("crm.vacation_calendar", {"request_id": first["request_id"]}, ctx())
    assert not_yet.value.data == {"field": "status"}
    registry.run("crm.decide_staff_requests", {"kind": "vacation_request", "request_ids": [first["request_id"]],
                                               "approved": True, "decided_by": "chef"}, ctx())
    booked = registry.run("crm.vacation_calendar", {"request_id": first["request_id"]}, ctx())
    assert registry.run("crm.vacation_calendar", {"request_id": first["request_id"]}, ctx()) == booked
    with engine.connect() as conn:
        spans = [(a.starts_at, a.ends_at) for a in conn.execute(
            sa.select(appointment).where(appointment.c.id.in_(booked["appointment_ids"])).order_by(appointment.c.id))]
    assert spans == [(datetime(2027, 7, 5, tzinfo=CALENDAR_ZONE), datetime(2027, 7, 19, tzinfo=CALENDAR_ZONE)),
                     (datetime(2027, 7, 19, tzinfo=CALENDAR_ZONE), datetime(2027, 7, 24, tzinfo=CALENDAR_ZONE))]
    with pytest.raises(BusinessError) as too_many:
        registry.run("crm.request_vacation", {**period, "first_day": "2027-08-02", "last_day": "2027-08-27"}, ctx())
    assert too_many.value.data == {"field": "last_day"}


def test_sick_note_certificate(actions: tuple[Registry, sa.engine.Engine], tmp_path: Path) -> None:
    registry, engine = actions
    period = {"employee": EMPLOYEE, "first_day": "2027-03-08", "last_day": "2027-03-12"}
    first = registry.run("crm.report_sickness", period, ctx())
    assert registry.run("crm.report_sickness", period, ctx()) == first
    assert (first["certificate_needed"], first["has_certificate"], count(engine, sick_note)) == (True, False, 1)
    decision = {"kind": "sick_note", "request_ids": [first["sick_note_id"]], "approved": True, "decided_by": "hr"}
    with pytest.raises(BusinessError) as missing:
        registry.run("crm.decide_staff_requests", decision, ctx())
    assert missing.value.data == {"field": "certificate_document_id"}
    with engine.begin() as conn:
        doc = DocumentStore(tmp_path).store(conn, b"%PDF AU", "au.pdf", "application/pdf", DocumentLinks())
    registry.run("crm.attach_certificate", {"sick_note_id": first["sick_note_id"], "document_id": doc}, ctx())
    assert registry.run("crm.decide_staff_requests", decision, ctx())["status"] == "approved"
