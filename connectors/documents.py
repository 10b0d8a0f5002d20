"""``document.render``: quotes, order confirmations, invoices and reminders as PDF business letters.

DIN 5008 form B layout: letterhead, return address line and address window at the standard position, an
information block (number, date, customer number), a positions table whose header repeats on every page,
net/VAT per rate/gross totals, payment terms and page numbers. Invoices and reminders carry an EPC QR code
("GiroCode", via ``segno``) so a banking app can fill in the SEPA transfer. Amounts arrive as decimal
strings and are never turned into floats.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import os
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import escape

import segno
from pydantic import BaseModel, Field
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from .registry import ConnectorContext, Registry

CENT = Decimal("0.01")
KINDS = {"quote": "Angebot", "order_confirmation": "Auftragsbestätigung", "invoice": "Rechnung",
         "reminder": "Zahlungserinnerung"}


class Sender(BaseModel):
    name: str = "Silverflow Net GmbH"
    street: str = "Musterstraße 1"
    city: str = "10115 Berlin"
    phone: str = "+49 30 1234567"
    email: str = "vertrieb@silverflow.example"
    vat_id: str = "DE123456789"
    iban: str = "DE02120300000000202051"
    bic: str = "BYLADEM1001"
    bank: str = "Beispielbank"


class Address(BaseModel):
    name: str
    street: str = ""
    city: str = ""
    extra: str | None = None


class Position(BaseModel):
    description: str
    quantity: Decimal = Field(gt=0)
    unit_price: Decimal
    vat_rate: Decimal = Decimal("19")
    discount_percent: Decimal = Decimal("0")
    period: str = Field(default="once", pattern="^(once|monthly|yearly)$")


PERIOD_LABELS = {"once": "einmalig", "monthly": "monatlich", "yearly": "jährlich"}


def positions_of(lines: Sequence[Mapping[str, Any]], periods: Sequence[str] | None = None) -> list[Position]:
    """Stored CRM positions for the PDF; a fixed discount amount becomes a discount line of its own, which keeps
    every rate's net (and so the VAT) exactly as the CRM computed it. ``periods`` (``crm.positions.periods_of``)
    says per line how often it is paid; its discount line goes with it."""
    result = []
    for index, line in enumerate(lines):
        period = periods[index] if periods is not None else "once"
        result.append(Position(description=line["description"], quantity=line["quantity"],
                               unit_price=line["unit_price"], vat_rate=line["vat_rate"],
                               discount_percent=line["discount_percent"] or Decimal(0), period=period))
        if line["discount_amount"]:
            result.append(Position(description=f"Rabatt auf Pos. {line['line_no']}", quantity=Decimal(1),
                                   unit_price=-line["discount_amount"], vat_rate=line["vat_rate"], period=period))
    return result


class DocumentParams(BaseModel):
    kind: Literal["quote", "order_confirmation", "invoice", "reminder"]
    number: str = Field(min_length=1)
    date: date
    customer_number: str | None = None
    recipient: Address
    salutation: str = "Sehr geehrte Damen und Herren,"
    intro: str | None = None
    positions: list[Position] = Field(min_length=1)
    payment_days: int = Field(default=14, ge=0, le=365)
    valid_until: datetime.date | None = None  # a quote's validity, stated as the date it ends
    fee: Decimal = Decimal("0")
    sender: Sender = Field(default_factory=Sender)


class DocumentResult(BaseModel):
    file_name: str
    path: str
    sha256: str
    size: int
    net: str
    vat: dict[str, str]
    gross: str


def money(value: Decimal) -> str:
    """German format: 1.234,50 €."""
    text = f"{value.quantize(CENT, ROUND_HALF_UP):,.2f}"
    return text.replace(",", "X").replace(".", ",").replace("X", ".") + " €"


def percent(value: Decimal) -> str:
    """German format: 12,5 % (decimal comma, no trailing zeros)."""
    text = f"{value.normalize():f}"
    return text.replace(".", ",") + " %"


def position_total(position: Position) -> Decimal:
    gross = position.quantity * position.unit_price
    return (gross - gross * position.discount_percent / 100).quantize(CENT, ROUND_HALF_UP)


def totals(positions: list[Position], fee: Decimal = Decimal("0")) -> tuple[Decimal, dict[Decimal, Decimal], Decimal]:
    """Net, VAT per rate, gross; each position rounded half-up to cents first."""
    net = sum((position_total(p) for p in positions), Decimal("0")) + fee
    vat: dict[Decimal, Decimal] = {}
    for position in positions:
        vat[position.vat_rate] = vat.get(position.vat_rate, Decimal("0")) + position_total(position)
    vat_amounts = {rate: (base * rate / 100).quantize(CENT, ROUND_HALF_UP) for rate, base in sorted(vat.items())}
    return net, vat_amounts, net + sum(vat_amounts.values(), Decimal("0"))


def epc_qr(sender: Sender, amount: Decimal, reference: str) -> segno.QRCode:
    """EPC069-12 "GiroCode" payload for a SEPA credit transfer."""
    payload = "\n".join(["BCD", "002", "1", "SCT", sender.bic, sender.name[:70], sender.iban.replace(" ", ""),
                         f"EUR{amount.quantize(CENT, ROUND_HALF_UP)}", "", "", reference[:140]])
    return segno.make(payload, error="m", micro=False)


def para_text(value: str) -> str:
    """Data as literal Paragraph text: ReportLab reads Paragraph text as markup (``<img src>`` embeds a file from the
    server's disk, a stray ``<`` raises), so every value from a record, a form or a process goes through here."""
    return escape(value)


def render_pdf(params: DocumentParams) -> bytes:
    styles = getSampleStyleSheet()
    small = ParagraphStyle("small", parent=styles["Normal"], fontSize=8, leading=10)
    body = ParagraphStyle("body", parent=styles["Normal"], fontSize=10, leading=13)
    title = KINDS[params.kind]
    net, vat, gross = totals(params.positions, params.fee)
    buffer = io.BytesIO()

    def letterhead(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica-Bold", 14)
        canvas.drawString(25 * mm, 282 * mm, params.sender.name)
        canvas.setFont("Helvetica", 8)
        canvas.drawString(25 * mm, 277 * mm, f"{params.sender.street} · {params.sender.city} · "
                          f"{params.sender.phone} · {params.sender.email}")
        canvas.drawString(25 * mm, 12 * mm, f"USt-IdNr. {params.sender.vat_id} · {params.sender.bank} · "
                          f"IBAN {params.sender.iban} · BIC {params.sender.bic}")
        canvas.drawRightString(190 * mm, 12 * mm, f"Seite {doc.page}")
        canvas.restoreState()

    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=25 * mm, rightMargin=20 * mm,
                                 topMargin=45 * mm, bottomMargin=25 * mm, title=f"{title} {params.number}",
                                 author=params.sender.name)
    address_lines = [params.recipient.name, params.recipient.extra, params.recipient.street, params.recipient.city]
    info = [["Nummer", params.number], ["Datum", params.date.strftime("%d.%m.%Y")]]
    if params.customer_number:
        info.append(["Kundennummer", params.customer_number])
    story: list[Any] = [
        Paragraph(para_text(f"{params.sender.name} · {params.sender.street} · {params.sender.city}"), small),
        Table([[Paragraph("<br/>".join(para_text(line) for line in address_lines if line), body),
                Table(info, colWidths=[28 * mm, 35 * mm], style=[("FONTSIZE", (0, 0), (-1, -1), 9)])]],
              colWidths=[95 * mm, 70 * mm], style=[("VALIGN", (0, 0), (-1, -1), "TOP")]),
        Spacer(1, 12 * mm),
        Paragraph(f"<b>{para_text(f'{title} {params.number}')}</b>", styles["Heading2"]),
        Paragraph(para_text(params.salutation), body),
        Spacer(1, 3 * mm),
    ]
    if params.intro:
        story += [Paragraph(para_text(params.intro), body), Spacer(1, 4 * mm)]
    rows: list[list[Any]] = [["Pos.", "Beschreibung", "Menge", "Einzelpreis", "Rabatt", "USt.", "Gesamt"]]
    for index, position in enumerate(params.positions, start=1):
        rows.append([str(index), Paragraph(para_text(position.description), body), f"{position.quantity.normalize():f}",
                     money(position.unit_price),
                     percent(position.discount_percent) if position.discount_percent else "",
                     percent(position.vat_rate), money(position_total(position))])
    first_sum = len(rows)
    periods = [p for p in PERIOD_LABELS if any(position.period == p for position in params.positions)]
    if params.kind in ("quote", "order_confirmation") and periods != ["once"]:
        # what is paid once, every month and every year are different amounts: one sum each, never one total
        for period in periods:
            label = PERIOD_LABELS[period]
            part_net, part_vat, part_gross = totals([p for p in params.positions if p.period == period])
            rows.append(["", f"Summe {label} netto", "", "", "", "", money(part_net)])
            rows += [["", f"zzgl. {percent(rate)} USt.", "", "", "", "", money(amount)]
                     for rate, amount in part_vat.items()]
            rows.append(["", f"Gesamt {label}", "", "", "", "", money(part_gross)])
    else:
        if params.fee:
            rows.append(["", "Mahngebühr", "", "", "", "", money(params.fee)])
        if periods != ["once"]:
            rows += [["", f"davon {PERIOD_LABELS[period]} netto", "", "", "", "",
                      money(totals([p for p in params.positions if p.period == period])[0])] for period in periods]
        rows.append(["", "Summe netto", "", "", "", "", money(net)])
        rows += [["", f"zzgl. {percent(rate)} USt.", "", "", "", "", money(amount)] for rate, amount in vat.items()]
        rows.append(["", "Gesamtbetrag", "", "", "", "", money(gross)])
    table = Table(rows, colWidths=[10 * mm, 62 * mm, 15 * mm, 25 * mm, 15 * mm, 13 * mm, 25 * mm], repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"), ("FONTSIZE", (0, 0), (-1, -1), 9),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black), ("ALIGN", (2, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"), ("LINEABOVE", (0, first_sum), (-1, first_sum), 0.5, colors.grey),
        ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"), ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
    ]))
    story += [table, Spacer(1, 6 * mm)]
    if params.kind in ("invoice", "reminder"):
        due = f"Bitte überweisen Sie {money(gross)} innerhalb von {params.payment_days} Tagen unter Angabe der " \
              f"Nummer {params.number}."
        qr = io.BytesIO()
        epc_qr(params.sender, gross, params.number).save(qr, kind="png", scale=3, border=2)
        qr.seek(0)
        story += [Paragraph(para_text(due), body), Spacer(1, 3 * mm), Image(qr, width=30 * mm, height=30 * mm),
                  Paragraph("GiroCode: mit der Banking-App scannen", small)]
    elif params.kind == "quote":
        validity = f"bis zum {params.valid_until:%d.%m.%Y}" if params.valid_until else "30 Tage ab Datum"
        story.append(Paragraph(f"Dieses Angebot gilt {validity}. Wir freuen uns auf Ihren Auftrag.", body))
    else:
        story.append(Paragraph("Vielen Dank für Ihren Auftrag. Wir melden uns mit dem Liefertermin.", body))
    story += [Spacer(1, 6 * mm), Paragraph("Mit freundlichen Grüßen", body),
              Paragraph(para_text(params.sender.name), body)]
    document.build(story, onFirstPage=letterhead, onLaterPages=letterhead)
    return buffer.getvalue()


class DocumentRenderer:
    """Writes rendered PDFs under a documents directory (``SILVERFLOW_DOCUMENTS_DIR``, default var/documents)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or Path(os.environ.get("SILVERFLOW_DOCUMENTS_DIR", "var/documents"))

    def render(self, params: DocumentParams, context: ConnectorContext) -> DocumentResult:
        content = render_pdf(params)
        digest = hashlib.sha256(content).hexdigest()
        file_name = f"{params.kind}-{params.number}.pdf".replace("/", "-")
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / file_name
        path.write_bytes(content)
        net, vat, gross = totals(params.positions, params.fee)
        return DocumentResult(file_name=file_name, path=str(path), sha256=digest, size=len(content), net=str(net),
                              vat={f"{rate.normalize():f}": str(amount) for rate, amount in vat.items()},
                              gross=str(gross))


def register(registry: Registry, directory: Path | None = None) -> None:
    registry.register("document.render", DocumentRenderer(directory).render, DocumentParams, DocumentResult)
