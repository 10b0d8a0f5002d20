"""CRM read latency on a large customer base in SQLite: account search, customer 360° view, pipeline sum.

Loads 100 000 accounts (two contacts, two addresses and a booked service each, an opportunity for every
second, an incident for every tenth, half of them open) and 1 000 000 activities into a temporary SQLite file
migrated by Alembic, analyses it (as the application's maintenance would), then measures one query at a time:
- account search by name prefix (``crm.accounts.find_accounts``, 2–5 characters, first 20 by name);
- the customer 360° view (``crm.queries.account_360``: account, contacts, addresses, services, the newest
  50 activities, incidents, quotes, orders, invoices, opportunities, contracts, documents);
- the pipeline sum per stage weighted by probability (``crm.opportunities.pipeline``).
Prints p50/p95/p99 per query. Target on a 2-core machine: p95 < 50 ms each.
Run: ``python -m bench.crm_queries [--accounts N] [--activities M] [--samples K]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crm.accounts import find_accounts, search_key
from crm.demo import NAME_STEMS, PRODUCTS
from crm.opportunities import OPEN_STAGES, pipeline
from crm.products import create_product
from crm.queries import account_360
from crm.schema import account, activity, address, booked_service, contact, incident, opportunity
from crm.sla import deadlines
from engine.database import create_db_engine
from tests.support.databases import migrate

BATCH = 20_000
# the demo's names and a few more
STEMS = [*NAME_STEMS, "Quellwerk", "Ostwind", "Talblick", "Auenland", "Fichtel", "Gartenhof", "Isarwerk",
         "Jadebusen", "Ufergold"]
TRADES = [
    "Steuerberatung",
    "Architekten",
    "Logistik",
    "Zahnarztpraxis",
    "Metallbau",
    "Medien",
    "Software",
    "Immobilien",
    "Kanzlei",
    "Druckerei",
    "Bäckerei",
    "Elektro",
    "Sanitär",
    "Autohaus",
    "Hotel",
]
KINDS = ["call", "visit", "meeting", "email_in", "email_out", "letter_in", "letter_out", "note"]
T0 = datetime(2020, 1, 1, tzinfo=UTC)


def _batches(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _insert(conn: Connection, table: sa.Table, rows: Iterator[dict[str, Any]]) -> None:
    for batch in _batches(rows):
        conn.execute(table.insert(), batch)


def load(conn: Connection, accounts: int, activities: int, rng: random.Random) -> None:
    """Bulk rows straight into the tables (the services validate one by one, far too slow for a million)."""
    product_ids = [create_product(conn, p) for p in PRODUCTS if p.kind.startswith("recurring")]
    names = [f"{rng.choice(STEMS)} {rng.choice(TRADES)} {n}" for n in range(accounts)]
    _insert(
        conn,
        account,
        (
            {
                "id": n + 1,
                "number": f"K-{100001 + n}",
                "name": name,
                "name_key": search_key(name),
                "kind": "business",
                "legal_form": "GmbH",
                "status": "customer",
                "sla_class": ("gold", "silver", "bronze")[n % 3],
                "owner": "sales",
                "created_at": T0,
            }
            for n, name in enumerate(names)
        ),
    )
    _insert(
        conn,
        contact,
        (
            {
                "account_id": n // 2 + 1,
                "salutation": "Frau" if n % 2 else "Herr",
                "first_name": "Eva",
                "last_name": f"Person {n}",
                "email": f"p{n}@example.com",
                "preferred_language": "de",
                "marketing_opt_out": False,
                "created_at": T0,
            }
            for n in range(2 * accounts)
        ),
    )
    _insert(
        conn,
        address,
        (
            {
                "account_id": n // 2 + 1,
                "kind": ("billing", "installation")[n % 2],
                "street": "Hauptstraße 1",
                "postal_code": "10115",
                "city": "Berlin",
                "country": "DE",
            }
            for n in range(2 * accounts)
        ),
    )
    _insert(
        conn,
        booked_service,
        (
            {
                "account_id": n + 1,
                "product_id": product_ids[n % len(product_ids)],
                "quantity": Decimal(1),
                "billing_period": "monthly",
                "status": "active",
                "start_date": date(2024, 1, 1),
                "created_at": T0,
            }
            for n in range(accounts)
        ),
    )
    _insert(
        conn,
        opportunity,
        (
            {
                "account_id": 2 * n + 1,
                "title": "Standortvernetzung",
                "stage": rng.choice(("won", "lost", *OPEN_STAGES)),
                "expected_revenue": Decimal(rng.randrange(10_000, 5_000_000)) / 100,
                "probability": rng.randrange(0, 101),
                "expected_close": date(2026, 1, 1) + timedelta(days=rng.randrange(365)),
                "source": "phone",
                "created_at": T0,
            }
            for n in range(accounts // 2)
        ),
    )
    opened = T0 + timedelta(days=2000)
    due = deadlines("gold", "P2", opened)
    _insert(
        conn,
        incident,
        (
            {
                "number": f"I-2025-{n:06d}",
                "account_id": 10 * n + 1,
                "origin": "phone",
                "summary": "Paketverlust",
                "impact": "high",
                "urgency": "medium",
                "priority": "P2",
                "status": ("new", "closed")[n % 2],
                "opened_at": opened,
                "response_due": due.response_due,
                "resolution_due": due.resolution_due,
            }
            for n in range(accounts // 10)
        ),
    )
    _insert(
        conn,
        activity,
        (
            {
                "account_id": rng.randrange(accounts) + 1,
                "kind": rng.choice(KINDS),
                "author": "sales",
                "subject": "Telefonat zur Leitung",
                "body": "Kunde meldet sich wegen der Rechnung.",
                "occurred_at": T0 + timedelta(seconds=rng.randrange(6 * 365 * 86400)),
            }
            for _ in range(activities)
        ),
    )


def measure(call: Callable[[], object], samples: int) -> list[float]:
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def report(name: str, timings: list[float]) -> str:
    cuts = statistics.quantiles(timings, n=100)
    verdict = "ok" if cuts[94] < 50 else "OVER TARGET"
    return (
        f"{name:22s} p50 {statistics.median(timings):6.2f} ms  p95 {cuts[94]:6.2f} ms  "
        f"p99 {cuts[98]:6.2f} ms   (target p95 < 50 ms: {verdict})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/crm.db"
        migrate(url)
        engine = create_db_engine(url)
        started = time.perf_counter()
        with engine.begin() as conn:
            load(conn, args.accounts, args.activities, rng)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
        print(
            f"== SQLite: {args.accounts} accounts, {args.activities} activities "
            f"(loaded and analysed in {time.perf_counter() - started:.1f} s) =="
        )
        prefixes = [search_key(rng.choice(STEMS))[: rng.randint(2, 5)] for _ in range(args.samples)]
        ids = [rng.randrange(args.accounts) + 1 for _ in range(args.samples)]
        with engine.connect() as conn:
            search = iter(prefixes)
            found = [len(find_accounts(conn, p)) for p in prefixes[:5]]
            view = iter(ids)
            sample = account_360(conn, ids[0])
            results = [
                report(
                    "search by name prefix", measure(lambda: find_accounts(conn, next(search)), args.samples)
                ),
                report("customer 360° view", measure(lambda: account_360(conn, next(view)), args.samples)),
                report("pipeline sum", measure(lambda: pipeline(conn), args.samples)),
            ]
            stages = ", ".join(f"{s.stage} {s.count} / {s.weighted} €" for s in pipeline(conn))
        engine.dispose()
    print(
        f"(search hits of the first prefixes: {found}; 360° of one account: {len(sample.contacts)} contacts, "
        f"{len(sample.services)} services, {len(sample.activities)} activities, "
        f"{len(sample.incidents)} incidents)"
    )
    print(f"(pipeline: {stages})")
    for line in results:
        print(line)


if __name__ == "__main__":
    main()
