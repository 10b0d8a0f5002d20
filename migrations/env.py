"""Alembic environment: runs migrations against SILVERFLOW_DATABASE_URL (or alembic.ini's default)."""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context

from api.identity import metadata as identity_metadata
from connectors.ipam import metadata as ipam_metadata
from crm.schema import metadata as crm_metadata
from engine.database import create_db_engine
from engine.schema import metadata as engine_metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = [engine_metadata, identity_metadata, ipam_metadata, crm_metadata]


def database_url() -> str:
    return str(
        config.attributes.get("url")
        or os.environ.get("SILVERFLOW_DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
    )


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_db_engine(database_url())
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
