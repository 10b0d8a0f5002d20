"""The global search (crm.search): customers by name, number, contact, phone, e-mail, city; records by number;
addresses corrected and removed through crm.accounts (the customer edit page's path)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crm import accounts
from crm.errors import DomainError
from crm.search import phone_prefix, search
from tests.crm.conftest import NOW


@pytest.fixture
def customer(conn: Connection) -> int:
    account_id = accounts.create_account(conn, "Zeppelin Netz AG", legal_form="AG", now=NOW)
    accounts.add_address(conn, account_id, "billing", "Seestraße 1", "88045", "Friedrichshafen")
    accounts.create_contact(conn, accounts.ContactInput(last_name="Quirinius", first_name="Xaver",
                                                        email="x.quirinius@zeppelin.example", phone="07541 123456"),
                            account_id, now=NOW)
    return account_id


def _found(conn: Connection, text: str) -> dict[int, list[str]]:
    return {c["id"]: c["matched"] for c in search(conn, text).customers}


@pytest.mark.parametrize(("text", "reason"), [
    ("zeppelin", "name"), ("ZEPP", "name"), ("quirin", "contact"), ("Xaver Quirinius", "contact"),
    ("x.quirinius@zep", "email"), ("07541 123456", "phone"), ("+49 7541 1234", "phone"),
    ("friedrichsh", "city"),
])
def test_a_customer_is_found_by_each_of_its_facts(conn: Connection, customer: int, text: str, reason: str) -> None:
    assert reason in _found(conn, text).get(customer, [])


def test_by_number_and_nothing_for_strangers(conn: Connection, customer: int) -> None:
    number = str(accounts.get_account(conn, customer).number)
    assert "number" in _found(conn, number.lower())[customer]
    assert _found(conn, "zzz-nobody") == {}
    assert search(conn, "   ").total == 0
    assert search(conn, "%").total == 0 and search(conn, "_").total == 0  # wildcards are text, not patterns


def test_phone_prefix_reads_german_numbers() -> None:
    assert phone_prefix("030 1234 567") == "+49301234567"
    assert phone_prefix("0049 30 12") == "+493012"
    assert phone_prefix("Berlin") is None and phone_prefix("12") is None


def test_address_update_and_remove_follow_the_add_rules(conn: Connection, customer: int) -> None:
    [address_id] = [a.id for a in conn.execute(sa.text("SELECT id FROM crm_address WHERE account_id = :a"),
                                               {"a": customer})]
    accounts.update_address(conn, address_id, "installation", "Hafenweg 2", "88045", "Friedrichshafen", "de")
    row = accounts.get_address(conn, address_id)
    assert (row.kind, row.street, row.country) == ("installation", "Hafenweg 2", "DE")
    with pytest.raises(DomainError) as refused:
        accounts.update_address(conn, address_id, "installation", "", "88045", "Friedrichshafen")
    assert refused.value.field == "street"
    accounts.remove_address(conn, address_id)
    with pytest.raises(DomainError):
        accounts.get_address(conn, address_id)
