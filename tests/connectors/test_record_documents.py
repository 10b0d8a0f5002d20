"""``document.for_record``: the letter of a CRM record, with the CRM's numbers, kept once per record."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from connectors import record_documents
from connectors.registry import BusinessError, ConnectorContext, Registry
from crm.accounts import ContactInput, add_address, create_account, create_contact
from crm.documents import DocumentStore
from crm.positions import PositionInput
from crm.products import ProductInput, create_product
from crm.quotes import create_quote
from crm.schema import document, quote
from engine.database import create_db_engine


@pytest.fixture
def setup(db_url: str, tmp_path: Path) -> Iterator[tuple[Registry, sa.engine.Engine]]:
    engine = create_db_engine(db_url)
    registry = Registry()
    record_documents.register(registry, engine, DocumentStore(tmp_path))
    yield registry, engine
    engine.dispose()


def test_quote_letter_with_a_fixed_discount_keeps_the_crm_total(setup: tuple[Registry, sa.engine.Engine]) -> None:
    registry, engine = setup
    with engine.begin() as conn:
        account = create_account(conn, "Weber", legal_form="GmbH")
        add_address(conn, account, kind="billing", street="Ring 2", postal_code="50667", city="Köln")
        person = create_contact(conn, ContactInput(last_name="Weber", first_name="Eva", salutation="Frau"), account)
        rack = create_product(conn, ProductInput("RACK", "Housing 1 HE", "housing", "recurring_monthly",
                                                 Decimal("49.00")))
        quote_id = create_quote(conn, account, [PositionInput(Decimal(2), rack, discount_amount=Decimal("8.00"))],
                                date.today() + timedelta(days=30), contact_id=person)
        gross = conn.execute(sa.select(quote.c.gross).where(quote.c.id == quote_id)).scalar_one()
    context = ConnectorContext("job-1", "instance", "pdf")
    first = registry.run("document.for_record", {"kind": "quote", "record_id": quote_id}, context)
    again = registry.run("document.for_record", {"kind": "quote", "record_id": quote_id}, context)
    assert again == first
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(Path(first["path"]).read_bytes())).pages)
    assert "Weber GmbH" in text and "Eva Weber" in text and "Sehr geehrte Frau Weber" in text
    assert "Rabatt auf Pos. 1" in text and f"{gross:.2f}".replace(".", ",") in text
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(document)).scalar() == 1
    with pytest.raises(BusinessError) as missing:
        registry.run("document.for_record", {"kind": "order_confirmation", "record_id": 999}, context)
    assert missing.value.code == "CrmRejected"


def test_quote_and_order_confirmation_sum_one_off_monthly_and_yearly_apart(
        setup: tuple[Registry, sa.engine.Engine]) -> None:
    """A customer reads what they pay once, every month and every year — never one mixed total — with the quote's
    real validity date, German percentages and the legal form once."""
    from crm import orders, quotes

    registry, engine = setup
    valid_until = date.today() + timedelta(days=12)
    with engine.begin() as conn:
        account = create_account(conn, "Bergmann Kanzlei e.K.", legal_form="e.K.")
        add_address(conn, account, kind="billing", street="Markt 1", postal_code="04109", city="Leipzig")
        dsl = create_product(conn, ProductInput("DSL", "DSL 100", "access", "recurring_monthly", Decimal("40.00")))
        domain = create_product(conn, ProductInput("DOM", "Domain .de", "domain", "recurring_yearly",
                                                   Decimal("12.00")))
        setup_fee = create_product(conn, ProductInput("SET", "Einrichtung", "access", "setup_fee", Decimal("100.00")))
        lines = [PositionInput(Decimal(1), dsl, discount_percent=Decimal("12.5")), PositionInput(Decimal(1), domain),
                 PositionInput(Decimal(1), setup_fee)]
        quote_id = create_quote(conn, account, lines, valid_until)
        quotes.send_quote(conn, quote_id)
        quotes.accept_quote(conn, quote_id)
        order_id = orders.create_order_from_quote(conn, quote_id)
    context = ConnectorContext("job-2", "instance", "pdf")
    for kind, record in (("quote", quote_id), ("order_confirmation", order_id)):
        letter = registry.run("document.for_record", {"kind": kind, "record_id": record}, context)
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(Path(letter["path"]).read_bytes())).pages)
        assert "Bergmann Kanzlei e.K." in text and "e.K. e.K." not in text, kind
        assert "12,5 %" in text and "12.5" not in text and "19 %" in text, kind
        # 40,00 − 12,5 % = 35,00 monthly (41,65 gross); 12,00 yearly (14,28); 100,00 once (119,00)
        for label, net, gross in (("einmalig", "100,00", "119,00"), ("monatlich", "35,00", "41,65"),
                                  ("jährlich", "12,00", "14,28")):
            assert re.search(rf"Summe {label} netto\s+{net} €", text), (kind, label)
            assert re.search(rf"Gesamt {label}\s+{gross} €", text), (kind, label)
        assert "Gesamtbetrag" not in text and "174,93" not in text, kind  # no total of unlike amounts
        if kind == "quote":
            assert f"gilt bis zum {valid_until:%d.%m.%Y}" in text and "30 Tage" not in text
