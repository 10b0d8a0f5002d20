"""Page render time with the 100 000-account demo data set: every page of the browser UI over a real Uvicorn.

The database is filled the way a user would do it (``silverflow migrate`` and ``silverflow demo-data --accounts
N``: the shipped processes and forms, demo users, the demo CRM data, demo process instances and N generated
accounts with contacts, addresses, services, quotes, opportunities and incidents), then analysed as the
database's maintenance would. Each page found among the app's GET routes (path parameters filled with sample
ids; a detail page gets a different record on each request where there are many) is requested ``--requests``
times with a logged-in session (``admin``: every page is open to it; the inbox also as the clerk ``backoffice``,
whose group filter is the harder query). Prints p50/p95 per page against the 300 ms p95 target of issue 8,
on SQLite and, when PostgreSQL 15 binaries exist, on a throw-away PostgreSQL.
Run: ``python -m bench.ui_pages [--accounts N] [--requests N] [--no-postgres] [--only PATH-PREFIX]``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import random
import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa

from api.app import create_app
from api.cli import main as silverflow
from api.servers import serve_app
from api.settings import Settings
from crm.schema import account, incident, problem, product, quote
from engine.database import create_db_engine
from engine.schema import job, process_instance, user_task
from tests.support.databases import PostgresFactory
from tests.support.pgcluster import PostgresUnavailable, postgres_cluster

TARGET_MS = 300.0
SAMPLES = 50  # different records per detail page
USERS = {"admin": "silverflow-admin", "backoffice": "silverflow-backoffice"}
# pages that only act (redirects, downloads) or need a record this data set does not have
SKIPPED = {"/logout", "/lang/{code}", "/quotes/{quote_id}/pdf"}


@dataclass
class Page:
    label: str
    paths: list[str]  # one per sample; requests go round them
    user: str | None = "admin"


def _ids(conn: sa.Connection, query: sa.Select[tuple[object]]) -> list[str]:
    return [str(value) for value in conn.execute(query.limit(SAMPLES)).scalars()]


def _samples(url: str) -> dict[str, list[str]]:
    """Sample values per path parameter name, drawn from the filled database (random rows where there are many)."""
    engine = create_db_engine(url)
    rng = random.Random(8)
    try:
        with engine.connect() as conn:
            accounts = int(conn.execute(sa.select(sa.func.max(account.c.id))).scalar_one())
            quotes = int(conn.execute(sa.select(sa.func.max(quote.c.id))).scalar_one() or 0)
            return {
                "account_id": [str(rng.randint(1, accounts)) for _ in range(SAMPLES)],
                "quote_id": [str(rng.randint(1, quotes)) for _ in range(SAMPLES)] if quotes else [],
                "incident_id": _ids(conn, sa.select(incident.c.id).where(incident.c.status != "closed")
                                    .order_by(incident.c.resolution_due)),
                "problem_id": _ids(conn, sa.select(problem.c.id).order_by(problem.c.id)),
                "product_id": _ids(conn, sa.select(product.c.id).order_by(product.c.id)),
                "task_id": _ids(conn, sa.select(user_task.c.id).where(user_task.c.state == "open")
                                .order_by(user_task.c.created_at)),
                "instance_id": _ids(conn, sa.select(process_instance.c.id)
                                    .order_by(process_instance.c.started_at)),
                "job_id": _ids(conn, sa.select(job.c.id).where(job.c.state == "failed")),
            }
    finally:
        engine.dispose()


def _get_paths(routes: list[Any], prefix: str = "") -> Iterator[str]:
    """The GET paths of ``routes``, descending into included routers (FastAPI ≥ 0.16x keeps them as one entry)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _get_paths(included.routes, prefix + getattr(route.include_context, "prefix", ""))
        elif "GET" in (getattr(route, "methods", None) or ()):
            yield prefix + str(route.path)


def _fill_path(path: str, samples: dict[str, list[str]], n: int) -> str:
    """``path`` with each ``{name}`` replaced by the ``n``-th sample of that name (round the samples)."""
    def value(match: re.Match[str]) -> str:
        values = samples[match.group(1)]
        return values[n % len(values)]
    return re.sub(r"{(\w+)}", value, path)


