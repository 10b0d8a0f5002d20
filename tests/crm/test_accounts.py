"""Accounts, addresses and contacts: numbering, status transitions, validation."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crm.accounts import (
    ContactInput,
    add_address,
    contact_salutation,
    create_account,
    create_contact,
    find_accounts,
    get_account,
    get_contact,
    segments_of,
    set_account_status,
    set_segments,
    update_account,
    update_contact,
)
from crm.errors import DomainError
from crm.schema import address, contact

from .conftest import NOW


def test_account_numbers_are_generated_and_unique(conn: Connection) -> None:
    first = create_account(conn, "Alpha GmbH", now=NOW)
    second = create_account(conn, "Beta AG", segments=["VoIP", "xDSL", "VoIP"], now=NOW)
    assert get_account(conn, first).number == "K-10001"
    assert get_account(conn, second).number == "K-10002"
    assert get_account(conn, second).status == "prospect"
    assert segments_of(conn, second) == ["VoIP", "xDSL"]
    set_segments(conn, second, ["housing"])
    assert segments_of(conn, second) == ["housing"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": " "}, "name"),
        ({"name": "X", "sla_class": "platinum"}, "sla_class"),
        ({"name": "x" * 301}, "name"),
    ],
)
def test_account_validation(conn: Connection, kwargs: dict[str, str], field: str) -> None:
    with pytest.raises(DomainError) as err:
        create_account(conn, **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field
    assert field in err.value.message


def test_account_status_transitions(conn: Connection, account_id: int) -> None:
    with pytest.raises(DomainError, match="from 'prospect' to 'former'"):
        set_account_status(conn, account_id, "former")
    set_account_status(conn, account_id, "customer")
    set_account_status(conn, account_id, "former")
    set_account_status(conn, account_id, "customer")  # won back
    with pytest.raises(DomainError, match="unknown"):
        set_account_status(conn, account_id, "vip")
    with pytest.raises(DomainError) as err:
        set_account_status(conn, 999999, "customer")
    assert err.value.field == "id"


def test_several_addresses_per_account(conn: Connection, account_id: int) -> None:
    add_address(conn, account_id, "billing", "Hauptstr. 1", "10115", "Berlin")
    add_address(conn, account_id, "installation", "Werk 2", "80331", "München", "de")
    add_address(conn, account_id, "installation", "Lager 3", "1010", "Wien", "AT")
    rows = conn.execute(
        sa.select(address.c.kind, address.c.country).where(address.c.account_id == account_id)
    )
    assert sorted(rows) == [("billing", "DE"), ("installation", "AT"), ("installation", "DE")]
    with pytest.raises(DomainError) as err:
        add_address(conn, account_id, "holiday", "a", "1", "b")
    assert err.value.field == "kind"
    with pytest.raises(DomainError) as err:
        add_address(conn, account_id, "billing", "a", "1", "b", "DEU")
    assert err.value.field == "country"


def test_contact_phone_is_stored_as_e164(conn: Connection, account_id: int) -> None:
    data = ContactInput(
        "Müller", "Herr", "Hans", "Prof. Dr.", role="CTO", email="h.mueller@example.de", phone="030 1234567"
    )
    contact_id = create_contact(conn, data, account_id, now=NOW)
    row = conn.execute(sa.select(contact).where(contact.c.id == contact_id)).one()
    assert row.phone == "+49301234567"
    assert row.marketing_opt_out is False
    assert contact_salutation(conn, contact_id) == "Sehr geehrter Herr Prof. Dr. Müller"
    english = create_contact(
        conn, ContactInput("Smith", "Frau", phone="+44 20 7946 0958", preferred_language="en")
    )
    assert (
        conn.execute(sa.select(contact.c.phone).where(contact.c.id == english)).scalar_one()
        == "+442079460958"
    )
    assert contact_salutation(conn, english) == "Dear Ms Smith"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (ContactInput("X", email="not-an-address"), "email"),
        (ContactInput("X", email="a@b"), "email"),
        (ContactInput("X", phone="12"), "phone"),
        (ContactInput("X", phone="hello"), "phone"),
        (ContactInput("X", salutation="Mr"), "salutation"),
        (ContactInput("X", preferred_language="fr"), "preferred_language"),
        (ContactInput(""), "last_name"),
    ],
)
def test_contact_validation(conn: Connection, data: ContactInput, field: str) -> None:
    with pytest.raises(DomainError) as err:
        create_contact(conn, data)
    assert err.value.field == field
    assert field in err.value.message


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "a@b"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"salutation": "Mr"}, "salutation"),
        ({"preferred_language": "fr"}, "preferred_language"),
        ({"last_name": None}, "last_name"),
        ({"marketing_opt_out": "yes"}, "marketing_opt_out"),
        ({"role": 7}, "role"),
        ({"account_id": 1}, "account_id"),
        ({"created_at": NOW}, "created_at"),
    ],
)
def test_update_contact_checks_like_create(
    conn: Connection, account_id: int, changes: dict[str, object], field: str
) -> None:
    contact_id = create_contact(conn, ContactInput("Klein", "Frau", email="eva@example.com"), account_id)
    with pytest.raises(DomainError) as err:
        update_contact(conn, contact_id, **changes)
    assert err.value.field == field
    assert get_contact(conn, contact_id).email == "eva@example.com"


def test_update_contact_normalises_and_clears(conn: Connection, account_id: int) -> None:
    contact_id = create_contact(conn, ContactInput("Klein", "Frau", academic_title="Dr."), account_id)
    update_contact(conn, contact_id, phone="0171 2345678", academic_title=None, marketing_opt_out=True)
    row = get_contact(conn, contact_id)
    assert (row.phone, row.academic_title, row.marketing_opt_out, row.last_name) == (
        "+491712345678", None, True, "Klein")
    assert contact_salutation(conn, contact_id) == "Sehr geehrte Frau Klein"
    with pytest.raises(DomainError) as err:
        update_contact(conn, 424242, role="IT")
    assert err.value.field == "contact_id"


def test_contact_of_unknown_account(conn: Connection) -> None:
    with pytest.raises(DomainError) as err:
        create_contact(conn, ContactInput("X"), account_id=424242)
    assert err.value.field == "account_id"


def test_prefix_search_is_case_insensitive_and_ordered(conn: Connection) -> None:
    for name in [
        "Müller Bau GmbH",
        "mueller IT",
        "MÜLLERS Backstube",
        "Muster AG",
        "Straße & Co",
        "strasse 2",
    ]:
        create_account(conn, name, now=NOW)
    assert [r.name for r in find_accounts(conn, "mül")] == ["Müller Bau GmbH", "MÜLLERS Backstube"]
    assert [r.name for r in find_accounts(conn, "MU")] == ["mueller IT", "Muster AG"]
    assert [r.name for r in find_accounts(conn, "STRASSE")] == [
        "Straße & Co",
        "strasse 2",
    ]  # ß casefolds to ss
    assert [r.name for r in find_accounts(conn, "müller  bau")] == ["Müller Bau GmbH"]
    assert find_accounts(conn, "x") == []
    assert len(find_accounts(conn, "m", limit=2)) == 2
    for prefix, limit, field in [(" ", 10, "prefix"), ("m", 0, "limit")]:
        with pytest.raises(DomainError) as err:
            find_accounts(conn, prefix, limit)
        assert err.value.field == field


def test_update_account_keeps_the_search_key(conn: Connection, account_id: int) -> None:
    update_account(conn, account_id, name="Neuer Name KG", legal_form="KG", sla_class="silver")
    row = get_account(conn, account_id)
    assert (row.name, row.name_key, row.legal_form, row.sla_class, row.kind) == (
        "Neuer Name KG",
        "neuer name kg",
        "KG",
        "silver",
        "business",
    )
    assert [r.id for r in find_accounts(conn, "neuer")] == [account_id]
    for changes, field in [
        ({"name": ""}, "name"),
        ({"kind": "alien"}, "kind"),
        ({"status": "former"}, "status"),
    ]:
        with pytest.raises(DomainError) as err:
            update_account(conn, account_id, **changes)
        assert err.value.field == field
    private = create_account(conn, "Erika Mustermann", kind="private")
    assert get_account(conn, private).kind == "private"
