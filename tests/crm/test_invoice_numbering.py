"""Gap-free invoice numbers under concurrency, and a rolled-back invoice gives its number back."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal as D

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from crm.accounts import create_account
from crm.invoices import create_invoice
from crm.positions import PositionInput
from crm.schema import invoice

THREADS = 8
PER_THREAD = 10
LINE = [PositionInput(D("1"), description="Housing 1 HE", unit_price=D("49.00"), vat_rate=D("19"))]


def test_parallel_invoices_get_numbers_without_gap_or_duplicate(engine: Engine) -> None:
    with engine.begin() as conn:
        account_id = create_account(conn, "Parallel GmbH")
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            for _ in range(PER_THREAD):
                with engine.begin() as conn:
                    create_invoice(conn, account_id, LINE, date(2026, 5, 1))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        rows = conn.execute(sa.select(invoice.c.sequence, invoice.c.number).order_by(invoice.c.sequence)).all()
    assert [r.sequence for r in rows] == list(range(1, THREADS * PER_THREAD + 1))
    assert rows[-1].number == "R-2026-00080"


def test_rolled_back_invoice_returns_its_number(engine: Engine) -> None:
    with engine.begin() as conn:
        account_id = create_account(conn, "Rollback GmbH")
        create_invoice(conn, account_id, LINE, date(2026, 5, 1))
    conn = engine.connect()
    with conn.begin():
        create_invoice(conn, account_id, LINE, date(2026, 5, 1))
        conn.rollback()
    conn.close()
    with engine.begin() as conn:
        created = create_invoice(conn, account_id, LINE, date(2026, 5, 1))
        assert conn.execute(sa.select(invoice.c.number).where(invoice.c.id == created)).scalar_one() == "R-2026-00002"
