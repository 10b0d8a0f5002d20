"""Asynchronous engine benchmark: service tasks as jobs, run by workers.

Reference process: start → service task (noop) → exclusive gateway → end, the service task asynchronous.
Prints, with the in-memory SpiffWorkflow baseline of the engine-core benchmark measured in the same run:
- the embedded worker on SQLite (as ``make run`` serves): instances/s end to end, started by the caller
  and completed by the worker thread;
- 1, 2 and 4 worker processes on PostgreSQL: jobs drained per second (first to last completion, so process
  start-up is not counted), with the ratio of 2 workers to 1;
- job pickup latency (job due → claimed and connector started) p50/p95 with an idle worker, both databases.

Run: ``python -m bench.workers [--instances N] [--no-postgres]`` (``make bench`` runs it too).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from api.services import ConnectorGateway
from api.worker import JobWorker
from bench.engine import _bare_run
from connectors import default_registry
from engine.database import Database, as_utc
from engine.runtime import Engine
from engine.schema import job, process_instance
from tests.support.databases import PostgresFactory, migrate
from tests.support.pgcluster import PostgresUnavailable, postgres_cluster

ROOT = Path(__file__).resolve().parents[1]
FLOW = ("service_flow.bpmn", (Path(__file__).parent / "bpmn" / "service_flow.bpmn").read_bytes())


def _engine(url: str) -> Engine:
    engine = Engine(Database(url), ConnectorGateway(default_registry()))
    engine.deploy([FLOW])
    return engine


def _completed(engine: Engine) -> int:
    with engine.db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(process_instance)
                                .where(process_instance.c.state == "completed")).scalar_one())


def _wait_completed(engine: Engine, count: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while _completed(engine) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {_completed(engine)} of {count} instances completed")
        time.sleep(0.01)


def _pickup_latencies(engine: Engine, samples: int) -> list[float]:
    """Start one instance at a time against an idle worker; job due → started, in milliseconds."""
    base = _completed(engine)
    for n in range(samples):
        engine.start("service-flow", {"n": n})
        _wait_completed(engine, base + n + 1, timeout=30)
        time.sleep(0.02)  # let the worker go idle again
    with engine.db.read() as conn:
        rows = conn.execute(sa.select(job.c.due_at, job.c.started_at).where(job.c.kind == "service")
                            .order_by(job.c.created_at.desc()).limit(samples)).all()
    return [((as_utc(r.started_at) - as_utc(r.due_at)).total_seconds()) * 1000 for r in rows]  # type: ignore[operator]


def _percentiles(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=100)
    return f"p50 {statistics.median(values):6.1f} ms, p95 {cuts[94]:6.1f} ms"


def embedded_sqlite(instances: int, samples: int) -> tuple[float, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/workers.db"
        migrate(url)
        engine = _engine(url)
        worker = JobWorker(engine)
        worker.start()
        try:
            started = time.perf_counter()
            for n in range(instances):
                engine.start("service-flow", {"n": n})
            _wait_completed(engine, instances)
            rate = instances / (time.perf_counter() - started)
            latencies = _pickup_latencies(engine, samples)
        finally:
            worker.stop()
            engine.db.dispose()
    return rate, latencies


def _drain_rate(factory: PostgresFactory, processes: int, instances: int) -> float:
    url = factory.create()
    engine = _engine(url)
    for n in range(instances):
        engine.start("service-flow", {"n": n})
    workers = [subprocess.Popen([sys.executable, "-m", "api.cli", "--database-url", url, "worker"], cwd=ROOT,
                                stdout=subprocess.DEVNULL) for _ in range(processes)]
    try:
        _wait_completed(engine, instances)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)
    with engine.db.read() as conn:
        first, last = conn.execute(sa.select(sa.func.min(job.c.finished_at), sa.func.max(job.c.finished_at))
                                   .where(job.c.kind == "service")).one()
    engine.db.dispose()
    factory.drop(url)
    return instances / max((last - first).total_seconds(), 1e-6)


def _pg_latency(factory: PostgresFactory, samples: int) -> list[float]:
    url = factory.create()
    engine = _engine(url)
    worker = subprocess.Popen([sys.executable, "-m", "api.cli", "--database-url", url, "worker"], cwd=ROOT,
                              stdout=subprocess.DEVNULL)
    try:
        engine.start("service-flow", {"n": 0})
        _wait_completed(engine, 1, timeout=60)  # the worker is up and idle
        return _pickup_latencies(engine, samples)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        engine.db.dispose()
        factory.drop(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=100, help="pickup latency samples")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    baseline = _bare_run(args.instances, serialize=True)
    print("== Asynchronous engine (service task as a job) ==")
    print(f"baseline: bare SpiffWorkflow + JSON per save (engine-core reference): {baseline:6.0f} instances/s")
    rate, latencies = embedded_sqlite(args.instances, args.samples)
    print(f"SQLite, embedded worker, end to end:  {rate:6.0f} instances/s  ratio {rate / baseline:.2f} "
          f"(target >= 0.30)")
    print(f"SQLite, embedded worker, pickup latency: {_percentiles(latencies)} (target p95 < 50 ms)")
    if args.no_postgres:
        return
    try:
        with postgres_cluster() as server_url:
            factory = PostgresFactory(server_url)
            rates = {}
            for processes in (1, 2, 4):
                rates[processes] = _drain_rate(factory, processes, args.instances)
                print(f"PostgreSQL, {processes} worker process(es): {rates[processes]:6.0f} jobs/s drained  "
                      f"ratio to baseline {rates[processes] / baseline:.2f}")
            print(f"PostgreSQL, 2 workers vs 1: {rates[2] / rates[1]:.2f}x (target >= 1.4x)")
            print(f"PostgreSQL, idle worker pickup latency: {_percentiles(_pg_latency(factory, args.samples))} "
                  f"(target p95 < 50 ms)")
            factory.close()
    except PostgresUnavailable as exc:
        print(f"PostgreSQL skipped: {exc}")


if __name__ == "__main__":
    main()
