"""CRM resources over REST: accounts with the 360° view, contacts, addresses, products; rules as 422/404."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors import campaign_actions
from connectors.registry import ConnectorContext
from crm import documents as crm_documents
from crm.documents import DocumentLinks, DocumentStore
from tests.api.conftest import Api


def test_accounts_contacts_addresses_and_360_view(api: Api) -> None:
    client = api.client("sales")
    created = client.post("/accounts", json={"name": "Müller Datentechnik", "legalForm": "GmbH",
                                             "segments": ["xDSL", "VoIP"], "slaClass": "gold"})
    assert created.status_code == 201, created.text
    account = created.json()
    assert account["number"].startswith("K-") and account["status"] == "prospect"
    contact = client.post(f"/accounts/{account['id']}/contacts", json={
        "salutation": "Herr", "academicTitle": "Prof. Dr.", "firstName": "Hans", "lastName": "Müller",
        "email": "h.mueller@example.com", "phone": "030 1234567"})
    assert contact.status_code == 201 and contact.json()["letterSalutation"] == "Sehr geehrter Herr Prof. Dr. Müller"
    address = client.post(f"/accounts/{account['id']}/addresses", json={
        "kind": "billing", "street": "Hauptstraße 5", "postalCode": "80331", "city": "München"})
    assert address.status_code == 201
    patched = client.patch(f"/accounts/{account['id']}", json={"status": "customer", "vatId": "DE999999999"})
    assert patched.status_code == 200 and patched.json()["status"] == "customer"
    view = client.get(f"/accounts/{account['id']}").json()
    assert view["contacts"][0]["phone"] == "+49301234567" and view["addresses"][0]["city"] == "München"
    assert sorted(view["segments"]) == ["VoIP", "xDSL"]
    found = client.get("/accounts", params={"q": "müller"}).json()
    assert found["total"] == 1 and found["items"][0]["id"] == account["id"]


def test_rules_are_422_naming_the_field_and_unknown_ids_404(api: Api) -> None:
    client = api.client("sales")
    account = client.post("/accounts", json={"name": "Schmidt KG"}).json()
    bad_mail = client.post(f"/accounts/{account['id']}/contacts", json={"lastName": "X", "email": "not-an-email"})
    assert bad_mail.status_code == 422 and bad_mail.json()["errors"][0]["field"] == "email"
    backwards = client.patch(f"/accounts/{account['id']}", json={"status": "former"})
    assert backwards.status_code == 422 and backwards.json()["errors"][0]["field"] == "status"
    assert client.get("/accounts/999999").status_code == 404
    assert client.post("/accounts/999999/addresses", json={"kind": "billing", "street": "a", "postalCode": "1",
                                                           "city": "b"}).status_code == 404
    assert client.post("/accounts", json={"name": ""}).status_code == 422


def test_products_catalogue(api: Api) -> None:
    manager = api.client("manager")
    product = {"code": "ADSL-100", "name": "ADSL 100", "category": "access", "kind": "recurring_monthly",
               "listPrice": "39.90", "provisioningSteps": ["ip"]}
    assert manager.post("/products", json=product).status_code == 201
    assert api.client("sales").post("/products", json=product).status_code == 403
    listed = api.client("sales").get("/products").json()
    assert listed["total"] == 1 and listed["items"][0]["code"] == "ADSL-100"
    assert listed["items"][0]["listPrice"] == "39.90" and listed["items"][0]["provisioningSteps"] == ["ip"]
    duplicate = manager.post("/products", json=product)
    assert duplicate.status_code == 422 and duplicate.json()["errors"][0]["field"] == "code"


def test_contact_read_and_patch_validated_like_create(api: Api) -> None:
    client = api.client("sales")
    account = client.post("/accounts", json={"name": "Weber Elektro"}).json()
    contact_id = client.post(f"/accounts/{account['id']}/contacts", json={
        "salutation": "Frau", "lastName": "Weber", "email": "weber@example.com"}).json()["id"]
    patched = client.patch(f"/contacts/{contact_id}", json={
        "academicTitle": "Dr.", "phone": "089 12345678", "email": "a.weber@example.com", "marketingOptOut": True})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["phone"], body["email"], body["marketingOptOut"], body["lastName"]) == (
        "+498912345678", "a.weber@example.com", True, "Weber")
    assert body["letterSalutation"] == "Sehr geehrte Frau Dr. Weber"
    english = client.patch(f"/contacts/{contact_id}", json={"preferredLanguage": "en", "academicTitle": None})
    assert english.json()["letterSalutation"] == "Dear Ms Weber" and english.json()["academicTitle"] is None
    assert client.get(f"/contacts/{contact_id}").json() == english.json()
    assert client.get(f"/contacts/{contact_id}.vcf").headers["content-type"].startswith("text/vcard")
    for change, field in [({"phone": "12"}, "phone"), ({"email": "kein-mail"}, "email"),
                          ({"salutation": "Dame"}, "salutation"), ({"lastName": None}, "lastName"),
                          ({"lastName": "  "}, "lastName"), ({"preferredLanguage": "fr"}, "preferredLanguage"),
                          ({"marketingOptOut": None}, "marketingOptOut")]:
        refused = client.patch(f"/contacts/{contact_id}", json=change)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == field, (change, refused.text)
    assert client.get(f"/contacts/{contact_id}").json()["phone"] == "+498912345678"  # nothing half-written
    assert client.patch("/contacts/999999", json={"role": "IT"}).status_code == 404
    nul = client.patch(f"/contacts/{contact_id}", json={"role": "a\u0000b"})
    assert nul.status_code == 422 and nul.json()["errors"][0]["field"] == "role"
    assert client.get("/contacts/999999").status_code == 404


def test_product_read_and_patch_by_code_or_id(api: Api) -> None:
    manager = api.client("manager")
    created = manager.post("/products", json={"code": "SDSL-20", "name": "SDSL 20", "category": "access",
                                              "kind": "recurring_monthly", "listPrice": "99.00"})
    product_id = created.json()["id"]
    by_code = api.client("sales").get("/products/SDSL-20").json()
    assert by_code["id"] == product_id and by_code["provisioningSteps"] == []
    patched = manager.patch(f"/products/{product_id}", json={"listPrice": "89.50", "provisioningSteps": ["ip"],
                                                              "description": "symmetrisch", "active": False})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["listPrice"], patched.json()["provisioningSteps"], patched.json()["active"]) == (
        "89.50", ["ip"], False)
    assert manager.get("/products/SDSL-20").json() == patched.json()
    assert api.client("sales").patch("/products/SDSL-20", json={"name": "x"}).status_code == 403
    for change, field in [({"kind": "lease"}, "kind"), ({"category": "tv"}, "category"),
                          ({"provisioningSteps": ["dns"]}, "provisioningSteps"), ({"name": None}, "name"),
                          ({"listPrice": "1.234"}, "listPrice")]:
        refused = manager.patch("/products/SDSL-20", json=change)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == field, (change, refused.text)
    assert manager.get("/products/SDSL-20").json()["listPrice"] == "89.50"
    assert manager.patch("/products/NOPE", json={"name": "x"}).status_code == 404
    assert manager.get("/products/A%00B").status_code == 422  # PostgreSQL cannot even compare NUL
    nul = manager.patch("/products/SDSL-20", json={"description": "a\u0000b"})
    assert nul.status_code == 422 and nul.json()["errors"][0]["field"] == "description"
    assert manager.get("/products/99999999999").status_code == 404


LISTS = ("/accounts", "/contacts", "/products", "/quotes", "/orders", "/services", "/invoices", "/contracts",
         "/incidents", "/problems", "/opportunities", "/campaigns", "/activities", "/appointments",
         "/staff/time-entries", "/staff/expense-claims", "/staff/vacation-requests", "/staff/sick-notes")


def test_every_list_answers_csv(api: Api) -> None:
    """The issue's "CSV export of any list": each list resource gives UTF-8 CSV with a BOM and ``;``."""
    client = api.client("manager")
    account_id = client.post("/accounts", json={"name": "Zahl & Co"}).json()["id"]
    for path in (*LISTS, f"/accounts/{account_id}/timeline", f"/accounts/{account_id}/documents"):
        exported = client.get(path, params={"format": "csv"})
        assert exported.status_code == 200, (path, exported.text)
        assert exported.headers["content-type"] == "text/csv; charset=utf-8", path
        assert exported.content.startswith("\ufeff".encode()), path
        assert "attachment" in exported.headers["content-disposition"], path
    rows = client.get("/accounts", params={"format": "csv"}).content.decode("utf-8-sig").splitlines()
    assert "name" in rows[0].split(";") and "Zahl & Co" in rows[1]


