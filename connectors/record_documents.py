"""``document.for_record``: the business letter of a CRM record (quote, order confirmation), rendered and kept.

The letter's data come from the CRM — the account's billing address, its number, the record's positions — so a
process only names the record. The PDF is stored as a document on the account, linked to the record, and the
result is what ``mail.send`` attaches.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Connection, Engine

from crm.accounts import get_account
from crm.documents import DocumentLinks, DocumentStore
from crm.errors import DomainError
from crm.schema import address, document, order, order_position, quote, quote_position

from .documents import Address, DocumentParams, Position, render_pdf
from .registry import BusinessError, ConnectorContext, Registry

_RECORDS = {"quote": (quote, quote_position, "quote_id"), "order_confirmation": (order, order_position, "order_id")}
_INTRO = {"quote": "gerne unterbreiten wir Ihnen folgendes Angebot:",
          "order_confirmation": "vielen Dank für Ihren Auftrag, den wir hiermit wie folgt bestätigen:"}


class RecordDocument(BaseModel):
    kind: Literal["quote", "order_confirmation"]
    record_id: int


def recipient_of(conn: Connection, account_id: int) -> Address:
    """The letter goes to the billing address (any address if none is marked for billing)."""
    account = get_account(conn, account_id)
    rows = conn.execute(sa.select(address).where(address.c.account_id == account_id).order_by(address.c.id)).all()
    chosen = next((r for r in rows if r.kind == "billing"), rows[0] if rows else None)
    if chosen is None:
        return Address(name=str(account.name))
    return Address(name=str(account.name), street=str(chosen.street), city=f"{chosen.postal_code} {chosen.city}")


def letter_for(conn: Connection, kind: str, record_id: int, today: datetime) -> tuple[DocumentParams, DocumentLinks]:
    table, positions, link = _RECORDS[kind]
    row = conn.execute(sa.select(table).where(table.c.id == record_id)).one_or_none()
    if row is None:
        raise DomainError("record_id", f"{kind} record {record_id} does not exist")
    account = get_account(conn, int(row.account_id))
    lines = conn.execute(sa.select(positions).where(getattr(positions.c, link) == record_id)
                         .order_by(positions.c.line_no)).all()
    number = f"{row.number}-{row.version}" if kind == "quote" else str(row.number)
    params = DocumentParams(
        kind=kind, number=number, date=today.date(), customer_number=str(account.number),  # type: ignore[arg-type]
        recipient=recipient_of(conn, int(row.account_id)), intro=_INTRO[kind],
        positions=[Position(description=str(line.description), quantity=line.quantity, unit_price=line.unit_price,
                            vat_rate=line.vat_rate, discount_percent=line.discount_percent or Decimal(0))
                   for line in lines])
    return params, DocumentLinks(account_id=int(row.account_id), **{link: record_id})


class RecordDocuments:
    def __init__(self, engine: Engine, store: DocumentStore | None = None) -> None:
        self.engine = engine
        self.store = store or DocumentStore()

    def render(self, params: RecordDocument, context: ConnectorContext) -> dict[str, Any]:
        """Render and keep the letter; the same record rendered again is stored once (same bytes, same id)."""
        try:
            with self.engine.begin() as conn:
                letter, links = letter_for(conn, params.kind, params.record_id, datetime.now(UTC))
                content = render_pdf(letter)
                file_name = f"{params.kind}-{letter.number}.pdf".replace("/", "-")
                document_id = self._existing(conn, links, file_name) or self.store.store(
                    conn, content, file_name, "application/pdf", links, uploaded_by="silverflow")
                stored = conn.execute(sa.select(document.c.sha256).where(document.c.id == document_id)).scalar_one()
        except DomainError as exc:
            raise BusinessError("CrmRejected", str(exc), {"field": exc.field}) from None
        return {"document_id": document_id, "file_name": file_name, "number": letter.number,
                "path": str(self.store.path_of(str(stored))), "account_id": links.account_id}

    @staticmethod
    def _existing(conn: Connection, links: DocumentLinks, file_name: str) -> int | None:
        query = sa.select(document.c.id).where(document.c.file_name == file_name,
                                               document.c.account_id == links.account_id)
        return conn.execute(query.order_by(document.c.id)).scalar()


def register(registry: Registry, engine: Engine, store: DocumentStore | None = None) -> None:
    registry.register("document.for_record", RecordDocuments(engine, store).render, RecordDocument)
