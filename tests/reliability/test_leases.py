"""Claims are leases: a live worker keeps its long call, a dead worker's jobs return within seconds,
timers never queue behind service calls.

Workers are real ``silverflow worker`` processes; the external system is a loopback HTTP server that
records how many calls with one Idempotency-Key were in flight at the same time.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from api.services import ConnectorGateway
from connectors import default_registry
from engine.database import Database
from engine.jobs import JobExecutor
from engine.queries import InstanceFilter
from engine.runtime import Engine
from engine.schema import job
from tests.engine.conftest import bpmn
from tests.support.counting_server import CountingServer

pytestmark = pytest.mark.reliability
ROOT = Path(__file__).parents[2]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = Engine(Database(db_url), ConnectorGateway(default_registry()))
    eng.deploy(bpmn("jobs_http.bpmn", "sched_short_wait.bpmn"))
    yield eng
    eng.db.dispose()


def _worker(url: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # a file, not a pipe: a full pipe would block the worker's logging
        return subprocess.Popen([sys.executable, "-m", "api.cli", "--database-url", url, "worker", *extra],
                                cwd=ROOT, stdout=out, stderr=out)


def _completed(engine: Engine) -> int:
    return engine.query_instances(InstanceFilter(state="completed", limit=1))[1]


def _running_jobs_of(engine: Engine, owner_prefix: str) -> list[str]:
    with engine.db.read() as conn:
        return list(conn.execute(sa.select(job.c.id).where(job.c.state == "running")
                                 .where(job.c.lock_owner.like(owner_prefix + "%"))).scalars())


def _stop(*workers: subprocess.Popen[bytes]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        worker.wait(timeout=30)


def test_the_jobs_a_killed_worker_held_run_within_15_seconds(engine: Engine, tmp_path: Path) -> None:
    total = 20
    with CountingServer(delay=0.2) as server:
        for n in range(total):
            engine.start("jobs-http", {"url": server.url, "n": n})
        survivor = _worker(engine.db.url, tmp_path / "survivor.log")
        victim = _worker(engine.db.url, tmp_path / "victim.log")
        try:
            deadline = time.monotonic() + 60
            held: list[str] = []
            while not held:  # wait until the victim holds a claimed batch, then kill it mid-call
                assert time.monotonic() < deadline, "the victim never claimed a job"
                held = _running_jobs_of(engine, _host_pid(victim))
                time.sleep(0.02)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed_at = time.monotonic()
            while _completed(engine) < total:
                assert time.monotonic() - killed_at < 15 + total * 0.2, \
                    f"only {_completed(engine)} of {total} done; the dead worker's jobs did not come back"
                time.sleep(0.05)
            returned_after = time.monotonic() - killed_at
        finally:
            _stop(survivor, victim)
    assert len(held) >= 1
    assert len(server.effects) == total and engine.jobs(state="failed") == []
    assert returned_after < 15 + total * 0.2


def _host_pid(worker: subprocess.Popen[bytes]) -> str:
    return f"{socket.gethostname()}:{worker.pid}:"


def test_a_call_longer_than_the_lease_never_runs_twice_at_once(engine: Engine, tmp_path: Path) -> None:
    total = 4
    with CountingServer(delay=3.0) as server:
        for n in range(total):
            engine.start("jobs-http", {"url": server.url, "n": n})
        workers = [_worker(engine.db.url, tmp_path / f"w{n}.log", "--lock-seconds", "1") for n in range(2)]
        try:
            deadline = time.monotonic() + 60
            while _completed(engine) < total:
                assert time.monotonic() < deadline, f"only {_completed(engine)} of {total} done"
                time.sleep(0.05)
        finally:
            _stop(*workers)
    assert set(server.calls.values()) == {1}, f"a call ran again: {server.calls}"
    assert max(server.most_at_once.values()) == 1


def test_due_timers_are_claimed_ahead_of_queued_service_calls(engine: Engine) -> None:
    for n in range(50):
        engine.start("jobs-http", {"url": "http://127.0.0.1:9/unused", "n": n})
    timer_instance = engine.start("short-wait", {})
    time.sleep(0.4)  # the 0.3 s timer is due now, after every service job
    claimed = JobExecutor(engine, "probe").claim(limit=1)
    assert [(c.kind, c.instance_id) for c in claimed] == [("timer", timer_instance.id)]
