"""Dialect-specific statements the services share: one place for what differs between the databases."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert_or_ignore(conn: Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """``INSERT … ON CONFLICT DO NOTHING``: True if the row was new (a concurrent twin waits, then skips)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    # RETURNING rather than rowcount, which psycopg reports as -1 for an ignored row
    stmt = insert(table).values(**values).on_conflict_do_nothing().returning(sa.literal(1))
    return conn.execute(stmt).first() is not None
