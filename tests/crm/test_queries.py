"""CRM read models on the demo data: account search, the 360° view, the catalogue, incidents by SLA state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from crm.demo import load_demo_data
from crm.queries import account_360, incidents_by_sla, list_products, search_accounts, sla_state
from crm.schema import incident
from engine.database import create_db_engine


def test_search_and_360_view(db_url: str) -> None:
    engine = create_db_engine(db_url)
    with engine.begin() as conn:
        load_demo_data(conn)
        everyone, total = search_accounts(conn, limit=5)
        assert total >= 20 and len(everyone) == 5
        first = everyone[0]
        found, count = search_accounts(conn, first["name"][:4].lower())
        assert count >= 1 and first["id"] in [a["id"] for a in found]
        by_number, _ = search_accounts(conn, first["number"])
        assert [a["id"] for a in by_number] == [first["id"]]
        with_quotes = next(
            a for a in search_accounts(conn, limit=100)[0] if account_360(conn, a["id"]).quotes
        )
        view = account_360(conn, with_quotes["id"])
        assert view.account["number"] == with_quotes["number"] and view.contacts and view.addresses
        assert all(
            c["letter_salutation"].startswith(("Sehr geehrte", "Guten Tag", "Dear")) for c in view.contacts
        )
        assert all(q["gross"] > 0 for q in view.quotes)
        products = list_products(conn)
        assert len(products) >= 15 and {"code", "list_price", "kind"} <= set(products[0])
    engine.dispose()


def test_sla_states(db_url: str) -> None:
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    opened = now - timedelta(hours=9)
    assert sla_state(opened, now + timedelta(hours=1), now) == "at_risk"  # 1 of 10 hours left
    assert sla_state(opened, now + timedelta(hours=5), now) == "within"
    assert sla_state(opened, now - timedelta(minutes=1), now) == "breached"
    engine = create_db_engine(db_url)
    with engine.begin() as conn:
        load_demo_data(conn)
        open_count = conn.execute(
            sa.select(sa.func.count())
            .select_from(incident)
            .where(incident.c.status.in_(("new", "assigned", "pending")))
        ).scalar_one()
        counts = incidents_by_sla(conn, datetime.now(UTC))
        assert sum(counts.values()) == open_count and set(counts) == {"within", "at_risk", "breached"}
    engine.dispose()
