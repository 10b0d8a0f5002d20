"""CRM fixtures: one connection in one transaction on a fresh migrated database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy.engine import Connection, Engine

from crm.accounts import create_account
from crm.products import ProductInput, create_product
from engine.database import create_db_engine

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TODAY = date(2026, 3, 2)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_db_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as connection:
        yield connection


@pytest.fixture
def catalogue(conn: Connection) -> dict[str, int]:
    """A few products: access line with IP, modem (hardware), setup fee (nothing to provision)."""
    items = [
        ProductInput("ADSL50", "ADSL 50", "access", "recurring_monthly", Decimal("39.90"),
                     provisioning_steps=("ip",)),
        ProductInput("MODEM", "Modem FritzBox", "hardware", "hardware", Decimal("149.00"),
                     provisioning_steps=("hardware",)),
        ProductInput("SETUP", "Einrichtung", "access", "setup_fee", Decimal("99.00")),
        ProductInput("BOOK", "Handbuch", "hardware", "hardware", Decimal("10.00"), vat_rate=Decimal("7.00")),
    ]
    return {p.code: create_product(conn, p) for p in items}


@pytest.fixture
def account_id(conn: Connection) -> int:
    return create_account(conn, "Muster GmbH", legal_form="GmbH", sla_class="gold", now=NOW)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; all stored ones are UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
