"""CRM resources over REST: accounts with the 360° view, contacts, addresses, products; rules as 422/404."""

from __future__ import annotations

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
    assert listed[0]["code"] == "ADSL-100" and listed[0]["listPrice"] == "39.90"
    duplicate = manager.post("/products", json=product)
    assert duplicate.status_code == 422 and duplicate.json()["errors"][0]["field"] == "code"
