"""The ``update_*`` services behind the REST PATCHes: the same checks as on creation, one ``DomainError`` naming
the field, the state rules (a sent quote, a terminated contract, a closed opportunity stay as they are), and the
dates that follow a change (contract end, notice deadline, renewal reminder)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crm import activities as act
from crm import campaigns as cmp
from crm import contracts as ct
from crm import opportunities as opp
from crm import quotes as qt
from crm.accounts import ContactInput, create_account, create_contact
from crm.documents import DocumentLinks, DocumentStore, get_document
from crm.errors import DomainError
from crm.positions import PositionInput
from crm.schema import activity, campaign, contract, opportunity, quote

from .conftest import NOW, TODAY


def _field(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(DomainError) as refused:
        call(*args, **kwargs)  # type: ignore[operator]
    return refused.value.field


def _row(conn: Connection, table: sa.Table, row_id: int) -> sa.Row[tuple[object, ...]]:
    return conn.execute(sa.select(table).where(table.c.id == row_id)).one()


def test_quote_draft_validity_and_addressee(conn: Connection, account_id: int, catalogue: dict[str, int]) -> None:
    person = create_contact(conn, ContactInput("Muster"), account_id)
    stranger = create_contact(conn, ContactInput("Fremd"), create_account(conn, "Fremd AG"))
    quote_id = qt.create_quote(conn, account_id, [PositionInput(Decimal(1), catalogue["SETUP"])],
                               TODAY + timedelta(days=10), now=NOW)
    qt.update_quote(conn, quote_id, valid_until=TODAY + timedelta(days=40), contact_id=person, now=NOW)
    row = _row(conn, quote, quote_id)
    assert (row.valid_until, row.contact_id) == (TODAY + timedelta(days=40), person)
    assert _field(qt.update_quote, conn, quote_id, valid_until=TODAY - timedelta(days=1), now=NOW) == "valid_until"
    assert _field(qt.update_quote, conn, quote_id, contact_id=stranger, now=NOW) == "contact_id"
    assert _field(qt.update_quote, conn, quote_id, status="sent") == "status"  # not a field PATCH may change
    assert _field(qt.update_quote, conn, quote_id, number="Q-1") == "number"
    assert _field(qt.create_quote, conn, account_id, [], TODAY, contact_id=stranger, now=NOW) == "contact_id"
    qt.send_quote(conn, quote_id, now=NOW)
    assert _field(qt.update_quote, conn, quote_id, contact_id=None, now=NOW) == "status"
    assert _row(conn, quote, quote_id).contact_id == person


def test_contract_terms_move_end_notice_and_reminder(conn: Connection, account_id: int) -> None:
    contract_id = ct.create_contract(conn, account_id, ct.ContractTerms(date(2026, 1, 1), 24, 3), now=NOW)
    ct.update_contract(conn, contract_id, term_months=12, notice_months=2)
    row = _row(conn, contract, contract_id)
    assert (row.end_date, row.notice_deadline, row.reminder_date) == (
        date(2026, 12, 31), date(2026, 10, 31), date(2026, 10, 1))
    assert ct.reminders_due(conn, date(2026, 10, 1)) == [contract_id]
    ct.update_contract(conn, contract_id, auto_renewal=False, renewal_months=6)
    assert (_row(conn, contract, contract_id).auto_renewal, _row(conn, contract, contract_id).renewal_months) == (
        False, 6)
    assert _field(ct.update_contract, conn, contract_id, notice_months=12) == "notice_months"
    assert _field(ct.update_contract, conn, contract_id, term_months=2, notice_months=2) == "notice_months"
    assert _field(ct.update_contract, conn, contract_id, auto_renewal="ja") == "auto_renewal"
    assert _field(ct.update_contract, conn, contract_id, renewal_months=61) == "renewal_months"
    assert _field(ct.update_contract, conn, contract_id, end_date=date(2030, 1, 1)) == "end_date"
    assert _row(conn, contract, contract_id).term_months == 12  # nothing half-written

    ct.renew_contract(conn, contract_id)
    assert _field(ct.update_contract, conn, contract_id, term_months=24) == "term_months"
    ct.update_contract(conn, contract_id, notice_months=1)  # the renewed end stays, its deadline follows
    row = _row(conn, contract, contract_id)
    assert (row.end_date, row.notice_deadline) == (date(2027, 6, 30), date(2027, 5, 31))
    ct.give_notice(conn, contract_id, date(2027, 1, 1))
    assert _field(ct.update_contract, conn, contract_id, notice_months=0) == "status"


def test_open_opportunity_facts_and_closed_ones_stay(conn: Connection, account_id: int,
                                                      catalogue: dict[str, int]) -> None:
    opportunity_id = opp.create_opportunity(conn, opp.OpportunityInput(
        account_id, "SDSL", Decimal("1000.00"), date(2026, 6, 30), stage="qualified"), now=NOW)
    opp.update_opportunity(conn, opportunity_id, title="SDSL 20 Zentrale", expected_revenue=Decimal("1500.00"),
                           probability=40, expected_close=date(2026, 9, 30), owner="clara",
                           product_id=catalogue["ADSL50"])
    row = _row(conn, opportunity, opportunity_id)
    assert (row.title, row.expected_revenue, row.probability, row.expected_close, row.owner, row.product_id) == (
        "SDSL 20 Zentrale", Decimal("1500.00"), 40, date(2026, 9, 30), "clara", catalogue["ADSL50"])
    opp.update_opportunity(conn, opportunity_id, probability=None, owner=" ")
    assert (_row(conn, opportunity, opportunity_id).probability, _row(conn, opportunity, opportunity_id).owner) == (
        25, None)
    for change, field in [({"title": ""}, "title"), ({"expected_revenue": Decimal("1.001")}, "expected_revenue"),
                          ({"probability": 101}, "probability"), ({"expected_close": "2026-01-01"}, "expected_close"),
                          ({"product_id": 999_999}, "product_id"), ({"stage": "won"}, "stage"),
                          ({"title": 5}, "title")]:
        assert _field(opp.update_opportunity, conn, opportunity_id, **change) == field, change
    opp.set_stage(conn, opportunity_id, "won", now=NOW)
    assert _field(opp.update_opportunity, conn, opportunity_id, title="später") == "stage"
    assert _field(opp.update_opportunity, conn, 999_999, title="x") == "opportunity_id"


def test_campaign_name_kind_period_description(conn: Connection) -> None:
    fair = cmp.create_campaign(conn, "Messe", "trade_fair", date(2026, 3, 1), date(2026, 3, 5), now=NOW)
    cmp.create_campaign(conn, "Mailing", "mailing", date(2026, 4, 1), date(2026, 4, 2), now=NOW)
    cmp.update_campaign(conn, fair, name=" Messe Hannover ", ends_on=date(2026, 3, 6), description="  ")
    row = _row(conn, campaign, fair)
    assert (row.name, row.starts_on, row.ends_on, row.description) == (
        "Messe Hannover", date(2026, 3, 1), date(2026, 3, 6), None)
    cmp.update_campaign(conn, fair, name="Messe Hannover", kind="event")  # its own name is no duplicate
    for change, field in [({"name": "Mailing"}, "name"), ({"starts_on": date(2026, 3, 7)}, "ends_on"),
                          ({"kind": "party"}, "kind"), ({"ends_on": None}, "ends_on"), ({"members": []}, "members")]:
        assert _field(cmp.update_campaign, conn, fair, **change) == field, change
    assert _row(conn, campaign, fair).kind == "event"
    assert _field(cmp.update_campaign, conn, 999_999, kind="event") == "campaign_id"


def test_activity_text_and_campaign_but_not_its_history(conn: Connection, account_id: int) -> None:
    fair = cmp.create_campaign(conn, "Messe", "trade_fair", date(2026, 3, 1), date(2026, 3, 5), now=NOW)
    activity_id = act.log_activity(conn, act.ActivityInput("call", "Anruf", "clara", account_id=account_id), now=NOW)
    act.update_activity(conn, activity_id, subject="Rückruf", body="Zeile 1\n  Zeile 2", campaign_id=fair)
    row = _row(conn, activity, activity_id)
    assert (row.subject, row.body, row.campaign_id, row.author) == ("Rückruf", "Zeile 1\n  Zeile 2", fair, "clara")
    for change, field in [({"subject": " "}, "subject"), ({"campaign_id": 999_999}, "campaign_id"),
                          ({"body": 1}, "body"), ({"author": "eve"}, "author"), ({"occurred_at": NOW}, "occurred_at")]:
        assert _field(act.update_activity, conn, activity_id, **change) == field, change
    act.update_activity(conn, activity_id, campaign_id=None)
    assert _row(conn, activity, activity_id).campaign_id is None
    assert _field(act.update_activity, conn, 999_999, subject="x") == "activity_id"


def test_a_mailing_list_is_known_by_its_name_uploader_and_campaign(conn: Connection, tmp_path: object) -> None:
    fair = cmp.create_campaign(conn, "Messe", "trade_fair", date(2026, 3, 1), date(2026, 3, 5), now=NOW)
    store = DocumentStore(str(tmp_path))

    def stored(name: str, uploader: str) -> sa.Row[tuple[object, ...]]:
        return get_document(conn, store.store(conn, b"a;b\n", name, "text/csv", DocumentLinks(), uploader))

    assert cmp.mailing_list_campaign(conn, stored(cmp.mailing_list_file_name(fair), cmp.MAILING_LIST_UPLOADER)) == fair
    assert cmp.mailing_list_campaign(conn, stored(cmp.mailing_list_file_name(fair), "clara")) is None
    assert cmp.mailing_list_campaign(conn, stored(cmp.mailing_list_file_name(999_999),
                                                  cmp.MAILING_LIST_UPLOADER)) is None
    assert cmp.mailing_list_campaign(conn, stored("belege.csv", cmp.MAILING_LIST_UPLOADER)) is None
