"""Shared fixtures: migrated databases on SQLite and on a throw-away PostgreSQL cluster.

Set SILVERFLOW_TEST_PG=required (CI does) to fail instead of skipping when PostgreSQL cannot start.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import PostgresFactory, SqliteFactory
from tests.support.pgcluster import PostgresUnavailable, postgres_cluster

BACKENDS = ["sqlite", "postgresql"]

# The suite's external systems are real servers on loopback (HTTP partners, webhook receivers, simulators), which
# the outbound policy denies by default (connectors/outbound.py): allow loopback explicitly, for this process and
# the worker/server subprocesses tests start. Tests of the policy itself override it with monkeypatch.
os.environ.setdefault("SILVERFLOW_OUTBOUND_ALLOW", "127.0.0.1,::1,localhost")


@pytest.fixture(scope="session")
def sqlite_factory(tmp_path_factory: pytest.TempPathFactory) -> SqliteFactory:
    return SqliteFactory(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session")
def postgres_factory() -> Iterator[PostgresFactory]:
    try:
        with postgres_cluster() as server_url:
            factory = PostgresFactory(server_url)
            yield factory
            factory.close()
    except PostgresUnavailable as exc:
        if os.environ.get("SILVERFLOW_TEST_PG") == "required":
            pytest.fail(f"PostgreSQL is required but unavailable: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh migrated database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_factory").create()
        return
    factory: PostgresFactory = request.getfixturevalue("postgres_factory")
    url = factory.create()
    yield url
    factory.drop(url)


@pytest.fixture
def sqlite_url(sqlite_factory: SqliteFactory) -> str:
    return sqlite_factory.create()


BPMN_DIR = Path(__file__).parent / "engine" / "bpmn"
