"""The migrated database matches crm/schema.py (Alembic is the only source of the schema)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from crm.schema import metadata


def test_migration_matches_the_crm_tables(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    # Other packages' tables are not in this metadata and show up as "remove_table"; every CRM table is crm_*.
    assert [d for d in diff if "crm_" in repr(d)] == []
