"""``document.for_record``: the business letter of a CRM record (quote, order confirmation), rendered and kept.

The letter's data come from the CRM — the account's billing address, its number, the record's positions — so a
process only names the record. The PDF is stored as a document on the account, linked to the record, and the
result is what ``mail.send`` attaches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Connection, Engine

from crm.accounts import contact_salutation, display_name, get_account
from crm.documents import DocumentLinks, DocumentStore
from crm.errors import DomainError
from crm.positions import periods_of
from crm.positions import read as read_positions
from crm.schema import address, contact, document, order, order_position, quote, quote_position

from .documents import Address, DocumentParams, positions_of, render_pdf
from .registry import BusinessError, ConnectorContext, Registry

_RECORDS = {"quote": (quote, quote_position, "quote_id"), "order_confirmation": (order, order_position, "order_id")}
GREETING = "Sehr geehrte Damen und Herren,"


class RecordDocument(BaseModel):
    kind: Literal["quote", "order_confirmation"]
    record_id: int


def _intro(kind: str, row: Any) -> str:
    if kind == "quote":
        return (f"vielen Dank für Ihr Interesse. Gerne bieten wir Ihnen an (gültig bis "
                f"{row.valid_until.strftime('%d.%m.%Y')}):")
    return "vielen Dank für Ihren Auftrag, den wir hiermit wie folgt bestätigen:"


def recipient_of(conn: Connection, account_id: int, contact_id: int | None) -> tuple[Address, str]:
    """The address window (billing address, else any; the contact person on its own line) and the salutation."""
    account = get_account(conn, account_id)
    name = display_name(str(account.name), account.legal_form)
    chosen = conn.execute(sa.select(address).where(address.c.account_id == account_id)
                          .order_by(sa.case((address.c.kind == "billing", 0), else_=1), address.c.id)).first()
    recipient = Address(name=name)
    if chosen is not None:
        recipient.street = str(chosen.street)
        recipient.city = f"{chosen.postal_code} {chosen.city}"
    person = conn.execute(sa.select(contact).where(contact.c.id == contact_id)).one_or_none() \
        if contact_id is not None else None
    if person is None:
        return recipient, GREETING
    recipient.extra = " ".join(str(x) for x in (person.academic_title, person.first_name, person.last_name) if x)
    return recipient, contact_salutation(conn, int(person.id)) + ","


def letter_for(conn: Connection, kind: str, record_id: int) -> tuple[DocumentParams, DocumentLinks]:
    """The business letter of a quote or an order (confirmation), dated when the record was made."""
    table, positions, link = _RECORDS[kind]
    row = conn.execute(sa.select(table).where(table.c.id == record_id)).one_or_none()
    if row is None:
        raise DomainError("record_id", f"{kind} record {record_id} does not exist")
    contact_id = row.contact_id if kind == "quote" else conn.execute(
        sa.select(quote.c.contact_id).where(quote.c.id == row.quote_id)).scalar()
    recipient, salutation = recipient_of(conn, int(row.account_id), contact_id)
    number = str(row.number) + (f" v{row.version}" if kind == "quote" and row.version > 1 else "")
    lines = read_positions(conn, positions, link, record_id)
    params = DocumentParams(
        kind=kind, number=number, date=row.created_at.date(),  # type: ignore[arg-type]
        customer_number=str(get_account(conn, int(row.account_id)).number), recipient=recipient,
        salutation=salutation, intro=_intro(kind, row),
        positions=positions_of(lines, periods_of(conn, lines)),
        valid_until=row.valid_until if kind == "quote" else None)
    return params, DocumentLinks(account_id=int(row.account_id), **{link: record_id})


class RecordDocuments:
    def __init__(self, engine: Engine, store: DocumentStore | None = None) -> None:
        self.engine = engine
        self.store = store or DocumentStore()

    def render(self, params: RecordDocument, context: ConnectorContext) -> dict[str, Any]:
        """Render and keep the letter; a record whose letter is already kept gets that one (a retried job)."""
        try:
            with self.engine.begin() as conn:
                kept = keep_letter(conn, params.kind, params.record_id, "silverflow", self.store)
        except DomainError as exc:
            raise BusinessError("CrmRejected", str(exc), {"field": exc.field}) from None
        return {"document_id": kept.document_id, "file_name": kept.file_name, "number": kept.number,
                "path": str(self.store.path_of(kept.sha256)), "account_id": kept.account_id}


@dataclass(frozen=True)
class KeptLetter:
    document_id: int
    file_name: str
    number: str
    sha256: str
    account_id: int | None


def keep_letter(conn: Connection, kind: str, record_id: int, kept_by: str,
                store: DocumentStore | None = None) -> KeptLetter:
    """The letter of record of a quote, order or invoice, rendered and kept once: whoever asks again (a retried
    job, the quote page's "Senden" after the process) gets the kept one. The one reuse rule for letters."""
    store = store or DocumentStore()
    letter, links = letter_for(conn, kind, record_id)
    file_name = f"{kind}-{letter.number}.pdf".replace("/", "-")
    existing = conn.execute(sa.select(document.c.id).where(document.c.file_name == file_name,
                                                           document.c.account_id == links.account_id)
                            .order_by(document.c.id)).scalar()
    document_id = existing or store.store(conn, render_pdf(letter), file_name, "application/pdf", links,
                                          uploaded_by=kept_by)
    sha256 = conn.execute(sa.select(document.c.sha256).where(document.c.id == document_id)).scalar_one()
    return KeptLetter(int(document_id), file_name, str(letter.number), str(sha256), links.account_id)


def register(registry: Registry, engine: Engine, store: DocumentStore | None = None) -> None:
    registry.register("document.for_record", RecordDocuments(engine, store).render, RecordDocument)
