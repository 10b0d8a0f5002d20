"""The migrated database matches crm/schema.py (Alembic is the only source of the schema)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from crm.schema import metadata
from tests.support.databases import PROJECT_ROOT


def test_migration_matches_the_crm_tables(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    # Other packages' tables are not in this metadata and show up as "remove_table"; every CRM table is crm_*.
    assert [d for d in diff if "crm_" in repr(d)] == []


def _alembic(url: str, action: str, revision: str) -> None:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["url"] = url
    config.attributes["configure_logging"] = False
    getattr(command, action)(config, revision)


def test_lifecycle_migration_fills_existing_accounts_and_downgrades(db_url: str) -> None:
    """0007 adds NOT NULL columns to crm_account: existing rows get their search key; it downgrades."""
    _alembic(db_url, "downgrade", "0006")
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO crm_account (number, name, status, sla_class, created_at) "
                "VALUES ('K-10001', 'Müller  Straße GmbH', 'customer', 'gold', :at)"
            ),
            {"at": datetime.now(UTC)},
        )
    _alembic(db_url, "upgrade", "head")
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT name_key, kind FROM crm_account")).one()
    assert tuple(row) == ("müller strasse gmbh", "business")
    _alembic(db_url, "downgrade", "0006")
    _alembic(db_url, "upgrade", "head")
    engine.dispose()
