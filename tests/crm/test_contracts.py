"""Contracts: term ends by civil-law reckoning, notice deadlines, renewal reminders, renewal and notice."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.engine import Connection

from crm import booked_services as bs
from crm import contracts as ct
from crm.accounts import create_account
from crm.errors import DomainError

from .conftest import NOW


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (date(2026, 1, 1), 24, date(2027, 12, 31)),
        (date(2026, 3, 15), 12, date(2027, 3, 14)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2026, 2, 28), 12, date(2027, 2, 27)),
        (date(2026, 8, 31), 6, date(2027, 2, 28)),
    ],
)
def test_term_end(start: date, months: int, end: date) -> None:
    assert ct.term_end(start, months) == end


@pytest.mark.parametrize(
    ("end", "notice", "deadline"),
    [
        (date(2027, 12, 31), 3, date(2027, 9, 30)),
        (date(2027, 3, 14), 1, date(2027, 2, 14)),
        (date(2027, 2, 28), 3, date(2026, 11, 30)),
        (date(2027, 6, 30), 0, date(2027, 6, 30)),
    ],
)
def test_notice_deadline(end: date, notice: int, deadline: date) -> None:
    assert ct.notice_deadline(end, notice) == deadline


def test_reminder_and_renewal(conn: Connection, account_id: int, catalogue: dict[str, int]) -> None:
    service = bs.book_service(conn, account_id, catalogue["ADSL50"], now=NOW)
    contract_id = ct.create_contract(
        conn, account_id, ct.ContractTerms(date(2026, 1, 1), 24, 3, booked_service_ids=(service,)), now=NOW
    )
    row = ct.get_contract(conn, contract_id)
    assert (row.number, row.end_date, row.notice_deadline, row.reminder_date) == (
        "V-2026-00001",
        date(2027, 12, 31),
        date(2027, 9, 30),
        date(2027, 8, 31),
    )
    assert bs.get_service(conn, service).contract_end == date(2027, 12, 31)
    assert ct.reminders_due(conn, date(2027, 8, 30)) == []
    assert ct.reminders_due(conn, date(2027, 8, 31)) == [contract_id]
    ct.mark_reminded(conn, contract_id, date(2027, 9, 1))
    assert ct.reminders_due(conn, date(2027, 9, 2)) == []
    assert ct.roll_over(conn, date(2027, 12, 31)) == {"renewed": [], "ended": []}  # the last day still counts
    assert ct.roll_over(conn, date(2028, 1, 1)) == {"renewed": [contract_id], "ended": []}
    row = ct.get_contract(conn, contract_id)
    assert (row.end_date, row.notice_deadline, row.reminder_date) == (
        date(2028, 12, 31),
        date(2028, 9, 30),
        date(2028, 8, 31),
    )
    assert bs.get_service(conn, service).contract_end == date(2028, 12, 31)
    assert ct.reminders_due(conn, date(2028, 9, 1)) == [contract_id]  # reminded again for the new term


def test_notice_in_time_and_too_late(conn: Connection, account_id: int) -> None:
    terms = ct.ContractTerms(date(2026, 1, 1), 12, 3)
    in_time = ct.create_contract(conn, account_id, terms, now=NOW)
    late = ct.create_contract(conn, account_id, terms, now=NOW)
    fixed = ct.create_contract(
        conn, account_id, ct.ContractTerms(date(2026, 1, 1), 12, 3, auto_renewal=False)
    )
    assert ct.give_notice(conn, in_time, date(2026, 9, 30)) == date(2026, 12, 31)
    assert ct.give_notice(conn, late, date(2026, 10, 1)) == date(2027, 12, 31)  # renewed once more
    assert ct.give_notice(conn, fixed, date(2026, 12, 1)) == date(2026, 12, 31)
    with pytest.raises(DomainError) as err:
        ct.give_notice(conn, in_time, date(2026, 9, 1))
    assert err.value.field == "status"
    assert ct.roll_over(conn, date(2027, 1, 1)) == {"renewed": [], "ended": [in_time, fixed]}
    assert ct.get_contract(conn, late).status == "notice_given"


def test_several_missed_renewals_catch_up(conn: Connection, account_id: int) -> None:
    contract_id = ct.create_contract(
        conn, account_id, ct.ContractTerms(date(2020, 1, 1), 12, 1, renewal_months=6)
    )
    assert ct.roll_over(conn, date(2026, 3, 1))["renewed"] == [contract_id]
    assert ct.get_contract(conn, contract_id).end_date == date(2026, 6, 30)


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        (ct.ContractTerms(date(2026, 1, 1), 0, 0), "term_months"),
        (ct.ContractTerms(date(2026, 1, 1), 12, 12), "notice_months"),
        (ct.ContractTerms(date(2026, 1, 1), 12, -1), "notice_months"),
        (ct.ContractTerms(date(2026, 1, 1), 12, 1, renewal_months=0), "renewal_months"),
    ],
)
def test_contract_validation(conn: Connection, account_id: int, terms: ct.ContractTerms, field: str) -> None:
    with pytest.raises(DomainError) as err:
        ct.create_contract(conn, account_id, terms)
    assert err.value.field == field


def test_services_of_another_account_are_refused(
    conn: Connection, account_id: int, catalogue: dict[str, int]
) -> None:
    other = create_account(conn, "Fremd AG")
    service = bs.book_service(conn, other, catalogue["ADSL50"])
    with pytest.raises(DomainError) as err:
        ct.create_contract(
            conn, account_id, ct.ContractTerms(date(2026, 1, 1), 12, 3, booked_service_ids=(service,))
        )
    assert err.value.field == "booked_service_ids"
