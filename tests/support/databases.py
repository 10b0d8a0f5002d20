"""Fresh, migrated databases for tests: SQLite files and PostgreSQL databases cloned from a template."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import sqlalchemy as sa

from api.cli import migrate_database

PROJECT_ROOT = Path(__file__).resolve().parents[2]
migrate = migrate_database


class SqliteFactory:
    """Migrates one template file per session and copies it for every test (much faster than migrating)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.template = workdir / "template.db"
        migrate(f"sqlite:///{self.template}")
        self._counter = itertools.count()

    def create(self) -> str:
        target = self.workdir / f"test-{next(self._counter)}.db"
        shutil.copyfile(self.template, target)
        return f"sqlite:///{target}"


class PostgresFactory:
    """Migrates a template database once; each test gets ``CREATE DATABASE … TEMPLATE`` (tens of ms)."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE silverflow_template"))
        template_url = self._url("silverflow_template")
        migrate(template_url)
        sa.create_engine(template_url).dispose()
        self._counter = itertools.count()

    def _url(self, name: str) -> str:
        return self.server_url.rsplit("/", 1)[0] + f"/{name}"

    def create(self) -> str:
        name = f"test_{next(self._counter)}"
        with self.admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name} TEMPLATE silverflow_template"))
        return self._url(name)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with self.admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

    def close(self) -> None:
        self.admin.dispose()
