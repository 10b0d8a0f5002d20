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
    assert first["crm_quote"] and first["crm_order"] and first["crm_sub_order"] and first["crm_incident"]
    assert load_demo_data(conn) == {"products": 0, "accounts": 0}
    assert _snapshot(conn) == first


def test_demo_data_is_deterministic(conn: Connection, sqlite_url: str) -> None:
    load_demo_data(conn)
    other = create_db_engine(sqlite_url)
    with other.begin() as second:
        load_demo_data(second)
        names = list(second.execute(sa.select(schema.account.c.number, schema.account.c.name)
                                    .order_by(schema.account.c.id)))
    other.dispose()
    assert names == list(conn.execute(sa.select(schema.account.c.number, schema.account.c.name)
                                      .order_by(schema.account.c.id)))
