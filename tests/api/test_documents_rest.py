"""Documents of an account over REST: multipart upload (with links to the account's records), list with paging
and CSV, metadata, the bytes as a download; size, type and content refused as 413/415/422 problem+json.

Against the live server on SQLite and PostgreSQL, with the documents directory in a temporary folder.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm import documents as crm_documents
from crm.documents import DocumentLinks, DocumentStore
from tests.api.conftest import Api

PDF = b"%PDF-1.4\n% Vertrag\n" + bytes(range(256))
VALID_UNTIL = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()


@pytest.fixture
def documents_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(crm_documents.ENV_DIR, str(tmp_path / "documents"))
    return tmp_path / "documents"


def _problem(response: httpx.Response, status: int) -> str:
    """The field a problem+json answer of ``status`` names."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return str(response.json()["errors"][0]["field"])


def _account(client: httpx.Client, name: str) -> int:
    created = client.post("/accounts", json={"name": name})
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def _quote(client: httpx.Client, account_id: int) -> int:
    created = client.post("/quotes", json={"accountId": account_id, "validUntil": VALID_UNTIL, "positions": [
        {"description": "Einrichtung", "quantity": "1", "unitPrice": "49.00", "vatRate": "19"}]})
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def _upload(client: httpx.Client, account_id: int, name: str, data: bytes, mime: str | None,
            **links: Any) -> httpx.Response:
    file = (name, data, mime) if mime is not None else (name, data)
    return client.post(f"/accounts/{account_id}/documents", files={"file": file},
                       data={key: str(value) for key, value in links.items()})


