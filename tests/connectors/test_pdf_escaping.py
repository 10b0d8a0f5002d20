"""Markup in names stays text in every PDF: ReportLab's Paragraph reads its text as markup, so an account named
``Firma <img src=…>`` embedded a file from the server's disk in the quote mailed to the customer, and ``A<B``
answered 500 (issue 21)."""

from __future__ import annotations

import io
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pypdf
import pytest
import segno

from connectors.documents import KINDS, Address, DocumentParams, Position, Sender, para_text, render_pdf


def _hostile(image: Path) -> list[str]:
    return [f'Firma <img src="{image}" width="400" height="300"/>', "Firma A<B", "Müller & Söhne", "<b>x</b>",
            '<font size="40" color="red">laut</font>', "&amp; &lt;", "<para>p</para>", "a > b", "<br/>Zeile",
            "]]> <!-- c --> <?pi?>", '"quoted" \'single\'', "<a href=\"javascript:alert(1)\">link</a>"]


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_field_renders_literally_and_embeds_nothing(kind: str, tmp_path: Path) -> None:
    image = tmp_path / "secret.png"
    segno.make("server file").save(str(image), kind="png", scale=10)
    hostile = _hostile(image)
    strings = iter(hostile * 3)
    positions = [Position(description=next(strings), quantity=Decimal(1), unit_price=Decimal("10.00"))
                 for _ in range(3)]
    params = DocumentParams(
        kind=kind, number=next(strings), date=date(2026, 3, 2), customer_number=next(strings),  # type: ignore[arg-type]
        recipient=Address(name=next(strings), street=next(strings), city=next(strings), extra=next(strings)),
        salutation=next(strings), intro=next(strings), positions=positions,
        sender=Sender(name=next(strings), street=next(strings), city=next(strings)))
    reader = pypdf.PdfReader(io.BytesIO(render_pdf(params)))
    text = _squash("".join(page.extract_text() for page in reader.pages))
    for value in hostile:
        assert _squash(value) in text, value
    images = [image for page in reader.pages for image in page.images]
    # only the GiroCode of invoices and reminders, never the file named in the text
    assert len(images) == (1 if kind in ("invoice", "reminder") else 0)


def test_para_text_escapes_markup() -> None:
    assert para_text('A<B & "c"') == 'A&lt;B &amp; "c"'
