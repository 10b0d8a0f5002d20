"""Staff requests: vacation days with the remaining-days check (also under concurrency), time sheets,
travel expenses with receipts, sick notes with certificates, four-eyes approval."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from crm import staff
from crm.documents import DocumentLinks, DocumentStore
from crm.errors import DomainError
from crm.schema import vacation_request

from .conftest import NOW


def test_working_days() -> None:
    assert staff.working_days(date(2026, 3, 2), date(2026, 3, 8)) == 5  # Monday to Sunday
    assert staff.working_days(date(2026, 3, 7), date(2026, 3, 8)) == 0
    assert staff.working_days(date(2026, 3, 6), date(2026, 3, 9)) == 2  # Friday to Monday
    with pytest.raises(DomainError) as err:
        staff.working_days(date(2026, 3, 9), date(2026, 3, 6))
    assert err.value.field == "last_day"


def test_vacation_remaining_days(conn: Connection) -> None:
    staff.set_entitlement(conn, "anna", 2026, D("12"))
    first = staff.request_vacation(conn, "anna", date(2026, 3, 2), date(2026, 3, 13), now=NOW)  # 10 days
    assert staff.remaining_vacation(conn, "anna", 2026) == D("2.0")  # pending requests count
    with pytest.raises(DomainError) as err:
        staff.request_vacation(conn, "anna", date(2026, 8, 3), date(2026, 8, 5))
    assert err.value.field == "last_day" and "only 2.0 left" in err.value.message
    with pytest.raises(DomainError) as err:
        staff.request_vacation(conn, "anna", date(2026, 3, 13), date(2026, 3, 13))
    assert err.value.field == "first_day"  # overlaps the first request
    staff.decide(conn, "vacation_request", first, approve=False, decided_by="chef", now=NOW)
    assert staff.remaining_vacation(conn, "anna", 2026) == D("12.0")  # a rejected request gives days back
    second = staff.request_vacation(conn, "anna", date(2026, 8, 3), date(2026, 8, 14))
    staff.decide(conn, "vacation_request", second, approve=True, decided_by="chef")
    staff.cancel_request(conn, "vacation_request", second)
    assert staff.remaining_vacation(conn, "anna", 2026) == D("12.0")


@pytest.mark.parametrize(
    ("first", "last", "field"),
    [
        (date(2026, 12, 28), date(2027, 1, 8), "last_day"),
        (date(2026, 3, 7), date(2026, 3, 8), "last_day"),
        (date(2027, 3, 1), date(2027, 3, 2), "employee"),
    ],
)
def test_vacation_request_errors(conn: Connection, first: date, last: date, field: str) -> None:
    staff.set_entitlement(conn, "anna", 2026, D("30"))
    with pytest.raises(DomainError) as err:
        staff.request_vacation(conn, "anna", first, last)
    assert err.value.field == field


def test_concurrent_vacation_requests_cannot_overdraw(engine: Engine) -> None:
    """Eight one-week requests at once against 10 days: exactly two are accepted."""
    with engine.begin() as conn:
        staff.set_entitlement(conn, "bert", 2026, D("10"))
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def ask(week: int) -> None:
        monday = date(2026, 1, 5) + timedelta(weeks=week)
        barrier.wait()
        try:
            with engine.begin() as conn:
                staff.request_vacation(conn, "bert", monday, monday + timedelta(days=4))
            outcomes.append("ok")
        except DomainError:
            outcomes.append("refused")

    threads = [threading.Thread(target=ask, args=(week,)) for week in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok"] * 2 + ["refused"] * 6
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.sum(vacation_request.c.days))).scalar_one() == D("10")


def test_four_eyes(conn: Connection) -> None:
    entry = staff.submit_time_entry(conn, "anna", date(2026, 3, 2), "Migration", D("8"), now=NOW)
    with pytest.raises(DomainError) as err:
        staff.decide(conn, "time_entry", entry, approve=True, decided_by="anna")
    assert err.value.field == "decided_by"
    staff.decide(conn, "time_entry", entry, approve=True, decided_by="chef", now=NOW)
    with pytest.raises(DomainError, match="from 'approved' to 'rejected'"):
        staff.decide(conn, "time_entry", entry, approve=False, decided_by="chef")
    with pytest.raises(DomainError) as err:
        staff.decide(conn, "holiday", entry, approve=True, decided_by="chef")
    assert err.value.field == "kind"


def test_time_sheet_day_limit(conn: Connection) -> None:
    day = date(2026, 3, 2)
    staff.submit_time_entry(conn, "anna", day, "Migration", D("6.5"))
    rejected = staff.submit_time_entry(conn, "anna", day, "Support", D("3.5"))
    staff.decide(conn, "time_entry", rejected, approve=False, decided_by="chef")
    staff.submit_time_entry(conn, "anna", day, "Support", D("3.5"))  # the rejected hours do not count
    with pytest.raises(DomainError) as err:
        staff.submit_time_entry(conn, "anna", day, "Support", D("0.25"))
    assert err.value.field == "hours" and "ArbZG" in err.value.message
    staff.submit_time_entry(conn, "bert", day, "Support", D("10"))  # another employee, another budget
    for bad in (D("0"), D("1.005"), D("-1")):
        with pytest.raises(DomainError) as err:
            staff.submit_time_entry(conn, "anna", date(2026, 3, 3), "X", bad)
        assert err.value.field == "hours"


def test_travel_expenses_need_receipts(conn: Connection, tmp_path: Path) -> None:
    receipt = DocumentStore(tmp_path).store(
        conn, b"%PDF-1.4 hotel", "hotel.pdf", "application/pdf", DocumentLinks()
    )
    items = [
        staff.ExpenseInput("hotel", "Hotel Hannover", D("189.00"), receipt),
        staff.ExpenseInput("per_diem", "Verpflegung 2 Tage", D("28.00")),
    ]
    claim = staff.submit_expense_claim(
        conn, "anna", "CeBIT", date(2026, 3, 2), date(2026, 3, 3), items, now=NOW
    )
    assert conn.execute(
        sa.select(staff.expense_claim.c.total).where(staff.expense_claim.c.id == claim)
    ).scalar_one() == D("217.00")
    bad = [
        ([staff.ExpenseInput("travel", "Bahn", D("99.00"))], "items[0].receipt_document_id"),
        ([staff.ExpenseInput("travel", "Bahn", D("99.00"), 4711)], "items[0].receipt_document_id"),
        ([staff.ExpenseInput("per_diem", "x", D("0.00"))], "items[0].amount"),
        ([staff.ExpenseInput("per_diem", "x", D("1.001"))], "items[0].amount"),
        ([staff.ExpenseInput("party", "x", D("1.00"))], "items[0].category"),
        ([], "items"),
    ]
    for item_list, field in bad:
        with pytest.raises(DomainError) as err:
            staff.submit_expense_claim(conn, "anna", "CeBIT", date(2026, 3, 2), date(2026, 3, 3), item_list)
        assert err.value.field == field


def test_sick_note_needs_a_certificate_after_three_days(conn: Connection, tmp_path: Path) -> None:
    short = staff.report_sickness(conn, "anna", date(2026, 3, 2), date(2026, 3, 4), now=NOW)
    staff.decide(conn, "sick_note", short, approve=True, decided_by="hr")
    long = staff.report_sickness(conn, "anna", date(2026, 3, 9), date(2026, 3, 12))
    with pytest.raises(DomainError) as err:
        staff.decide(conn, "sick_note", long, approve=True, decided_by="hr")
    assert err.value.field == "certificate_document_id"
    certificate = DocumentStore(tmp_path).store(conn, b"AU", "au.pdf", "application/pdf", DocumentLinks())
    staff.attach_certificate(conn, long, certificate)
    staff.decide(conn, "sick_note", long, approve=True, decided_by="hr")