def test_upload_list_metadata_and_download(api: Api, documents_dir: Path) -> None:
    sales = api.client("sales")
    account_id = _account(sales, "Müller Datentechnik")
    quote_id = _quote(sales, account_id)
    contract = _upload(sales, account_id, "Vertrag Müller.pdf", PDF, "application/pdf", quoteId=quote_id)
    assert contract.status_code == 201, contract.text
    meta = contract.json()
    digest = hashlib.sha256(PDF).hexdigest()
    assert (meta["fileName"], meta["mimeType"], meta["size"], meta["sha256"], meta["quoteId"]) == (
        "Vertrag Müller.pdf", "application/pdf", len(PDF), digest, quote_id)
    assert meta["uploadedBy"] == "key:test-sales" and meta["accountId"] == account_id
    assert (documents_dir / digest[:2] / digest).read_bytes() == PDF
    # a client that does not know the type: the file name decides
    note = _upload(sales, account_id, "notiz.txt", "Rückruf am Montag\n".encode(), "application/octet-stream")
    assert note.status_code == 201 and note.json()["mimeType"] == "text/plain" and note.json()["quoteId"] is None

    listed = sales.get(f"/accounts/{account_id}/documents").json()
    assert listed["total"] == 2 and [d["id"] for d in listed["items"]] == [note.json()["id"], meta["id"]]
    assert listed["items"][1]["contentUrl"] == f"/api/v1/documents/{meta['id']}/content"
    by_quote = sales.get(f"/accounts/{account_id}/documents", params={"quoteId": quote_id}).json()
    assert [d["id"] for d in by_quote["items"]] == [meta["id"]]
    by_name = sales.get(f"/accounts/{account_id}/documents", params={"q": "VERTRAG"}).json()
    assert [d["id"] for d in by_name["items"]] == [meta["id"]]
    second_page = sales.get(f"/accounts/{account_id}/documents", params={"limit": 1, "offset": 1}).json()
    assert second_page["total"] == 2 and [d["id"] for d in second_page["items"]] == [meta["id"]]
    exported = sales.get(f"/accounts/{account_id}/documents", params={"format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.content.decode("utf-8-sig").splitlines()
    assert {"fileName", "mimeType", "size", "sha256"} <= set(lines[0].split(";")) and len(lines) == 3
    assert any("Vertrag Müller.pdf" in line for line in lines[1:])
    assert [d["id"] for d in sales.get(f"/accounts/{account_id}").json()["documents"]][-1] == meta["id"]

    assert sales.get(f"/documents/{meta['id']}").json() == meta
    download = api.client("servicedesk").get(f"/documents/{meta['id']}/content")
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"Vertrag M_ller.pdf\"; filename*=UTF-8''Vertrag%20M%C3%BCller.pdf")


def test_refused_uploads_are_problems_naming_the_file(api: Api, documents_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    sales = api.client("sales")
    account_id = _account(sales, "Schmidt KG")
    other_quote = _quote(sales, _account(sales, "Andere GmbH"))
    assert _problem(_upload(sales, account_id, "tool.exe", b"MZ\x90\x00", "application/x-msdownload"),
                    415) == "file"
    assert _problem(_upload(sales, account_id, "daten.bin", b"\x00\x01", None), 415) == "file"
    assert _problem(_upload(sales, account_id, "rechnung.pdf", b"MZ\x90\x00 not a pdf", "application/pdf"),
                    422) == "file"
    assert _problem(_upload(sales, account_id, "leer.pdf", b"", "application/pdf"), 422) == "file"
    assert _problem(_upload(sales, account_id, "a.pdf", PDF, "application/pdf", quoteId=other_quote),
                    422) == "quoteId"
    assert _problem(_upload(sales, account_id, "a.pdf", PDF, "application/pdf", orderId="abc"), 422) == "orderId"
    no_file = sales.post(f"/accounts/{account_id}/documents", files={"quoteId": (None, "1")})  # multipart, no file
    assert _problem(no_file, 422) == "file"
    assert _problem(sales.post(f"/accounts/{account_id}/documents", data={"quoteId": "1"}), 415) == "file"
    assert _problem(sales.post(f"/accounts/{account_id}/documents", content=PDF,
                               headers={"content-type": "application/pdf"}), 415) == "file"
    assert _upload(sales, 999999, "a.pdf", PDF, "application/pdf").status_code == 404
    assert _upload(api.client("hr"), account_id, "a.pdf", PDF, "application/pdf").status_code == 201

    monkeypatch.setattr(crm_documents, "MAX_SIZE", 1024)
    parsed_then_refused = _upload(sales, account_id, "gross.pdf", PDF + bytes(2048), "application/pdf")
    assert _problem(parsed_then_refused, 413) == "file"
    refused_by_length = _upload(sales, account_id, "riesig.pdf", PDF + bytes(200 * 1024), "application/pdf")
    assert _problem(refused_by_length, 413) == "file"
    assert sales.get(f"/accounts/{account_id}/documents").json()["total"] == 1  # only hr's upload was kept
    assert not [p for p in documents_dir.rglob("*") if p.is_file() and p.read_bytes() != PDF]


def test_unknown_personal_and_damaged_documents(api: Api, documents_dir: Path) -> None:
    sales = api.client("sales")
    account_id = _account(sales, "Meier OHG")
    assert sales.get("/documents/999999").status_code == 404
    assert sales.get("/documents/999999/content").status_code == 404
    assert sales.get("/accounts/999999/documents").status_code == 404
    assert _problem(sales.get(f"/accounts/{account_id}/documents", params={"quoteId": 0}), 422) == "quoteId"
    with api.engine.db.transaction() as conn:  # an expense receipt: no account, personal to its uploader
        receipt = DocumentStore().store(conn, PDF, "hotel.pdf", "application/pdf", DocumentLinks(),
                                        uploaded_by="key:test-hr")
    assert api.client("hr").get(f"/documents/{receipt}").status_code == 200
    assert api.client("manager").get(f"/documents/{receipt}/content").content == PDF
    assert sales.get(f"/documents/{receipt}").status_code == 403
    assert sales.get(f"/documents/{receipt}/content").status_code == 403

    uploaded = _upload(sales, account_id, "scan.png", b"\x89PNG\r\n\x1a\n" + bytes(16), "image/png").json()
    (documents_dir / uploaded["sha256"][:2] / uploaded["sha256"]).write_bytes(b"\x89PNG\r\n\x1a\nanders")
    assert _problem(sales.get(f"/documents/{uploaded['id']}/content"), 409) == "documentId"
