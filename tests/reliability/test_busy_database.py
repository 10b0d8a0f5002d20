"""A writer that holds the embedded database: readers carry on, other writers get a clear 503, never a 500.

The long writer is a second real SQLite connection holding ``BEGIN IMMEDIATE`` with a write in it, the
way a long engine step does; the app is served by a real Uvicorn.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from engine.database import BUSY_SECONDS_VARIABLE, Database
from engine.schema import worker_heartbeat
from tests.engine.conftest import bpmn
from tests.support.live_app import Api, live_app

pytestmark = pytest.mark.reliability


@contextmanager
def write_lock_held(url: str) -> Iterator[None]:
    conn = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE worker_heartbeat SET pid = pid")
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


@pytest.fixture
def busy_api(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setenv(BUSY_SECONDS_VARIABLE, "0.5")
    with live_app(sqlite_url) as running:
        yield running


def test_reads_never_wait_for_a_writer(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    with write_lock_held(sqlite_url):
        started = time.monotonic()
        with database.read() as conn:
            conn.execute(sa.select(sa.func.count()).select_from(worker_heartbeat)).scalar_one()
        assert time.monotonic() - started < 0.2
    database.dispose()


def test_a_held_write_lock_answers_503_with_retry_after_and_reads_go_on(busy_api: Api) -> None:
    client = busy_api.client("designer")
    assert client.post("/deployments", files=[("files", bpmn("reference.bpmn")[0])]).status_code == 201
    starter = busy_api.client("admin")
    with write_lock_held(busy_api.engine.db.url):
        started = time.monotonic()
        health = client.get("/health")
        assert health.status_code == 200 and time.monotonic() - started < 0.5, health.text
        assert client.get("/process-definitions").status_code == 200
        refused = starter.post("/process-definitions/reference/instances", json={"variables": {"amount": 1}})
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"].endswith("/database-busy")
        assert int(refused.headers["retry-after"]) >= 1
    accepted = starter.post("/process-definitions/reference/instances", json={"variables": {"amount": 1}})
    assert accepted.status_code == 201, accepted.text


def test_health_is_degraded_while_no_worker_beats(busy_api: Api) -> None:
    client = busy_api.client("admin")
    assert client.get("/health").json()["status"] == "ok"
    with busy_api.engine.db.transaction() as conn:  # as if every worker had stopped a minute ago
        conn.execute(worker_heartbeat.update().values(last_seen=sa.func.datetime("now", "-60 seconds")))
    stale = client.get("/health")
    assert stale.status_code == 503 and stale.headers["retry-after"]
    body = stale.json()
    assert body["status"] == "degraded" and "no worker heartbeat" in body["problems"][0]
    deadline = time.monotonic() + 10
    while client.get("/health").status_code != 200:  # the embedded worker's next beat heals it
        assert time.monotonic() < deadline, "the worker did not beat again"
        time.sleep(0.1)
