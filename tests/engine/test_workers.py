"""Worker processes for real: a kill -9 in the middle loses nothing, and parallel workers never run a job twice.

A loopback HTTP server stands in for an external system. It counts calls per Idempotency-Key and applies
each key's effect once, the way a well-behaved external API does; the connector may repeat a call after a
crash, but only with the same key.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from api.services import ConnectorGateway
from connectors import default_registry
from engine.database import Database
from engine.runtime import Engine
from engine.schema import process_instance
from tests.engine.conftest import bpmn
from tests.support.counting_server import CountingServer

ROOT = Path(__file__).parents[2]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = Engine(Database(db_url), ConnectorGateway(default_registry()))
    eng.deploy(bpmn("jobs_http.bpmn"))
    yield eng
    eng.db.dispose()


def _worker(url: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "api.cli", "--database-url", url, "worker", *extra],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _completed(engine: Engine) -> int:
    with engine.db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(process_instance)
                                .where(process_instance.c.state == "completed")).scalar_one())


def _wait_for(engine: Engine, count: int, timeout: float, workers: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while _completed(engine) < count:
        for worker in workers:
            if worker.poll() is not None and worker.returncode not in (0, -signal.SIGKILL, -signal.SIGTERM):
                raise AssertionError(f"worker died: {worker.stderr.read().decode() if worker.stderr else ''}")
        assert time.monotonic() < deadline, f"only {_completed(engine)} of {count} completed"
        time.sleep(0.05)


def test_kill_9_a_worker_in_the_middle_loses_nothing(engine: Engine) -> None:
    total = 200
    with CountingServer(delay=0.01) as server:
        ids = [engine.start("jobs-http", {"url": server.url, "n": n}).id for n in range(total)]
        first = _worker(engine.db.url, "--lock-seconds", "2")
        try:
            _wait_for(engine, 40, 60, [first])
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        assert _completed(engine) < total, "the kill must happen in the middle"
        second = _worker(engine.db.url, "--lock-seconds", "2")
        try:
            _wait_for(engine, total, 120, [second])
        finally:
            second.terminate()
            second.wait(timeout=30)
        assert second.returncode == 0, "SIGTERM is a graceful stop"
    assert _completed(engine) == total
    keys = {f"{i}:" for i in ids}
    assert len(server.effects) == total, "every instance had its external effect"
    assert {k.split(":")[0] + ":" for k in server.effects} == keys
    assert all(count <= 2 for count in server.calls.values()), "a call repeats only after the crash"
    assert sum(server.calls.values()) - total <= 10  # only jobs in flight at the kill ran again
    assert engine.jobs(state="failed") == []


def test_three_workers_share_the_jobs_without_running_one_twice(engine: Engine, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("several worker processes on one database: the PostgreSQL deployment")
    total = 1000
    with CountingServer() as server:
        for n in range(total):
            engine.start("jobs-http", {"url": server.url, "n": n})
        workers = [_worker(engine.db.url) for _ in range(3)]
        try:
            _wait_for(engine, total, 240, workers)
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(timeout=30)
    assert len(server.effects) == total
    assert set(server.calls.values()) == {1}, "no job ran twice"
    # the service jobs, each done once (a completion step that ran past the workers' step budget on a busy machine
    # may have gone on as a continuation job too; none of any kind failed)
    done_by = Counter(j.state for j in engine.jobs(kind="service", limit=total + 10))
    assert done_by == {"done": total} and engine.jobs(state="failed") == []
