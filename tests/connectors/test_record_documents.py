"""``document.for_record``: the letter of a CRM record, with the CRM's numbers, kept once per record."""

from __future__ import annotations

import io
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
