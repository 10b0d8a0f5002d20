"""Asynchronous engine benchmark: service tasks as jobs, run by workers.

Reference process: start → service task (noop) → exclusive gateway → end, the service task asynchronous.
Prints, with the in-memory SpiffWorkflow baseline of the engine-core benchmark measured in the same run:
- the embedded worker on SQLite (as ``make run`` serves): instances/s end to end, started by the caller
  and completed by the worker thread;
- 1, 2 and 4 worker processes on PostgreSQL: jobs drained per second (first to last completion, so process
  start-up is not counted), with the ratio of 2 workers to 1;
- job pickup latency (job due → claimed and connector started) p50/p95 with an idle worker, both databases;
- timer lateness p50/p95 with 1 000 service jobs queued ahead of the timers (SQLite, embedded worker);
- PostgreSQL crash recovery: how long after a 5 s outage the first job completes again (no process restarted);
- the delay one kill -9 of a worker costs the jobs it had claimed (how long after the kill the last one ran).

Run: ``python -m bench.workers [--instances N] [--no-postgres]`` (``make bench`` runs it too).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
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
from tests.support.pgcluster import PostgresUnavailable, postgres_cluster, stoppable_cluster

ROOT = Path(__file__).resolve().parents[1]
FLOW = ("service_flow.bpmn", (Path(__file__).parent / "bpmn" / "service_flow.bpmn").read_bytes())
SHORT_WAIT = ("sched_short_wait.bpmn", (ROOT / "tests" / "engine" / "bpmn" / "sched_short_wait.bpmn").read_bytes())


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


def _worker_process(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "api.cli", "--database-url", url, "worker"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _drain_rate(factory: PostgresFactory, processes: int, instances: int) -> float:
    url = factory.create()
    engine = _engine(url)
    for n in range(instances):
        engine.start("service-flow", {"n": n})
    workers = [_worker_process(url) for _ in range(processes)]
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
    worker = _worker_process(url)
    try:
        engine.start("service-flow", {"n": 0})
        _wait_completed(engine, 1, timeout=60)  # the worker is up and idle
        return _pickup_latencies(engine, samples)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        engine.db.dispose()
        factory.drop(url)


def timer_lateness(queued: int, timers: int) -> list[float]:
    """Timers falling due while ``queued`` service jobs wait: fired minus due (from the instance history), ms."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/timers.db"
        migrate(url)
        engine = _engine(url)
        engine.deploy([SHORT_WAIT])
        for n in range(queued):
            engine.start("service-flow", {"n": n})
        waiting = [engine.start("short-wait", {}).id for _ in range(timers)]  # a 0.3 s timer each
        worker = JobWorker(engine)
        worker.start()
        try:
            _wait_completed(engine, queued + timers)
        finally:
            worker.stop()
        lateness = []
        for instance_id in waiting:
            history = engine.history(instance_id)
            due = next(datetime.fromisoformat(h.data["dueAt"]) for h in history
                       if h.type == "element.entered" and h.data and h.data.get("waitsFor") == "timer")
            fired = next(h.at for h in history if h.type == "timer.fired")
            lateness.append(max(0.0, (fired - due).total_seconds() * 1000))
        engine.db.dispose()
    return lateness


def outage_recovery(instances: int) -> float:
    """Seconds from PostgreSQL's return after a 5 s crash until the workers complete a job again."""
    with stoppable_cluster(durable=True) as cluster:
        factory = PostgresFactory(cluster.url)
        url = factory.create()
        engine = _engine(url)
        for n in range(instances):
            engine.start("service-flow", {"n": n})
        workers = [_worker_process(url) for _ in range(2)]
        try:
            _wait_completed(engine, instances // 10)
            cluster.stop()
            time.sleep(5)
            cluster.start()
            back = time.monotonic()
            before = None
            while True:
                try:
                    done = _completed(engine)
                except sa.exc.OperationalError:
                    time.sleep(0.05)
                    continue
                before = done if before is None else before
                if done > before:
                    return time.monotonic() - back
                if time.monotonic() - back > 120:
                    raise RuntimeError("the workers did not resume within 120 s")
                time.sleep(0.02)
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(timeout=60)
            engine.db.dispose()
            factory.close()


def kill_delay(factory: PostgresFactory, instances: int) -> tuple[int, float]:
    """Kill -9 one of two workers while it holds claimed jobs: how many it held, and how long after the kill
    the last of them completed (the lease, 10 s by default, bounds it)."""
    url = factory.create()
    engine = _engine(url)
    for n in range(instances):
        engine.start("service-flow", {"n": n})
    victim, survivor = _worker_process(url), _worker_process(url)
    held: list[str] = []
    try:
        prefix = f"{socket.gethostname()}:{victim.pid}:"
        while not held:
            with engine.db.read() as conn:
                held = list(conn.execute(sa.select(job.c.id).where(job.c.state == "running")
                                         .where(job.c.lock_owner.like(prefix + "%"))).scalars())
        victim.kill()
        killed = time.monotonic()
        while True:
            with engine.db.read() as conn:
                pending = conn.execute(sa.select(sa.func.count()).select_from(job).where(job.c.id.in_(held))
                                       .where(job.c.state != "done")).scalar_one()
            if not pending:
                return len(held), time.monotonic() - killed
            time.sleep(0.02)
    finally:
        for worker in (victim, survivor):
            if worker.poll() is None:
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
    print(f"SQLite, timers behind 1 000 queued service jobs, lateness: {_percentiles(timer_lateness(1000, 50))} "
          f"(target p95 < 200 ms)")
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
            held, delay = kill_delay(factory, 300)
            print(f"PostgreSQL, kill -9 of a worker holding {held} claimed job(s): the last ran {delay:.1f} s after "
                  f"the kill (target < 15 s; before leases: the 60 s lock)")
            factory.close()
        print(f"PostgreSQL, 5 s crash under load: work resumed {outage_recovery(300):.1f} s after the database came "
              f"back, no process restarted (target: a few seconds; before: workers exited for good)")
    except PostgresUnavailable as exc:
        print(f"PostgreSQL skipped: {exc}")


if __name__ == "__main__":
    main()
