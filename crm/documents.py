"""Documents (PDFs, scans, receipts): bytes on disk under a configurable directory, facts in the database.

Files are stored by content (``<root>/ab/abcdef…`` named by their sha256), written to a temporary file and
renamed, so a file is either complete or absent and the same bytes are stored once. The file is written
before the row: if the transaction rolls back, an unreferenced file stays behind, which is harmless (a
cleanup can delete files no row names) — the reverse, a row without its file, cannot happen. Reading checks
the sha256, so a damaged file is noticed instead of being sent to a customer.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import tempfile
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .errors import DomainError
from .schema import account, activity, document, invoice, order, quote

DEFAULT_DIR = Path("var/documents")
ENV_DIR = "SILVERFLOW_DOCUMENTS_DIR"
MAX_SIZE = 50 * 1024 * 1024
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")
_LINKS = {"quote_id": quote, "order_id": order, "invoice_id": invoice, "activity_id": activity}
_ZIP = (b"PK\x03\x04",)  # office formats are zip containers
_OLE = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",)  # legacy Word/Excel
TEXT = ()  # no signature: checked for NUL bytes instead
# What a customer file may be (letters, scans, contracts, e-invoices) and how its first bytes begin: a
# browser or a script may send any type; these are the ones staff can open safely, and the signature keeps a
# renamed executable from passing as a PDF.
ACCEPTED_TYPES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/tiff": (b"II*\x00", b"MM\x00*"),
    "text/plain": TEXT,
    "text/csv": TEXT,
    "application/xml": TEXT,
    "text/xml": TEXT,
    "message/rfc822": TEXT,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _ZIP,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _ZIP,
    "application/vnd.oasis.opendocument.text": _ZIP,
    "application/vnd.oasis.opendocument.spreadsheet": _ZIP,
    "application/msword": _OLE,
    "application/vnd.ms-excel": _OLE,
}
UNKNOWN_TYPES = ("", "application/octet-stream")  # what clients send when they do not know


@dataclass(frozen=True)
class DocumentLinks:
    """What a document belongs to; a linked quote, order, invoice or activity must be of the same account."""

    account_id: int | None = None
    quote_id: int | None = None
    order_id: int | None = None
    invoice_id: int | None = None
    activity_id: int | None = None


class DocumentStore:
    """Documents under ``root`` (default: ``$SILVERFLOW_DOCUMENTS_DIR`` or ``var/documents``)."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root if root is not None else os.environ.get(ENV_DIR, DEFAULT_DIR))

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def _write(self, data: bytes, digest: str) -> None:
        target = self.path_of(digest)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def store(
        self,
        conn: Connection,
        data: bytes,
        file_name: str,
        mime_type: str,
        links: DocumentLinks,
        uploaded_by: str | None = None,
        now: datetime | None = None,
    ) -> int:
        """Save the bytes and record the document; returns its id."""
        name = _file_name(file_name)
        mime = (mime_type or "").strip().lower()
        if not _MIME.match(mime):
            raise DomainError(
                "mime_type", f"mime_type {mime_type!r} is not a MIME type such as application/pdf"
            )
        if not isinstance(data, bytes | bytearray):
            raise DomainError("data", "data must be bytes")
        if not data:
            raise DomainError("data", "the file is empty")
        if len(data) > MAX_SIZE:
            raise DomainError("data", f"the file is larger than {MAX_SIZE // (1024 * 1024)} MiB")
        _check_links(conn, links)
        digest = hashlib.sha256(data).hexdigest()
        self._write(bytes(data), digest)
        values = {
            "account_id": links.account_id,
            "quote_id": links.quote_id,
            "order_id": links.order_id,
            "invoice_id": links.invoice_id,
            "activity_id": links.activity_id,
            "file_name": name,
            "mime_type": mime,
            "size": len(data),
            "sha256": digest,
            "uploaded_by": v.optional_text("uploaded_by", uploaded_by, 200),
            "created_at": v.timestamp(now),
        }
        return int(conn.execute(document.insert().values(**values).returning(document.c.id)).scalar_one())

    def read(self, conn: Connection, document_id: int) -> tuple[sa.Row[tuple[object, ...]], bytes]:
        """The document's row and bytes; a missing or altered file is an error, not wrong content."""
        row = get_document(conn, document_id)
        try:
            data = self.path_of(str(row.sha256)).read_bytes()
        except FileNotFoundError as exc:
            raise DomainError("document_id", f"the file of document {document_id} is missing") from exc
        if hashlib.sha256(data).hexdigest() != row.sha256:
            raise DomainError(
                "document_id", f"the file of document {document_id} is damaged (sha256 differs)"
            )
        return row, data


