"""REST latency over a real Uvicorn: start-instance, list-tasks with 100 000 open tasks, complete-task.

The 100 000 open tasks are written straight into the inbox projection (rows of one real instance) so the
database holds an inbox of that size without running 100 000 instances first; the measured requests work on
real instances; after the bulk load the tables are vacuumed and analysed, as autovacuum would. A clerk's
list-tasks is measured (group filter, visibility rule, sort, total count).
Prints p50/p95/p99 per operation, on SQLite and PostgreSQL. Targets: list-tasks p95 < 30 ms, complete-task
p95 < 50 ms. Run: ``python -m bench.api_latency [--tasks N] [--requests N] [--no-postgres]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from api.app import create_app
from api.identity import Identity
from api.servers import serve_app
from api.services import ConnectorGateway
from api.settings import Settings
from connectors import default_registry
from engine.database import Database, utcnow
from engine.runtime import Engine
from engine.schema import user_task, user_task_group
from tests.support.databases import PostgresFactory, migrate
from tests.support.pgcluster import PostgresUnavailable, postgres_cluster

# The bench's own copy of the two-step vacation request (submit, approve) the figures were first taken with:
# the shipped process grew CRM service tasks and start variables that would change what is measured.
MODELS = Path(__file__).resolve().parent / "bpmn"
GROUPS = ["sales", "backoffice", "billing", "provisioning", "servicedesk", "management", "staff"]


def _fill_inbox(engine: Engine, count: int) -> None:
    anchor = engine.start("vacation-request")
    now = utcnow()
    batch: list[dict[str, object]] = []
    groups: list[dict[str, object]] = []
    with engine.db.transaction() as conn:
        for n in range(count):
            task_id = str(uuid.uuid4())
            group = GROUPS[n % len(GROUPS)]
            batch.append(dict(id=task_id, instance_id=anchor.id, element_id="submit", name=f"Aufgabe {n}",
                              lane=group, candidate_groups=group, assignee=None, form_key="vacation-request",
                              due_at=None, priority=50, process_key="vacation-request", business_key=f"BK-{n}",
                              state="open", created_at=now, claimed_at=None, completed_at=None,
                              completed_by=None))
            groups.append({"task_id": task_id, "group_name": group})
            if len(batch) == 5000:
                conn.execute(user_task.insert(), batch)
                conn.execute(user_task_group.insert(), groups)
                batch, groups = [], []
        if batch:
            conn.execute(user_task.insert(), batch)
            conn.execute(user_task_group.insert(), groups)


def _measure(call: Callable[[], httpx.Response], requests: int) -> list[float]:
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = call()
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return timings


def _report(name: str, timings: list[float]) -> str:
    cuts = statistics.quantiles(timings, n=100)
    return f"{name:16s} p50 {statistics.median(timings):6.1f} ms  p95 {cuts[94]:6.1f} ms  p99 {cuts[98]:6.1f} ms"


def run(url: str, label: str, tasks: int, requests: int) -> None:
    engine = Engine(Database(url), ConnectorGateway(default_registry()))
    engine.deploy([("vacation-request.bpmn", (MODELS / "vacation-request.bpmn").read_bytes())],
                  [(p.name, p.read_bytes()) for p in sorted(MODELS.glob("vacation-*.json"))])
    identity = Identity()
    with engine.db.transaction() as conn:
        clerk = identity.create_key(conn, "clerk", ["clerk"], ["sales", "staff"], "bench").secret
        integration = identity.create_key(conn, "integration", ["integration"], [], "bench").secret
    started = time.perf_counter()
    _fill_inbox(engine, tasks)
    with engine.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # what autovacuum does shortly after a bulk load
        conn.exec_driver_sql("VACUUM ANALYZE" if engine.db.dialect == "postgresql" else "ANALYZE")
    fill = time.perf_counter() - started
    app = create_app(Settings(database_url=url), engine, run_worker=False, identity=identity)
    with serve_app(app) as root, \
            httpx.Client(base_url=f"{root}/api/v1", headers={"Authorization": f"Bearer {integration}"}) as api, \
            httpx.Client(base_url=f"{root}/api/v1", headers={"Authorization": f"Bearer {clerk}"}) as inbox:
        starts = _measure(lambda: api.post("/process-definitions/vacation-request/instances", json={}), requests)
        listing = _measure(lambda: inbox.get("/tasks", params={"limit": 50}), requests)
        total = inbox.get("/tasks").json()["total"]
        open_ids = [t["id"] for t in api.get("/tasks", params={"processKey": "vacation-request", "limit": 1000,
                                                               "sort": "-created"}).json()["items"]
                    if t["name"] == "Urlaub beantragen"][:requests]
        body = {"data": {"first_day": "2026-12-21", "last_day": "2026-12-23", "days": 3, "deputy": "X"}}
        pending = iter(open_ids)
        completes = _measure(lambda: api.post(f"/tasks/{next(pending)}/complete", json=body), len(open_ids))
    engine.db.dispose()
    print(f"== {label}: {tasks} open tasks in the inbox (filled in {fill:.1f} s); a clerk sees {total} ==")
    print(_report("start-instance", starts))
    print(_report("list-tasks", listing) + "   (target p95 < 30 ms)")
    print(_report("complete-task", completes) + "   (target p95 < 50 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/api.db"
        migrate(url)
        run(url, "SQLite", args.tasks, args.requests)
    if args.no_postgres:
        return
    try:
        with postgres_cluster() as server_url:
            factory = PostgresFactory(server_url)
            run(factory.create(), "PostgreSQL", args.tasks, args.requests)
            factory.close()
    except PostgresUnavailable as exc:
        print(f"PostgreSQL skipped: {exc}")


if __name__ == "__main__":
    main()
