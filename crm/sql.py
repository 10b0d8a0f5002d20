"""Dialect-specific statements the services share: one place for what differs between the databases."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


def insert_or_ignore(conn: Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """``INSERT … ON CONFLICT DO NOTHING``: True if the row was new (a concurrent twin waits, then skips)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    # RETURNING rather than rowcount, which psycopg reports as -1 for an ignored row
    stmt = insert(table).values(**values).on_conflict_do_nothing().returning(sa.literal(1))
    return conn.execute(stmt).first() is not None


class epoch_microseconds(FunctionElement[int]):  # noqa: N801 - reads like the SQL function it stands for
    """Whole microseconds since 1970 of a timestamp column, exact on both databases, so rules on durations
    (``crm.queries.sla_state``) compare integers in SQL just as Python compares ``timedelta``s."""

    type = sa.BigInteger()
    inherit_cache = True
    name = "epoch_microseconds"


@compiles(epoch_microseconds, "postgresql")
def _epoch_microseconds_postgresql(element: epoch_microseconds, compiler: SQLCompiler, **kw: Any) -> str:
    # timestamptz; EXTRACT returns an exact numeric with six decimals since PostgreSQL 14
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) * 1000000 AS BIGINT)"


@compiles(epoch_microseconds, "sqlite")
def _epoch_microseconds_sqlite(element: epoch_microseconds, compiler: SQLCompiler, **kw: Any) -> str:
    # text 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC (SQLAlchemy always writes six digits); julianday() would round
    value = compiler.process(element.clauses, **kw)
    return f"(CAST(strftime('%s', {value}) AS INTEGER) * 1000000 + CAST(substr({value}, 21, 6) AS INTEGER))"
