"""Documents: bytes stored by sha256 under the configured directory, linked to the account's records."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy.engine import Connection

from crm import quotes
from crm.accounts import create_account
from crm.documents import DocumentLinks, DocumentStore, accepted_type, documents_of, list_documents
from crm.errors import DomainError
from crm.positions import PositionInput

from .conftest import NOW, TODAY

PDF = b"%PDF-1.4\n% Angebot\n"


def _quote(conn: Connection, account_id: int, catalogue: dict[str, int]) -> int:
    """A quote of the account to link documents to."""
    return quotes.create_quote(
        conn, account_id, [PositionInput(D("1"), catalogue["SETUP"])], TODAY + timedelta(days=5), now=NOW
    )


def test_store_and_read(conn: Connection, account_id: int, tmp_path: Path) -> None:
    store = DocumentStore(tmp_path / "docs")
    first = store.store(
        conn,
        PDF,
        "Angebot Q-2026-00001.pdf",
        "application/PDF",
        DocumentLinks(account_id),
        uploaded_by="anna",
        now=NOW,
    )
    second = store.store(conn, PDF, "Kopie.pdf", "application/pdf", DocumentLinks(account_id), now=NOW)
    digest = hashlib.sha256(PDF).hexdigest()
    assert store.path_of(digest) == tmp_path / "docs" / digest[:2] / digest
    assert [p.name for p in (tmp_path / "docs").rglob("*") if p.is_file()] == [digest]  # stored once
    row, data = store.read(conn, first)
    assert (row.file_name, row.mime_type, row.size, row.sha256, data) == (
        "Angebot Q-2026-00001.pdf",
        "application/pdf",
        len(PDF),
        digest,
        PDF,
    )
    assert [d.id for d in documents_of(conn, account_id)] == [second, first]
    store.path_of(digest).write_bytes(b"tampered")
    with pytest.raises(DomainError, match="damaged"):
        store.read(conn, first)
    store.path_of(digest).unlink()
    with pytest.raises(DomainError, match="missing"):
        store.read(conn, first)


def test_directory_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SILVERFLOW_DOCUMENTS_DIR", str(tmp_path))
    assert DocumentStore().root == tmp_path
    monkeypatch.delenv("SILVERFLOW_DOCUMENTS_DIR")
    assert DocumentStore().root == Path("var/documents")


def test_links_must_be_of_the_same_account(
    conn: Connection, account_id: int, catalogue: dict[str, int], tmp_path: Path
) -> None:
    store = DocumentStore(tmp_path)
    quote_id = _quote(conn, account_id, catalogue)
    store.store(conn, PDF, "a.pdf", "application/pdf", DocumentLinks(account_id, quote_id=quote_id))
    other = create_account(conn, "Andere GmbH")
    for links, field in [
        (DocumentLinks(other, quote_id=quote_id), "quote_id"),
        (DocumentLinks(4242), "account_id"),
        (DocumentLinks(account_id, invoice_id=77), "invoice_id"),
    ]:
        with pytest.raises(DomainError) as err:
            store.store(conn, PDF, "a.pdf", "application/pdf", links)
        assert err.value.field == field


@pytest.mark.parametrize(
    ("data", "name", "mime", "field"),
    [
        (PDF, "../etc/passwd", "text/plain", "file_name"),
        (PDF, "a\\b.pdf", "text/plain", "file_name"),
        (PDF, "", "text/plain", "file_name"),
        (PDF, "a.pdf", "pdf", "mime_type"),
        (b"", "a.pdf", "text/plain", "data"),
    ],
)
def test_bad_uploads_name_the_field(
    conn: Connection, tmp_path: Path, data: bytes, name: str, mime: str, field: str
) -> None:
    with pytest.raises(DomainError) as err:
        DocumentStore(tmp_path).store(conn, data, name, mime, DocumentLinks())
    assert err.value.field == field
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # nothing written for refused input


@pytest.mark.parametrize(
    ("data", "declared", "name", "expected"),
    [
        (PDF, "application/PDF; name=x.pdf", "x.pdf", "application/pdf"),
        (PDF, "application/octet-stream", "Vertrag.pdf", "application/pdf"),
        (PDF, None, "Vertrag.PDF", "application/pdf"),
        (b"\xff\xd8\xff\xe0 jpeg", "image/jpeg", "foto", "image/jpeg"),
        (b"Kunde ruft an", "", "notiz.txt", "text/plain"),
        (b"PK\x03\x04 zip", "", "angebot.docx",
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ],
)
def test_accepted_type_from_declaration_or_file_name(
    data: bytes, declared: str | None, name: str, expected: str
) -> None:
    assert accepted_type(data, declared, name) == expected


@pytest.mark.parametrize(
    ("data", "declared", "name", "field"),
    [
        (b"MZ\x90", "application/x-msdownload", "tool.exe", "mime_type"),
        (b"<html>", "text/html", "a.html", "mime_type"),
        (b"\x00\x01", "application/octet-stream", "daten", "mime_type"),
        (b"MZ\x90 renamed", "application/pdf", "rechnung.pdf", "data"),
        (b"a\x00b", "text/plain", "a.txt", "data"),
    ],
)
def test_accepted_type_refuses_unknown_types_and_disguised_content(
    data: bytes, declared: str, name: str, field: str
) -> None:
    with pytest.raises(DomainError) as err:
        accepted_type(data, declared, name)
    assert err.value.field == field


def test_list_documents_pages_and_filters(
    conn: Connection, account_id: int, catalogue: dict[str, int], tmp_path: Path
) -> None:
    store = DocumentStore(tmp_path)
    quote_id = _quote(conn, account_id, catalogue)
    linked = store.store(conn, PDF, "Angebot_100%.pdf", "application/pdf", DocumentLinks(account_id, quote_id))
    plain = store.store(conn, b"x", "Notiz.txt", "text/plain", DocumentLinks(account_id))
    store.store(conn, b"y", "fremd.txt", "text/plain", DocumentLinks(create_account(conn, "Andere GmbH")))
    rows, total = list_documents(conn, account_id)
    assert total == 2 and [r["id"] for r in rows] == [plain, linked]
    assert [r["id"] for r in list_documents(conn, account_id, links={"quote_id": quote_id})[0]] == [linked]
    assert [r["id"] for r in list_documents(conn, account_id, text="_100%")[0]] == [linked]
    assert list_documents(conn, account_id, text="1_0")[1] == 0  # wildcards match literally
    assert [r["id"] for r in list_documents(conn, account_id, limit=1, offset=1)[0]] == [linked]
    with pytest.raises(DomainError) as err:
        list_documents(conn, account_id, links={"account_id": 1})
    assert err.value.field == "links"