def test_product_list_pages_filters_searches_and_exports(api: Api) -> None:
    manager, sales = api.client("manager"), api.client("sales")
    for code, name, category, kind, active in (
            ("ADSL-16", "ADSL 16", "access", "recurring_monthly", True),
            ("ADSL-50", "ADSL 50", "access", "recurring_monthly", False),
            ("SDSL-10", "SDSL 10 symmetrisch", "access", "recurring_monthly", True),
            ("MODEM-1", "Modem FritzBox", "hardware", "hardware", True),
            ("DOM_DE", "Domain .de", "domain", "recurring_yearly", True)):
        created = manager.post("/products", json={"code": code, "name": name, "category": category, "kind": kind,
                                                  "listPrice": "10.00", "active": active})
        assert created.status_code == 201, created.text
    first = sales.get("/products", params={"limit": 2}).json()
    second = sales.get("/products", params={"limit": 2, "offset": 2}).json()
    assert (first["total"], first["limit"], first["offset"]) == (5, 2, 0)
    assert [p["code"] for p in first["items"] + second["items"]] == ["ADSL-16", "ADSL-50", "SDSL-10", "DOM_DE"]

    def codes(**params: object) -> list[str]:
        answer = sales.get("/products", params=params)
        assert answer.status_code == 200, answer.text
        return [p["code"] for p in answer.json()["items"]]

    assert codes(q="adsl") == ["ADSL-16", "ADSL-50"]
    assert codes(q="SYMMETRISCH") == ["SDSL-10"]
    assert codes(q="_") == ["DOM_DE"]  # a LIKE wildcard matches itself only
    assert codes(category="access", activeOnly="true") == ["ADSL-16", "SDSL-10"]
    assert codes(kind="hardware") == ["MODEM-1"]
    for params, field in (({"category": "tv"}, "category"), ({"kind": "lease"}, "kind"), ({"limit": 0}, "limit")):
        refused = sales.get("/products", params=params)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == field, refused.text
    exported = sales.get("/products", params={"format": "csv", "q": "adsl", "decimalComma": "true"})
    rows = exported.content.decode("utf-8-sig").splitlines()
    assert rows[0].split(";")[:3] == ["id", "code", "name"] and "provisioningSteps" in rows[0]
    assert len(rows) == 3 and "10,00" in rows[1]
    empty = sales.get("/products", params={"format": "csv", "q": "nichts"}).content.decode("utf-8-sig")
    assert empty.splitlines()[0].startswith("id;code;name")  # an empty page still names its columns


