"""Gap-free invoice numbers under concurrency, and a rolled-back invoice gives its number back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date
from decimal import Decimal as D

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from crm.accounts import create_account
from crm.invoices import create_invoice
from crm.positions import PositionInput
from crm.schema import invoice
from engine.database import create_db_engine

THREADS = 16
PER_THREAD = 6
LINE = [PositionInput(D("1"), description="Housing 1 HE", unit_price=D("49.00"), vat_rate=D("19"))]


@pytest.fixture(params=["engine-settings", "plain"])
def any_engine(request: pytest.FixtureRequest, db_url: str) -> Iterator[Engine]:
    """The engine's connection settings (BEGIN IMMEDIATE on SQLite) and a plain SQLAlchemy engine: the
    numbering must not depend on how the caller opens transactions."""
    if request.param == "plain":
        args = (
            {"connect_args": {"timeout": 30, "check_same_thread": False}}
            if db_url.startswith("sqlite")
            else {}
        )
        eng = sa.create_engine(db_url, **args)  # type: ignore[arg-type]
    else:
        eng = create_db_engine(db_url)
    yield eng
    eng.dispose()


def test_parallel_invoices_get_numbers_without_gap_or_duplicate(any_engine: Engine) -> None:
    """16 threads create invoices at once; every third transaction rolls back after drawing its number."""
    with any_engine.begin() as conn:
        account_id = create_account(conn, "Parallel GmbH")
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []
    committed: list[int] = []

    def work(thread: int) -> None:
        try:
            barrier.wait()
            for n in range(PER_THREAD):
                with any_engine.connect() as conn, conn.begin() as transaction:
                    invoice_id = create_invoice(conn, account_id, LINE, date(2026, 5, 1))
                    if (thread + n) % 3 == 0:
                        transaction.rollback()
                        continue
                committed.append(invoice_id)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with any_engine.connect() as conn:
        rows = conn.execute(
            sa.select(invoice.c.sequence, invoice.c.number).order_by(invoice.c.sequence)
        ).all()
    assert (
        len(rows)
        == len(committed)
        == THREADS * PER_THREAD
        - sum(1 for t in range(THREADS) for n in range(PER_THREAD) if (t + n) % 3 == 0)
    )
    assert [r.sequence for r in rows] == list(range(1, len(rows) + 1))
    assert rows[-1].number == f"R-2026-{len(rows):05d}"


def test_rolled_back_invoice_returns_its_number(engine: Engine) -> None:
    with engine.begin() as conn:
        account_id = create_account(conn, "Rollback GmbH")
        create_invoice(conn, account_id, LINE, date(2026, 5, 1))
    with engine.connect() as conn, conn.begin() as transaction:
        create_invoice(conn, account_id, LINE, date(2026, 5, 1))
        transaction.rollback()
    with engine.begin() as conn:
        created = create_invoice(conn, account_id, LINE, date(2026, 5, 1))
        assert (
            conn.execute(sa.select(invoice.c.number).where(invoice.c.id == created)).scalar_one()
            == "R-2026-00002"
        )
