"""Gap-free document numbers: one counter row per (kind, year), incremented inside the caller's transaction.

``UPDATE … SET value = value + 1 … RETURNING value`` takes the row lock (PostgreSQL) or runs under the
writer lock (SQLite, BEGIN IMMEDIATE), so concurrent transactions queue on the counter: a rolled-back
invoice gives its number back, a committed one keeps it, and no two ever share one. The row is created with
``INSERT … ON CONFLICT DO NOTHING`` so the first two writers of a new year cannot collide either.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from .schema import counter
from .sql import insert_or_ignore

NO_YEAR = 0


def next_value(conn: Connection, kind: str, year: int = NO_YEAR) -> int:
    """The next number of ``kind`` in ``year`` (1, 2, 3 … without gaps once committed)."""
    insert_or_ignore(conn, counter, {"kind": kind, "year": year, "value": 0})
    stmt = (
        counter.update()
        .where(counter.c.kind == kind, counter.c.year == year)
        .values(value=counter.c.value + 1)
        .returning(counter.c.value)
    )
    return int(conn.execute(stmt).scalar_one())


def yearly_number(conn: Connection, kind: str, prefix: str, year: int) -> tuple[str, int]:
    """E.g. ``R-2026-00001``; returns the formatted number and the sequence within the year."""
    value = next_value(conn, kind, year)
    return f"{prefix}-{year}-{value:05d}", value
