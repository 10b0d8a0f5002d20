"""CRM fixtures on migrated databases, SQLite and PostgreSQL.

``conn`` is one transaction on a database shared by the session, rolled back after each test: each test
sees an empty CRM and the suite stays fast. Tests that commit (concurrency, demo data across connections) use
``engine`` on a fresh database of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy.engine import Connection, Engine

from crm.accounts import create_account
from crm.products import ProductInput, create_product
from engine.database import create_db_engine
from tests.conftest import BACKENDS

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TODAY = date(2026, 3, 2)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_db_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def shared_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """One migrated database per backend for the whole session (tests never commit into it)."""
    factory = "sqlite_factory" if request.param == "sqlite" else "postgres_factory"
    url = request.getfixturevalue(factory).create()
    eng = create_db_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture
def conn(shared_engine: Engine) -> Iterator[Connection]:
    with shared_engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


@pytest.fixture
def catalogue(conn: Connection) -> dict[str, int]:
    """A few products: access line with IP, modem (hardware), setup fee (nothing to provision)."""
    items = [
        ProductInput(
            "ADSL50", "ADSL 50", "access", "recurring_monthly", Decimal("39.90"), provisioning_steps=("ip",)
        ),
        ProductInput(
            "MODEM",
            "Modem FritzBox",
            "hardware",
            "hardware",
            Decimal("149.00"),
            provisioning_steps=("hardware",),
        ),
        ProductInput("SETUP", "Einrichtung", "access", "setup_fee", Decimal("99.00")),
        ProductInput("BOOK", "Handbuch", "hardware", "hardware", Decimal("10.00"), vat_rate=Decimal("7.00")),
    ]
    return {p.code: create_product(conn, p) for p in items}


@pytest.fixture
def account_id(conn: Connection) -> int:
    return create_account(conn, "Muster GmbH", legal_form="GmbH", sla_class="gold", now=NOW)