def test_campaign_recipient_list_is_readable_by_sales(api: Api, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The mailing process stores the list as an internal document (no account): sales works with it, other clerks
    do not; a personal document that merely carries such a name stays personal."""
    monkeypatch.setenv(crm_documents.ENV_DIR, str(tmp_path))
    sales = api.client("sales")
    account_id = sales.post("/accounts", json={"name": "Messe GmbH"}).json()["id"]
    contact_id = sales.post(f"/accounts/{account_id}/contacts", json={"lastName": "Adler"}).json()["id"]
    campaign_id = sales.post("/campaigns", json={"name": "Messe 2030", "kind": "trade_fair", "startsOn": "2030-03-01",
                                                 "endsOn": "2030-03-05"}).json()["id"]
    actions = campaign_actions.CampaignActions(api.engine.db.engine, DocumentStore(tmp_path))
    stored = actions.campaign_mailing_list(campaign_actions.MailingList(campaign_id=campaign_id,
                                                                        contact_ids=[contact_id]),
                                           ConnectorContext("job-1", "instance", "element", "K-1"))
    mailing_list = stored["document_id"]
    download = sales.get(f"/documents/{mailing_list}/content")
    assert download.status_code == 200, download.text
    assert "Adler" in download.content.decode("utf-8-sig")
    assert sales.get(f"/documents/{mailing_list}").json()["fileName"] == f"kampagne-{campaign_id}-empfaenger.csv"
    assert api.client("backoffice").get(f"/documents/{mailing_list}/content").status_code == 403
    with api.engine.db.transaction() as conn:
        receipt = DocumentStore(tmp_path).store(conn, b"privat", f"kampagne-{campaign_id}-empfaenger.csv", "text/csv",
                                                DocumentLinks(), uploaded_by="clara")
    assert sales.get(f"/documents/{receipt}/content").status_code == 403
    assert api.client("manager").get(f"/documents/{receipt}/content").status_code == 200
