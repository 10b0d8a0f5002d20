"""CSV import of accounts, contacts and products (a savepoint per row, a per-row report) and vCards of contacts."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
import vobject
from sqlalchemy.engine import Connection

from crm.accounts import ContactInput, add_address, create_account, create_contact, get_account, segments_of
from crm.errors import DomainError
from crm.exchange import (
    CsvError,
    account_rows,
    contact_ids_of_account,
    contacts_vcard,
    import_csv,
    list_contacts,
    parse_decimal,
    product_rows,
)
from crm.schema import account, address, contact, product

from .conftest import NOW


def _count(conn: Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_contact_rows_fail_one_by_one_and_the_good_ones_land(conn: Connection, account_id: int) -> None:
    number = get_account(conn, account_id).number
    data = (
        "accountNumber;salutation;academicTitle;firstName;lastName;email;phone;preferredLanguage\r\n"
        f"{number};Herr;Dr.;Hans;Müller;h.mueller@example.com;030 1234567;de\r\n"
        f"{number};Frau;;Eva;Schmidt;;12;de\r\n"  # phone that is no phone number
        f"{number};Frau;;Ida;;ida@example.com;;de\r\n"  # no last name
        "K-99999;Herr;;Max;Meier;;;en\r\n"  # unknown account
        f"{number};none;;Alex;Weber;alex@example.com;+49 89 123456;en\r\n"
    )
    report = import_csv(conn, "contacts", data)
    assert [r.status for r in report.rows] == ["created", "error", "error", "error", "created"]
    assert [r.row for r in report.rows] == [2, 3, 4, 5, 6]  # spreadsheet row numbers, header is row 1
    assert [r.errors[0]["field"] for r in report.rows if r.status == "error"] == [
        "phone", "lastName", "accountNumber"]
    assert "K-99999" in report.rows[3].errors[0]["message"]
    assert report.as_dict()["created"] == 2 and report.as_dict()["failed"] == 3
    stored = conn.execute(sa.select(contact.c.last_name, contact.c.phone).order_by(contact.c.id)).all()
    assert [tuple(r) for r in stored] == [("Müller", "+49301234567"), ("Weber", "+4989123456")]
    # importing the same file again adds nobody: the same person of the same account is updated
    again = import_csv(conn, "contacts", data)
    assert [r.status for r in again.rows] == ["updated", "error", "error", "error", "updated"]
    assert _count(conn, contact) == 2


def test_a_failing_account_row_leaves_nothing_behind(conn: Connection) -> None:
    data = (
        "name;legalForm;segments;status;billingStreet;billingPostalCode;billingCity\n"
        "Alpha GmbH;GmbH;xDSL,VoIP;customer;Hauptstraße 5;80331;München\n"
        "Beta AG;AG;housing;customer;Ringstraße 1;10115;\n"  # address without a city: after the account insert
        "Gamma KG;KG;;former;;;\n"
    )
    report = import_csv(conn, "accounts", data)
    assert [r.status for r in report.rows] == ["created", "error", "created"]
    assert report.rows[1].errors == [{"field": "billingCity", "message": "city is required"}]
    names = conn.execute(sa.select(account.c.name, account.c.number, account.c.status).order_by(account.c.id)).all()
    # Beta's account row, segment and counter step were rolled back with its savepoint: no gap in the numbers
    assert [tuple(r) for r in names] == [("Alpha GmbH", "K-10001", "customer"), ("Gamma KG", "K-10002", "former")]
    alpha = report.rows[0].id
    assert alpha is not None and segments_of(conn, alpha) == ["VoIP", "xDSL"]
    assert _count(conn, address) == 1


def test_accounts_are_updated_by_number_and_keep_imported_numbers(conn: Connection, account_id: int) -> None:
    number = get_account(conn, account_id).number
    data = (
        "number;name;kind;vatId;segments;slaClass;installationStreet;installationPostalCode;installationCity\n"
        f"{number};Muster GmbH & Co. KG;;DE123456789;VoIP;;\"Werk 1\nWerk 2\";\"10115\n20095\";\"Berlin\nHamburg\"\n"
        "K-10050;Import AG;business;;;silver;;;\n"
        "K-10050;Import AG;business;;housing;gold;;;\n"
    )
    report = import_csv(conn, "accounts", data, default_owner="importer")
    assert [(r.status, r.key) for r in report.rows] == [("updated", number), ("created", "K-10050"),
                                                         ("updated", "K-10050")]
    updated = get_account(conn, account_id)
    assert (updated.name, updated.vat_id, updated.sla_class) == ("Muster GmbH & Co. KG", "DE123456789", "gold")
    assert segments_of(conn, account_id) == ["VoIP"]
    cities = conn.execute(sa.select(address.c.city).where(address.c.account_id == account_id)
                          .order_by(address.c.id)).scalars().all()
    assert cities == ["Berlin", "Hamburg"]
    imported = get_account(conn, report.rows[1].id or 0)
    assert (imported.sla_class, imported.owner) == ("gold", "importer")
    # the counter moved past the imported number: the next account never collides with it
    assert get_account(conn, create_account(conn, "Neu GmbH", now=NOW)).number == "K-10051"
    # importing the addresses again adds none twice
    import_csv(conn, "accounts", data)
    assert _count(conn, address) == 2


def test_products_decimal_comma_and_update_by_code(conn: Connection, catalogue: dict[str, int]) -> None:
    data = (
        "code,name,category,kind,listPrice,vatRate,active,provisioningSteps\n"
        'SDSL,SDSL 20,access,recurring_monthly,"1.234,50","19,00",true,"ip,domain"\n'
        'ADSL50,ADSL 50 neu,access,recurring_monthly,"44,90",,ja,\n'
        "BAD,Kaputt,access,recurring_monthly,zwölf,,,\n"
        "BAD2,Kaputt,access,monthly,1,,,\n"
    )
    report = import_csv(conn, "products", data)
    assert report.delimiter == ","
    assert [r.status for r in report.rows] == ["created", "updated", "error", "error"]
    assert report.rows[1].id == catalogue["ADSL50"]
    assert report.rows[2].errors[0]["field"] == "listPrice" and "zwölf" in report.rows[2].errors[0]["message"]
    assert report.rows[3].errors[0]["field"] == "kind"
    rows = {r["code"]: r for r in product_rows(conn)}
    assert rows["SDSL"]["list_price"] == Decimal("1234.50") and rows["SDSL"]["provisioning_steps"] == ["domain", "ip"]
    assert rows["ADSL50"]["list_price"] == Decimal("44.90") and rows["ADSL50"]["name"] == "ADSL 50 neu"
    assert rows["ADSL50"]["provisioning_steps"] == []  # the blank cell of a present column clears the steps
    assert rows["ADSL50"]["vat_rate"] == Decimal("19.00")  # blank: unchanged
    assert "BAD" not in rows and "BAD2" not in rows


@pytest.mark.parametrize(("text", "value"), [("39.90", "39.90"), ("39,90", "39.90"), ("1.234,56", "1234.56"),
                                             ("1,234.56", "1234.56"), (" 19 % ", "19"), ("149,00 €", "149.00")])
def test_prices_read_with_or_without_decimal_comma(text: str, value: str) -> None:
    assert parse_decimal(text) == Decimal(value)


def test_dry_run_reports_but_writes_nothing(conn: Connection, account_id: int) -> None:
    number = get_account(conn, account_id).number
    before = get_account(conn, account_id)
    data = f"\ufeffnumber;name\n{number};Umbenannt GmbH\n;Neu GmbH\nK-10007;\n"
    report = import_csv(conn, "accounts", data, dry_run=True)
    assert report.dry_run and [r.status for r in report.rows] == ["updated", "created", "error"]
    assert report.rows[1].id is None and report.rows[2].errors[0]["field"] == "name"
    assert get_account(conn, account_id) == before and _count(conn, account) == 1
    assert get_account(conn, create_account(conn, "Danach GmbH", now=NOW)).number == "K-10002"


@pytest.mark.parametrize(("kind", "data", "field"), [
    ("contacts", "accountNumber;firstName\nK-10001;Hans\n", "lastName"),
    ("products", "name;listPrice\nX;1\n", "code"),
    ("accounts", "vatId;owner\nDE1;x\n", "name"),
    ("accounts", b"name\nM\xfcller GmbH\n", "file"),  # Latin-1, not UTF-8
    ("accounts", b"\x89PNG\r\n\x1a\n\x00\x00", "file"),
    ("accounts", "   \n", "file"),
    ("accounts", 'name;kind\n"Offen;business\n', "file"),  # an unclosed quote
    ("accounts", "name;Name\nA;B\n", "name"),
])
def test_unreadable_files_fail_as_a_whole_naming_the_column(conn: Connection, kind: str, data: str | bytes,
                                                            field: str) -> None:
    with pytest.raises(CsvError) as caught:
        import_csv(conn, kind, data)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert _count(conn, account) == 0 and _count(conn, contact) == 0 and _count(conn, product) == 0


def test_unknown_columns_are_reported_and_rows_may_be_longer_only_by_blanks(conn: Connection) -> None:
    report = import_csv(conn, "accounts", "id;name;nameKey;foo\n7;Alpha;alpha;x;;\n8;Beta;beta;y;z\n")
    assert report.ignored_columns == ["id", "nameKey", "foo"]
    assert [r.status for r in report.rows] == ["created", "error"]
    assert report.rows[1].errors[0]["field"] == "(row)"


def test_contacts_list_and_exported_rows(conn: Connection, account_id: int) -> None:
    create_contact(conn, ContactInput("Müller", "Herr", "Hans", "Prof. Dr."), account_id, now=NOW)
    create_contact(conn, ContactInput("Adler", email="adler@example.com"), None, now=NOW)
    rows, total = list_contacts(conn)
    assert total == 2 and [r["last_name"] for r in rows] == ["Adler", "Müller"]
    assert rows[1]["account_number"] == "K-10001" and rows[1]["account_name"] == "Muster GmbH"
    assert rows[1]["letter_salutation"] == "Sehr geehrter Herr Prof. Dr. Müller"
    assert [r["last_name"] for r in list_contacts(conn, "MÜLLER")[0]] == ["Müller"]
    assert [r["last_name"] for r in list_contacts(conn, "muster")[0]] == ["Müller"]
    assert [r["last_name"] for r in list_contacts(conn, "100%_")[0]] == []
    assert list_contacts(conn, account_id=account_id)[1] == 1
    exported = account_rows(conn)
    assert exported[0]["number"] == "K-10001" and exported[0]["segments"] == []


def test_vcards_parse_back_with_title_names_company_and_billing_address(conn: Connection, account_id: int) -> None:
    add_address(conn, account_id, "installation", "Werkstraße 9", "10115", "Berlin")
    add_address(conn, account_id, "billing", "Hauptstraße 5", "80331", "München")
    hans = create_contact(conn, ContactInput("Müller", "Herr", "Hans", "Prof. Dr.", role="Geschäftsführer",
                                             email="h.mueller@example.com", phone="030 1234567"), account_id, now=NOW)
    eva = create_contact(conn, ContactInput("Schmidt", "Frau", "Eva", preferred_language="en"), account_id, now=NOW)
    cards = list(vobject.readComponents(contacts_vcard(conn, [hans, eva])))
    assert len(cards) == 2
    first = cards[0]
    assert first.version.value == "3.0"
    assert (first.n.value.prefix, first.n.value.given, first.n.value.family) == ("Prof. Dr.", "Hans", "Müller")
    assert first.fn.value == "Prof. Dr. Hans Müller"
    assert first.org.value == ["Muster GmbH"] and first.title.value == "Geschäftsführer"
    assert first.email.value == "h.mueller@example.com" and first.tel.value == "+49301234567"
    assert (first.adr.value.street, first.adr.value.code, first.adr.value.city) == ("Hauptstraße 5", "80331",
                                                                                     "München")
    assert first.lang.value == "de" and cards[1].lang.value == "en"
    assert not hasattr(cards[1], "email") and cards[1].fn.value == "Eva Schmidt"
    modern = next(vobject.readComponents(contacts_vcard(conn, [hans], version="4.0")))
    assert modern.version.value == "4.0" and modern.gender.value == "M" and modern.n.value.prefix == "Prof. Dr."
    assert contact_ids_of_account(conn, account_id) == [hans, eva]
    with pytest.raises(DomainError) as missing:
        contacts_vcard(conn, [hans, 999999])
    assert missing.value.field == "contact_id"
