"""CSV import and export over REST (per-row reports, a lossless round trip into a fresh database) and vCards."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import pytest
import vobject

from tests.api.conftest import Api
from tests.support.live_app import live_app

FreshApi = Callable[[], AbstractContextManager[Api]]
CSV = {"Content-Type": "text/csv; charset=utf-8"}


@pytest.fixture
def fresh_api(request: pytest.FixtureRequest, db_url: str) -> FreshApi:
    """Another app on another fresh database of the same backend as ``db_url``."""
    backend = request.node.callspec.params["db_url"]
    factory = request.getfixturevalue("sqlite_factory" if backend == "sqlite" else "postgres_factory")

    @contextmanager
    def start() -> Iterator[Api]:
        url = factory.create()
        try:
            with live_app(url) as running:
                yield running
        finally:
            if backend != "sqlite":
                factory.drop(url)

    return start


def _table(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:], newline=""), delimiter=";"))


def _without_ids(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in ("id", "accountId")} for row in rows]


def _upload(client: httpx.Client, kind: str, content: bytes, dry_run: bool = False,
            multipart: bool = True) -> httpx.Response:
    params = {"dryRun": "true"} if dry_run else {}
    if multipart:
        return client.post(f"/imports/{kind}", params=params, files={"file": (f"{kind}.csv", content, "text/csv")})
    return client.post(f"/imports/{kind}", params=params, content=content, headers=CSV)


def _seed(api: Api) -> None:
    """Accounts, addresses, contacts and products created the ordinary way, through the API."""
    sales, manager = api.client("sales"), api.client("manager")
    first = sales.post("/accounts", json={"name": "Müller Datentechnik", "legalForm": "GmbH", "vatId": "DE999999999",
                                          "segments": ["xDSL", "VoIP"], "slaClass": "gold"}).json()
    second = sales.post("/accounts", json={"name": "Anna Berger", "kind": "private", "owner": "clara"}).json()
    assert sales.patch(f"/accounts/{first['id']}", json={"status": "customer"}).status_code == 200
    for body in ({"kind": "billing", "street": "Hauptstraße 5", "postalCode": "80331", "city": "München"},
                 {"kind": "installation", "street": "Werk 1", "postalCode": "10115", "city": "Berlin"},
                 {"kind": "installation", "street": "Rue 2; \"Halle\"", "postalCode": "75001", "city": "Paris",
                  "country": "FR"}):
        assert sales.post(f"/accounts/{first['id']}/addresses", json=body).status_code == 201
    people: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (first, {"salutation": "Herr", "academicTitle": "Prof. Dr.", "firstName": "Hans",
                 "lastName": "Müller", "role": "Geschäftsführer", "email": "h.mueller@example.com",
                 "phone": "030 1234567"}),
        (first, {"salutation": "Frau", "firstName": "Eva", "lastName": "Schmidt", "preferredLanguage": "en",
                 "marketingOptOut": True}),
        (second, {"lastName": "Berger", "firstName": "Anna", "phone": "+43 1 5123456"})]
    for account, body in people:
        assert sales.post(f"/accounts/{account['id']}/contacts", json=body).status_code == 201
    for product in ({"code": "ADSL-100", "name": "ADSL 100", "category": "access", "kind": "recurring_monthly",
                     "listPrice": "39.90", "provisioningSteps": ["ip", "domain"]},
                    {"code": "BOOK", "name": "Handbuch, gedruckt", "category": "hardware", "kind": "hardware",
                     "listPrice": "1234.50", "vatRate": "7.00", "description": "Zeile 1\nZeile 2", "active": False}):
        assert manager.post("/products", json=product).status_code == 201


EXPORTS = {
    "accounts": ["/exports/accounts", "/accounts"],
    "contacts": ["/exports/contacts", "/contacts"],
    "products": ["/exports/products", "/products"],
}


def _export(client: httpx.Client, path: str, decimal_comma: bool) -> httpx.Response:
    """A dedicated export, or a list as CSV (``format=csv``, the whole list on one page)."""
    params = {} if path.startswith("/exports") else {"format": "csv", "limit": "1000"}
    if decimal_comma:
        params["decimalComma"] = "true"
    return client.get(path, params=params)


@pytest.mark.parametrize("decimal_comma", [False, True])
def test_export_import_export_round_trip_loses_nothing(api: Api, fresh_api: FreshApi, decimal_comma: bool) -> None:
    _seed(api)
    source = api.client("sales")
    exported = {path: _export(source, path, decimal_comma) for paths in EXPORTS.values() for path in paths}
    products = _table(exported["/exports/products"])
    assert {r["code"]: r["listPrice"] for r in products} == (
        {"ADSL-100": "39,90", "BOOK": "1234,50"} if decimal_comma else {"ADSL-100": "39.90", "BOOK": "1234.50"})
    accounts = {r["name"]: r for r in _table(exported["/exports/accounts"])}
    assert accounts["Müller Datentechnik"]["segments"] == "VoIP,xDSL"
    assert accounts["Müller Datentechnik"]["installationCity"] == "Berlin\nParis"
    with fresh_api() as target:
        manager = target.client("manager")
        for kind, paths in EXPORTS.items():  # accounts before contacts: contacts name their account's number
            for path in paths:
                report = _upload(manager, kind, exported[path].content, multipart=path.startswith("/exports"))
                assert report.status_code == 200, report.text
                body = report.json()
                assert body["failed"] == 0, body
                assert body["created"] + body["updated"] == body["total"] == len(_table(exported[path]))
                assert body["created"] == (body["total"] if path.startswith("/exports") else 0)
        again = target.client("sales")
        for path, first in exported.items():
            assert _without_ids(_table(_export(again, path, decimal_comma))) == _without_ids(_table(first)), path


def test_upload_reports_per_row_and_keeps_the_good_rows(api: Api) -> None:
    sales = api.client("sales")
    account = sales.post("/accounts", json={"name": "Schmidt KG"}).json()
    content = (
        "accountNumber;salutation;firstName;lastName;email;phone\n"
        f"{account['number']};Herr;Jan;Schmidt;jan@example.com;0221 123456\n"
        f"{account['number']};Frau;Ute;Schmidt;ute@example;\n"
        f"{account['number']};Frau;Ida;;;\n"
        "K-424242;Herr;Max;Meier;;\n"
    ).encode()
    dry = _upload(sales, "contacts", content, dry_run=True).json()
    assert dry["dryRun"] and [r["status"] for r in dry["rows"]] == ["created", "error", "error", "error"]
    assert sales.get("/contacts").json()["total"] == 0
    report = _upload(sales, "contacts", content, multipart=False)
    assert report.status_code == 200 and report.headers["content-type"] == "application/json"
    body = report.json()
    assert (body["created"], body["updated"], body["failed"], body["total"]) == (1, 0, 3, 4)
    assert body["rows"][0]["id"] and body["rows"][0]["key"] == "Jan Schmidt"
    assert [(r["row"], r["errors"][0]["field"]) for r in body["rows"][1:]] == [
        (3, "email"), (4, "lastName"), (5, "accountNumber")]
    listed = sales.get("/contacts", params={"accountId": account["id"]}).json()
    assert listed["total"] == 1 and listed["items"][0]["phone"] == "+49221123456"
    assert listed["items"][0]["accountNumber"] == account["number"]
    assert sales.get("/contacts", params={"q": "jan@"}).json()["total"] == 1
    assert sales.get("/contacts", params={"q": "nobody"}).json()["total"] == 0
    assert _upload(sales, "products", b"code;name\nX;Y\n").status_code == 403  # the catalogue is the manager's
    assert _upload(api.client("integration"), "accounts", b"name\nX\n").status_code == 403


def test_products_update_by_code_with_decimal_comma(api: Api) -> None:
    manager = api.client("manager")
    created = _upload(manager, "products", b"code;name;category;kind;listPrice\nVOIP;VoIP;voice;recurring_monthly;"
                                           b"9,90\n").json()
    assert created["created"] == 1
    updated = _upload(manager, "products", b"code;listPrice;active\nVOIP;12,50;nein\n").json()
    assert updated["updated"] == 1 and updated["rows"][0]["id"] == created["rows"][0]["id"]
    product = manager.get("/products").json()["items"][0]
    assert (product["listPrice"], product["active"], product["name"]) == ("12.50", False, "VoIP")


UNREADABLE = [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "file"),
    ("Straße;Ort\nA;B\n".encode("latin-1"), "file"),
    (b'name;kind\n"Offen;business\n', "file"),
    (b"hello world\n", "name"),
    (b"", "file"),
]


def test_an_unreadable_file_is_a_422_naming_the_problem(api: Api) -> None:
    sales = api.client("sales")
    for content, field in UNREADABLE:
        response = _upload(sales, "accounts", content)
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["errors"][0]["field"] == field and field in problem["detail"], problem
    assert sales.get("/accounts").json()["total"] == 0


def test_import_without_a_file_field_or_with_a_missing_column(api: Api) -> None:
    sales = api.client("sales")
    no_file = sales.post("/imports/contacts", files={"other": ("x.csv", b"lastName\nX\n", "text/csv")})
    assert no_file.status_code == 422 and no_file.json()["errors"][0]["field"] == "file"
    missing = _upload(sales, "contacts", b"firstName;email\nHans;h@example.com\n")
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "lastName"
    assert "lastName" in missing.json()["detail"]


def test_vcard_downloads(api: Api) -> None:
    sales = api.client("sales")
    account = sales.post("/accounts", json={"name": "Müller Datentechnik"}).json()
    sales.post(f"/accounts/{account['id']}/addresses", json={"kind": "billing", "street": "Hauptstraße 5",
                                                             "postalCode": "80331", "city": "München"})
    hans = sales.post(f"/accounts/{account['id']}/contacts", json={
        "salutation": "Herr", "academicTitle": "Dr.", "firstName": "Hans", "lastName": "Müller",
        "email": "h.mueller@example.com", "phone": "030 1234567"}).json()
    sales.post(f"/accounts/{account['id']}/contacts", json={"lastName": "Adler", "preferredLanguage": "en"})
    single = sales.get(f"/contacts/{hans['id']}.vcf")
    assert single.status_code == 200 and single.headers["content-type"] == "text/vcard; charset=utf-8"
    assert f'filename="contact-{hans["id"]}.vcf"' in single.headers["content-disposition"]
    card = vobject.readOne(single.text)
    assert (card.n.value.prefix, card.n.value.given, card.n.value.family) == ("Dr.", "Hans", "Müller")
    assert card.org.value == ["Müller Datentechnik"] and card.adr.value.city == "München"
    assert card.tel.value == "+49301234567" and card.lang.value == "de"
    modern = vobject.readOne(sales.get(f"/contacts/{hans['id']}.vcf", params={"version": "4.0"}).text)
    assert modern.version.value == "4.0" and modern.gender.value == "M"
    both = sales.get(f"/accounts/{account['id']}/contacts.vcf")
    assert both.status_code == 200 and both.headers["content-type"].startswith("text/vcard")
    assert [c.fn.value for c in vobject.readComponents(both.text)] == ["Adler", "Dr. Hans Müller"]
    assert sales.get("/contacts/999999.vcf").status_code == 404
    assert sales.get("/accounts/999999/contacts.vcf").status_code == 404
    assert sales.get(f"/contacts/{hans['id']}.vcf", params={"version": "2.1"}).status_code == 422
    assert api.client().get(f"/contacts/{hans['id']}.vcf").status_code == 401


def test_empty_contact_list_as_csv_still_names_its_columns(api: Api) -> None:
    rows = api.client("sales").get("/contacts", params={"format": "csv"})
    assert rows.status_code == 200
    header = rows.content.decode("utf-8").lstrip("\ufeff").splitlines()[0].split(";")
    assert {"accountNumber", "lastName", "academicTitle", "email", "phone"} <= set(header)
