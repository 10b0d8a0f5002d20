"""Demo data is deterministic and idempotent."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crm import schema
from crm.demo import ACCOUNT_COUNT, PRODUCTS, load_demo_data
from engine.database import create_db_engine


def _snapshot(conn: Connection) -> dict[str, list[tuple[object, ...]]]:
    """Every CRM row without volatile columns (none are volatile: the demo uses fixed dates)."""
    return {
        name: [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]
        for name, table in schema.metadata.tables.items()
    }


def test_demo_data_is_believable_and_idempotent(conn: Connection) -> None:
    assert load_demo_data(conn) == {"products": len(PRODUCTS), "accounts": ACCOUNT_COUNT}
    first = _snapshot(conn)
    assert len(first["crm_product"]) == 15
    assert len(first["crm_account"]) == ACCOUNT_COUNT
    assert len(first["crm_contact"]) >= ACCOUNT_COUNT
    for table in (
        "crm_quote",
        "crm_order",
        "crm_sub_order",
        "crm_incident",
        "crm_booked_service",
        "crm_contract",
        "crm_opportunity",
        "crm_activity",
        "crm_appointment",
        "crm_campaign_member",
    ):
        assert first[table], table
    assert [row[1] for row in first["crm_campaign"]] == ["it-sa 2025"]
    assert {row[0] for row in first["crm_address"]} and len(first["crm_address"]) == 2 * ACCOUNT_COUNT
    assert load_demo_data(conn) == {"products": 0, "accounts": 0}
    assert _snapshot(conn) == first


def test_demo_data_is_deterministic(conn: Connection, sqlite_url: str) -> None:
    load_demo_data(conn)
    other = create_db_engine(sqlite_url)
    with other.begin() as second:
        load_demo_data(second)
        names = list(
            second.execute(
                sa.select(schema.account.c.number, schema.account.c.name).order_by(schema.account.c.id)
            )
        )
    other.dispose()
    assert names == list(
        conn.execute(sa.select(schema.account.c.number, schema.account.c.name).order_by(schema.account.c.id))
    )
