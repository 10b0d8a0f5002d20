"""The customer 360° view shows every block of an account; the list search matches casefolded names."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path

from sqlalchemy.engine import Connection

from crm import booked_services, contracts, opportunities
from crm.accounts import create_account
from crm.activities import ActivityInput, log_activity
from crm.documents import DocumentLinks, DocumentStore
from crm.queries import ACTIVITIES_SHOWN, account_360, search_accounts

from .conftest import NOW


def test_360_view_has_every_block(
    conn: Connection, account_id: int, catalogue: dict[str, int], tmp_path: Path
) -> None:
    service = booked_services.book_service(conn, account_id, catalogue["ADSL50"], now=NOW)
    contracts.create_contract(
        conn, account_id, contracts.ContractTerms(date(2026, 1, 1), 24, 3, booked_service_ids=(service,))
    )
    opportunities.create_opportunity(
        conn,
        opportunities.OpportunityInput(account_id, "Mehr Bandbreite", D("1200.00"), date(2026, 6, 30)),
        now=NOW,
    )
    for n in range(ACTIVITIES_SHOWN + 5):
        log_activity(
            conn,
            ActivityInput(
                "note", f"Notiz {n}", "anna", account_id=account_id, occurred_at=NOW + timedelta(minutes=n)
            ),
        )
    DocumentStore(tmp_path).store(conn, b"%PDF", "vertrag.pdf", "application/pdf", DocumentLinks(account_id))
    view = account_360(conn, account_id)
    assert [s["product_code"] for s in view.services] == ["ADSL50"]
    assert [c["end_date"] for c in view.contracts] == [date(2027, 12, 31)]
    assert [o["title"] for o in view.opportunities] == ["Mehr Bandbreite"]
    assert (
        len(view.activities) == ACTIVITIES_SHOWN
        and view.activities[0]["subject"] == f"Notiz {ACTIVITIES_SHOWN + 4}"
    )
    assert [d["file_name"] for d in view.documents] == ["vertrag.pdf"]


def test_list_search_casefolds_and_takes_wildcards_literally(conn: Connection) -> None:
    for name in ["Groß & Partner", "GROSSHANDEL Nord", "100% Netz AG", "1000 Netze"]:
        create_account(conn, name, now=NOW)
    assert sorted(a["name"] for a in search_accounts(conn, "groß")[0]) == [
        "GROSSHANDEL Nord",
        "Groß & Partner",
    ]
    assert [a["name"] for a in search_accounts(conn, "100%")[0]] == ["100% Netz AG"]
    assert search_accounts(conn, "n_tz")[1] == 0
