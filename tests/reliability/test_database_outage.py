"""The database goes away and comes back: workers carry on by themselves, clients are told to try again.

PostgreSQL runs in a cluster of the test's own (stopped with ``-m immediate``, as a crash or failover cuts
every connection); the workers are real ``silverflow worker`` processes; the external system is a loopback
HTTP server counting calls per Idempotency-Key.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from api.identity import Identity
from api.services import ConnectorGateway
from api.settings import Settings
from connectors import default_registry
from engine.database import Database
from engine.queries import InstanceFilter
from engine.runtime import Engine
from tests.engine.conftest import bpmn
from tests.support.counting_server import CountingServer
from tests.support.databases import PostgresFactory
from tests.support.pgcluster import PgCluster, PostgresUnavailable, stoppable_cluster

pytestmark = pytest.mark.reliability
ROOT = Path(__file__).parents[2]


@pytest.fixture
def cluster() -> Iterator[PgCluster]:
    try:
        with stoppable_cluster(durable=True) as running:
            yield running
    except PostgresUnavailable as exc:
        if os.environ.get("SILVERFLOW_TEST_PG") == "required":
            pytest.fail(f"PostgreSQL is required but unavailable: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")


def _completed(engine: Engine) -> int:
    return engine.query_instances(InstanceFilter(state="completed", limit=1))[1]


def _wait_until_completed(engine: Engine, count: int, timeout: float) -> float:
    """Poll (riding out connection errors right after the restart) until ``count`` instances completed."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if _completed(engine) >= count:
                return time.monotonic() - started
        except sa.exc.OperationalError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"only {_completed(engine)} of {count} instances completed in {timeout} s")


def test_workers_outlive_a_postgresql_restart_and_clients_get_503(cluster: PgCluster, tmp_path: Path) -> None:
    factory = PostgresFactory(cluster.url)
    url = factory.create()
    engine = Engine(Database(url), ConnectorGateway(default_registry()))
    engine.deploy(bpmn("jobs_http.bpmn"))
    identity = Identity()
    with engine.db.transaction() as conn:
        key = identity.create_key(conn, "ops", ["admin"], [], "tests").secret
    app = create_app(Settings(database_url=url), engine, run_worker=False, identity=identity)
    client = TestClient(app, headers={"Authorization": f"Bearer {key}"})
    total = 60
    with CountingServer(delay=0.02) as server:
        for n in range(total):
            engine.start("jobs-http", {"url": server.url, "n": n})
        logs = [(tmp_path / f"worker-{n}.log").open("wb") for n in range(2)]  # a pipe would fill and block
        workers = [subprocess.Popen([sys.executable, "-m", "api.cli", "--database-url", url, "worker",
                                     "--lock-seconds", "3"], cwd=ROOT, stdout=log, stderr=log) for log in logs]
        try:
            _wait_until_completed(engine, 5, 60)
            cluster.stop()
            time.sleep(1.0)
            during = client.get("/api/v1/health")
            assert during.status_code == 503, during.text
            assert during.headers["content-type"].startswith("application/problem+json")
            assert during.json()["type"].endswith("/database-unreachable")
            assert int(during.headers["retry-after"]) > 0
            time.sleep(4.0)  # a 5 s outage in all
            assert all(worker.poll() is None for worker in workers), "a worker exited during the outage"
            cluster.start()
            recovery = _wait_until_completed(engine, total, 60)
            assert all(worker.poll() is None for worker in workers), "a worker exited after the outage"
        finally:
            for worker in workers:
                worker.terminate()
            stopped = [_stopped(worker) for worker in workers]
            for log in logs:
                log.close()
    assert all(stopped), "a worker did not stop on SIGTERM: " + _tail(tmp_path)
    assert recovery < 30, f"work resumed only {recovery:.1f} s after the database came back"
    after = client.get("/api/v1/health")
    assert after.status_code == 200 and after.json()["status"] == "ok"
    assert len(server.effects) == total, "every instance had its external effect"
    assert max(server.most_at_once.values()) == 1, "no call ran twice at the same time"
    assert engine.jobs(state="failed") == []
    engine.db.dispose()
    factory.close()  # the cluster goes with its databases


def _stopped(worker: subprocess.Popen[bytes]) -> bool:
    try:
        worker.wait(timeout=30)
        return True
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
        return False


def _tail(folder: Path) -> str:
    return "\n".join(log.read_text(errors="replace")[-3000:] for log in sorted(folder.glob("worker-*.log")))