def _pages(app: Any, samples: dict[str, list[str]]) -> tuple[list[Page], list[str]]:
    """Every GET page route of the app, with its path parameters filled; and those that could not be filled."""
    pages, unfilled = [], []
    for path in dict.fromkeys(_get_paths(app.routes)):
        if path.startswith(("/api", "/static", "/docs", "/redoc")) or path in SKIPPED:
            continue
        names = re.findall(r"{(\w+)}", path)
        if any(not samples.get(name) for name in names):
            unfilled.append(path)
            continue
        count = max((len(samples[name]) for name in names), default=1)
        paths = [_fill_path(path, samples, n) for n in range(count)]
        pages.append(Page(path, paths, None if path == "/login" else "admin"))
    pages.append(Page("/tasks (clerk)", ["/tasks"], "backoffice"))
    pages.append(Page("/customers?q=", ["/customers?q=" + q for q in ("nord", "müller", "K-1", "bau", "hotel")]))
    return pages, unfilled


def _login(client: httpx.Client, user: str) -> None:
    response = client.post("/login", data={"username": user, "password": USERS[user], "next": "/"})
    if response.status_code != 303:
        raise RuntimeError(f"login as {user} failed: HTTP {response.status_code}")


def _measure(client: httpx.Client, page: Page, requests: int) -> tuple[list[float], set[int]]:
    timings, statuses = [], set()
    paths = itertools.cycle(page.paths)
    client.get(page.paths[0])  # warm-up: template compilation, first connection
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(next(paths))
        timings.append((time.perf_counter() - started) * 1000)
        statuses.add(response.status_code)
    return timings, statuses


def _fill(url: str, accounts: int) -> float:
    started = time.perf_counter()
    with contextlib.redirect_stdout(None):
        for argv in (["migrate"], ["demo-data", "--accounts", str(accounts)]):
            if silverflow(["--database-url", url, *argv]) != 0:
                raise RuntimeError(f"silverflow {' '.join(argv)} failed")
    engine = create_db_engine(url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # what autovacuum (PostgreSQL) or the periodic ANALYZE of an installation (SQLite) does after a bulk load
        conn.exec_driver_sql("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")
    engine.dispose()
    return time.perf_counter() - started


def _report(label: str, timings: list[float], statuses: set[int]) -> str:
    p95 = statistics.quantiles(timings, n=100)[94]
    verdict = "ok" if p95 < TARGET_MS else "OVER TARGET"
    codes = ",".join(str(s) for s in sorted(statuses))
    return (f"{label:44s} p50 {statistics.median(timings):7.1f} ms  p95 {p95:7.1f} ms  HTTP {codes:7s} "
            f"(p95 < {TARGET_MS:.0f} ms: {verdict})")


def run(url: str, label: str, accounts: int, requests: int, only: str) -> None:
    fill = _fill(url, accounts)
    samples = _samples(url)
    app = create_app(Settings(database_url=url), run_worker=False)
    pages, unfilled = _pages(app, samples)
    lines = []
    with serve_app(app) as base_url:
        clients: dict[str | None, httpx.Client] = {}
        try:
            for user in (None, *USERS):
                clients[user] = httpx.Client(base_url=base_url, timeout=60)
                if user:
                    _login(clients[user], user)
            for page in pages:
                if page.label.startswith(only):
                    lines.append(_report(page.label, *_measure(clients[page.user], page, requests)))
        finally:
            for client in clients.values():
                client.close()
    app.state.engine.db.dispose()
    print(f"== {label}: demo data + {accounts} generated accounts (filled and analysed in {fill:.1f} s), "
          f"{requests} requests per page ==")
    for line in lines:
        print(line)
    if unfilled:
        print(f"(not measured, no sample record: {', '.join(unfilled)})")


def _sqlite(accounts: int, requests: int, only: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{tmp}/pages.db", "SQLite", accounts, requests, only)


def _postgres(accounts: int, requests: int, only: str) -> None:
    with postgres_cluster() as server_url:
        factory = PostgresFactory(server_url)
        try:
            run(factory.create(), "PostgreSQL", accounts, requests, only)
        finally:
            factory.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--only", default="", help="measure only the pages whose path starts with this")
    args = parser.parse_args()
    _sqlite(args.accounts, args.requests, args.only)
    if args.no_postgres:
        return
    try:
        _postgres(args.accounts, args.requests, args.only)
    except PostgresUnavailable as exc:
        print(f"PostgreSQL skipped: {exc}")


if __name__ == "__main__":
    main()
