"""Alembic is the only source of the schema: the migrated database must match engine/schema.py."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine.schema import metadata


def test_migrations_match_the_table_definitions(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    engine_tables = set(metadata.tables)
    relevant = [d for d in diff if _table_of(d) in engine_tables]
    assert relevant == []


def _table_of(change: object) -> str | None:
    item = change[0] if isinstance(change, list) else change
    for part in item[1:] if isinstance(item, tuple) else ():
        table = getattr(part, "table", None)
        if table is not None:
            return str(table.name)
        name = getattr(part, "name", None)
        if isinstance(part, sa.Table) and name:
            return str(name)
        if isinstance(part, str):
            return part
    return None
