"""PDF documents: numbers read back from the PDF text, multi-page tables, the GiroCode payload."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pypdf
import pytest
import segno

from connectors.documents import DocumentParams, DocumentRenderer, Position, Sender, epc_qr, money, totals
from connectors.registry import ConnectorContext

CONTEXT = ConnectorContext("i:t", "i", "render")


def _params(kind: str = "invoice", positions: int = 3) -> DocumentParams:
    items = [Position(description="ADSL 100 Anschluss", quantity=Decimal("1"), unit_price=Decimal("39.90")),
             Position(description="Einrichtung", quantity=Decimal("1"), unit_price=Decimal("49.00"),
                      discount_percent=Decimal("10")),
             Position(description="Router FRITZ!Box", quantity=Decimal("2"), unit_price=Decimal("0.335"),
                      vat_rate=Decimal("7"))]
    items += [Position(description=f"Rufnummer {n}", quantity=Decimal("1"), unit_price=Decimal("1.00"))
              for n in range(positions - 3)]
    return DocumentParams(kind=kind, number="R-2026-0001", date=date(2026, 11, 24), customer_number="K-1001",  # type: ignore[arg-type]
                          recipient={"name": "Müller Datentechnik GmbH", "street": "Hauptstraße 5",  # type: ignore[arg-type]
                                     "city": "80331 München"},
                          salutation="Sehr geehrter Herr Prof. Dr. Müller,", positions=items)


def _text(path: str) -> str:
    reader = pypdf.PdfReader(path)
    return "\n".join(page.extract_text() for page in reader.pages)


def test_totals_round_each_position_half_up() -> None:
    net, vat, gross = totals(_params().positions)
    # 39.90 + 44.10 (49.00 - 10 %) at 19 %; 2 × 0.335 = 0.67 at 7 %
    assert net == Decimal("84.67")
    assert vat == {Decimal("7"): Decimal("0.05"), Decimal("19"): Decimal("15.96")}
    assert gross == Decimal("100.68")
    assert money(Decimal("1234.5")) == "1.234,50 €"


def test_invoice_pdf_carries_the_numbers(tmp_path: Path) -> None:
    result = DocumentRenderer(tmp_path).render(_params(), CONTEXT)
    text = _text(result.path)
    for expected in ("Rechnung R-2026-0001", "K-1001", "24.11.2026", "Müller Datentechnik GmbH",
                     "Sehr geehrter Herr Prof. Dr. Müller,", "84,67 €", "15,96 €", "0,05 €", "100,68 €",
                     "Seite 1", "GiroCode"):
        assert expected in text, expected
    assert result.gross == "100.68" and result.size == len(Path(result.path).read_bytes())
    assert len(result.sha256) == 64


def test_long_tables_repeat_their_header_on_every_page(tmp_path: Path) -> None:
    result = DocumentRenderer(tmp_path).render(_params("order_confirmation", positions=90), CONTEXT)
    reader = pypdf.PdfReader(result.path)
    assert len(reader.pages) >= 3
    for page in reader.pages:
        assert "Beschreibung" in page.extract_text()
    assert f"Seite {len(reader.pages)}" in reader.pages[-1].extract_text()


@pytest.mark.parametrize("kind, title", [("quote", "Angebot"), ("reminder", "Zahlungserinnerung")])
def test_other_kinds(tmp_path: Path, kind: str, title: str) -> None:
    params = _params(kind)
    params.fee = Decimal("5.00") if kind == "reminder" else Decimal("0")
    text = _text(DocumentRenderer(tmp_path).render(params, CONTEXT).path)
    assert f"{title} R-2026-0001" in text
    if kind == "reminder":
        assert "Mahngebühr" in text and "105,68 €" in text  # net 84.67 + 5.00 fee, VAT unchanged


def test_girocode_payload() -> None:
    """The QR code encodes exactly the EPC069-12 lines a banking app expects."""
    qr = epc_qr(Sender(), Decimal("100.68"), "R-2026-0001")
    payload = "\n".join(["BCD", "002", "1", "SCT", Sender().bic, Sender().name, Sender().iban, "EUR100.68", "", "",
                         "R-2026-0001"])
    assert segno.make(payload, error="m", micro=False).matrix == qr.matrix
