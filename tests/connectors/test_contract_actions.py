"""``crm.contract_reminders`` and ``crm.contract_decision`` on migrated SQLite and PostgreSQL databases: due
contracts are handed out once, decisions change the contract once even when a job is retried."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from connectors import contract_actions
from connectors.registry import BusinessError, ConnectorContext, InvalidParameters, Registry
from crm import contracts, quotes
from crm.accounts import ContactInput, create_account, create_contact
from crm.invoices import correspondence_contact
from crm.positions import PositionInput
from crm.schema import activity, contract
from engine.database import create_db_engine

TODAY = date.today()


@dataclass
class World:
    engine: Engine
    registry: Registry
    account_id: int
    contact_id: int

    def run(self, operator: str, params: dict[str, Any], key: str = "job-1") -> dict[str, Any]:
        result: dict[str, Any] = self.registry.run(operator, params, ConnectorContext(key, "instance-1", "apply"))
        return result

    def contract_due_today(self, term_months: int = 12) -> int:
        """A contract (3 months' notice) whose reminder date has come: it ends in about 100 days."""
        start = contracts.add_months(TODAY + timedelta(days=100), -term_months)
        with self.engine.begin() as conn:
            return contracts.create_contract(conn, self.account_id, contracts.ContractTerms(
                start_date=start, term_months=term_months, notice_months=3, renewal_months=6))

    def contract(self, contract_id: int) -> sa.Row[tuple[object, ...]]:
        with self.engine.connect() as conn:
            return contracts.get_contract(conn, contract_id)


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    engine = create_db_engine(db_url)
    registry = Registry()
    contract_actions.register(registry, engine)
    with engine.begin() as conn:
        account_id = create_account(conn, "Vertragskunde GmbH", owner="anna")
        create_contact(conn, ContactInput(last_name="Ohne", salutation="Herr"), account_id)  # no e-mail address
        contact_id = create_contact(conn, ContactInput(last_name="Lang", salutation="Frau",
                                                       email="lang@vertragskunde.example"), account_id)
    yield World(engine, registry, account_id, contact_id)
    engine.dispose()


def test_due_contracts_are_handed_out_once_with_account_and_contact(world: World) -> None:
    due = world.contract_due_today()
    later = world.contract_due_today(term_months=24)
    with world.engine.begin() as conn:  # reminder date next year: not due
        conn.execute(contract.update().where(contract.c.id == later)
                     .values(reminder_date=TODAY + timedelta(days=300)))
    found = world.run("crm.contract_reminders", {})
    assert found["count"] == 1 and found["today"] == TODAY.isoformat()
    (item,) = found["contracts"]
    assert (item["contract_id"], item["account_name"], item["owner"], item["contact_id"]) == (
        due, "Vertragskunde GmbH", "anna", world.contact_id)
    assert world.contract(due).reminded_on == TODAY
    assert world.run("crm.contract_reminders", {}, "job-2")["contracts"] == []


def test_the_customer_letter_goes_to_whoever_ordered_by_quote(world: World) -> None:
    """The contact named on the latest quote (the person who ordered) is preferred to the first one with mail."""
    contract_id = world.contract_due_today()
    with world.engine.begin() as conn:
        buyer = create_contact(conn, ContactInput(last_name="Kauf", salutation="Herr", email="kauf@vk.example"),
                               world.account_id)
        quotes.create_quote(conn, world.account_id, [PositionInput(Decimal(1), description="Beratung",
                                                                   unit_price=Decimal("100.00"),
                                                                   vat_rate=Decimal(19))],
                            TODAY + timedelta(days=30), contact_id=buyer)
        assert correspondence_contact(conn, world.account_id) == buyer
    (item,) = world.run("crm.contract_reminders", {})["contracts"]
    assert (item["contract_id"], item["contact_id"]) == (contract_id, buyer)


def test_renewal_extends_once_even_when_the_job_is_retried(world: World) -> None:
    contract_id = world.contract_due_today()
    before = world.contract(contract_id)
    params = {"contract_id": contract_id, "decision": "renew", "expected_end": before.end_date.isoformat()}
    first = world.run("crm.contract_decision", params)
    assert world.run("crm.contract_decision", params) == first  # the retry finds the renewal done
    after = world.contract(contract_id)
    assert after.end_date == contracts.term_end(before.end_date + timedelta(days=1), 6)  # the renewal term
    assert (first["decision"], first["status"], first["end_date"]) == ("renew", "active", after.end_date.isoformat())

    longer = world.run("crm.contract_decision", {**params, "expected_end": after.end_date.isoformat(), "months": 24})
    assert longer["end_date"] == contracts.term_end(after.end_date + timedelta(days=1), 24).isoformat()


def test_letting_expire_gives_notice_for_the_current_end(world: World) -> None:
    contract_id = world.contract_due_today()
    end = world.contract(contract_id).end_date
    params = {"contract_id": contract_id, "decision": "let_expire", "expected_end": end.isoformat()}
    result = world.run("crm.contract_decision", params)
    assert world.run("crm.contract_decision", params) == result
    row = world.contract(contract_id)
    assert (row.status, row.end_date, row.notice_received_on) == ("notice_given", end, TODAY)
    assert result["contact_id"] == world.contact_id and result["status"] == "notice_given"


def test_renegotiation_leaves_one_follow_up_note_for_the_owner(world: World) -> None:
    contract_id = world.contract_due_today()
    row = world.contract(contract_id)
    params = {"contract_id": contract_id, "decision": "renegotiate", "expected_end": row.end_date.isoformat(),
              "note": "Kunde wünscht höhere Bandbreite", "author": "anna"}
    result = world.run("crm.contract_decision", params)
    assert world.run("crm.contract_decision", params)["activity_id"] == result["activity_id"]
    with world.engine.connect() as conn:
        notes = conn.execute(sa.select(activity).where(activity.c.account_id == world.account_id)).all()
    assert [(n.kind, n.author, n.subject) for n in notes] == [
        ("note", "anna", f"Vertrag {row.number} neu verhandeln (Ende {row.end_date:%d.%m.%Y})")]
    assert "Kunde wünscht höhere Bandbreite" in notes[0].body
    assert world.contract(contract_id).status == "active"


def test_bad_decisions_name_the_field(world: World) -> None:
    contract_id = world.contract_due_today()
    with pytest.raises(InvalidParameters, match="decision"):
        world.run("crm.contract_decision", {"contract_id": contract_id, "decision": "maybe",
                                            "expected_end": TODAY.isoformat()})
    with pytest.raises(BusinessError) as err:
        world.run("crm.contract_decision", {"contract_id": 999, "decision": "renew",
                                            "expected_end": TODAY.isoformat()})
    assert err.value.code == "CrmRejected" and err.value.data == {"field": "contract_id"}