def clean_file_name(file_name: str) -> str:
    """An uploaded name without control (C0, C1) and format characters: a right-to-left override makes
    ``rechnung\u202efdp.exe`` read as ``rechnungexe.pdf``, and control characters break headers and listings."""
    return "".join(ch for ch in file_name if unicodedata.category(ch) not in ("Cc", "Cf")).strip()


def _file_name(file_name: str) -> str:
    """The bare name as the user knows it; no directories, no control or bidi characters."""
    name = v.required_text("file_name", clean_file_name(file_name), 255)
    if "/" in name or "\\" in name or name in (".", ".."):
        raise DomainError(
            "file_name", f"file_name {file_name!r} must be a plain file name without directories"
        )
    return name


def _check_links(conn: Connection, links: DocumentLinks) -> None:
    if (
        links.account_id is not None
        and conn.execute(sa.select(account.c.id).where(account.c.id == links.account_id)).first() is None
    ):
        raise DomainError("account_id", f"account_id {links.account_id} does not exist")
    for field, table in _LINKS.items():
        row_id = getattr(links, field)
        if row_id is None:
            continue
        owner = conn.execute(sa.select(table.c.account_id).where(table.c.id == row_id)).one_or_none()
        if owner is None:
            raise DomainError(field, f"{field} {row_id} does not exist")
        if owner.account_id != links.account_id:
            raise DomainError(field, f"{field} {row_id} belongs to another account than account_id")


def accepted_type(data: bytes, mime_type: str | None, file_name: str) -> str:
    """The MIME type an upload is stored with: the declared one (or, when the client did not know, the one its
    file name suggests), if it is an accepted type and the bytes look like it.

    An unaccepted type raises ``DomainError("mime_type")``, bytes that contradict the type ``DomainError("data")``.
    """
    mime = (mime_type or "").split(";")[0].strip().lower()
    if mime in UNKNOWN_TYPES:
        mime = (mimetypes.guess_type(file_name, strict=False)[0] or "").lower()
    if mime not in ACCEPTED_TYPES:
        raise DomainError(
            "mime_type",
            f"files of type {mime or 'unknown'!r} are not accepted (accepted: {', '.join(ACCEPTED_TYPES)})",
        )
    signatures = ACCEPTED_TYPES[mime]
    looks_right = b"\x00" not in data if signatures == TEXT else data.startswith(signatures)
    if data and not looks_right:
        raise DomainError("data", f"the content of {file_name!r} is not of type {mime}")
    return mime


def list_documents(
    conn: Connection,
    account_id: int,
    *,
    links: Mapping[str, int] | None = None,
    text: str = "",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """A page of the account's documents, newest first; ``links`` keeps those linked to these records (keys
    ``quote_id``, ``order_id``, ``invoice_id``, ``activity_id``), ``text`` those whose file name contains it."""
    where: list[Any] = [document.c.account_id == account_id]
    for link, row_id in (links or {}).items():
        where.append(document.c[v.one_of("links", link, tuple(_LINKS))] == row_id)
    needle = text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if needle:
        where.append(sa.func.lower(document.c.file_name).like(f"%{needle}%", escape="\\"))
    total = conn.execute(sa.select(sa.func.count()).select_from(document).where(*where)).scalar_one()
    query = sa.select(document).where(*where).order_by(document.c.id.desc()).limit(limit).offset(offset)
    return [dict(row._mapping) for row in conn.execute(query)], int(total)


def get_document(conn: Connection, document_id: int) -> sa.Row[tuple[object, ...]]:
    row = conn.execute(sa.select(document).where(document.c.id == document_id)).one_or_none()
    if row is None:
        raise DomainError("document_id", f"document {document_id} does not exist")
    return row


def documents_of(conn: Connection, account_id: int) -> list[sa.Row[tuple[object, ...]]]:
    """An account's documents, newest first (without the bytes)."""
    query = sa.select(document).where(document.c.account_id == account_id).order_by(document.c.id.desc())
    return list(conn.execute(query))
