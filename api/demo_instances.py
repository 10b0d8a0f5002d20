"""Process instances for the demo: a new user should meet a living system, with orders, incidents and requests
standing at different stages, not an empty inbox.

Each scenario starts a shipped process on the demo CRM data and works its user tasks as the demo clerks would,
up to the stage it is meant to show. Service tasks run as the engine's jobs in this thread; a scenario stops
quietly where a task does not appear (a connector's system is not reachable, a model changed), because a demo
must never fail the set-up. Seeding happens once: a database that already has instances is left alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crm import quotes, staff
from crm.schema import account, contact, quote
from engine.queries import InstanceFilter
from engine.runtime import Engine


@dataclass(frozen=True)
class Step:
    """Complete the open task of ``element_id`` as ``user`` with ``data``."""

    element_id: str
    user: str
    data: dict[str, Any] = field(default_factory=dict)
    confirmed: tuple[str, ...] = ()  # fields the clerk submits as the form offers them (its defaults)


@dataclass(frozen=True)
class Scenario:
    key: str
    business_key: str
    variables: Callable[[Connection], dict[str, Any] | None]
    steps: Sequence[Step] = ()
    user: str = "demo-data"


def _customer(offset: int) -> Callable[[Connection], dict[str, Any] | None]:
    """The ``offset``-th demo customer with a contact, as the incident process expects it."""
    def variables(conn: Connection) -> dict[str, Any] | None:
        row = conn.execute(sa.select(account.c.id, contact.c.id.label("contact_id"))
                           .join(contact, contact.c.account_id == account.c.id)
                           .where(account.c.status == "customer").order_by(account.c.id, contact.c.id)
                           .offset(offset).limit(1)).first()
        return {"account_id": row.id, "contact_id": row.contact_id} if row else None
    return variables


def _incident(offset: int, summary: str, category: str, impact: str, urgency: str,
              origin: str) -> Callable[[Connection], dict[str, Any] | None]:
    customer = _customer(offset)

    def variables(conn: Connection) -> dict[str, Any] | None:
        found = customer(conn)
        return found and {**found, "summary": summary, "category": category, "impact": impact,
                          "urgency": urgency, "origin": origin, "description": summary}
    return variables


def _accepted_quote(offset: int) -> Callable[[Connection], dict[str, Any] | None]:
    """A demo customer's sent quote, renewed for 30 days and accepted now, as the order process starts from it."""
    def variables(conn: Connection) -> dict[str, Any] | None:
        newer = quote.alias("newer")
        row = conn.execute(sa.select(quote).where(quote.c.status == "sent", ~sa.exists().where(
            newer.c.number == quote.c.number, newer.c.version > quote.c.version))
            .order_by(quote.c.id).offset(offset).limit(1)).first()
        if row is None:
            return None
        renewed = quotes.revise_quote(conn, row.id, date.today() + timedelta(days=30))
        quotes.send_quote(conn, renewed)
        quotes.accept_quote(conn, renewed)
        return {"quote_id": renewed, "account_id": row.account_id, "contact_id": row.contact_id}
    return variables


def _vacation_entitlement(employee: str, first_day: date) -> Callable[[Connection], dict[str, Any] | None]:
    """The employee's days for the year, so the request fits; the process itself takes the employee from
    whoever starts it."""
    def variables(conn: Connection) -> dict[str, Any] | None:
        staff.set_entitlement(conn, employee, first_day.year, Decimal(30))
        return {}
    return variables


_NEXT_MONDAY = date.today() + timedelta(days=7 - date.today().weekday())

SCENARIOS: list[Scenario] = [
    Scenario("order", "DEMO-ORDER-REVIEW", _accepted_quote(0)),
    Scenario("order", "DEMO-ORDER-PRODUCTION", _accepted_quote(0),
             [Step("review", "backoffice", {"drop_lines": [], "adjustments": []}, ("delivery_address",))]),
    Scenario("incident", "DEMO-INC-DSL", _incident(0, "DSL-Synchronisation bricht ab", "network", "high", "high",
                                                   "phone")),
    Scenario("incident", "DEMO-INC-RECHNUNG", _incident(1, "Rechnung doppelt gebucht", "billing", "low", "medium",
                                                        "mail")),
    Scenario("incident", "DEMO-INC-VOIP", _incident(2, "Rufnummer nicht erreichbar", "voip", "medium", "high",
                                                    "monitoring")),
    Scenario("vacation-request", "DEMO-URLAUB", _vacation_entitlement("sales", _NEXT_MONDAY),
             [Step("submit", "sales", {"first_day": _NEXT_MONDAY.isoformat(),
                                       "last_day": (_NEXT_MONDAY + timedelta(days=2)).isoformat(),
                                       "deputy": "backoffice"})], user="sales"),
]


def _open_task(engine: Engine, instance_id: str, element_id: str, wait_seconds: float) -> str | None:
    """Run due jobs until the task of ``element_id`` is open; ``None`` once nothing more moves the instance
    (after ``wait_seconds`` when another worker may be running its jobs)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        ran = engine.run_jobs()
        for task in engine.list_tasks(instance_id=instance_id):
            if task.element_id == element_id:
                return task.id
        if engine.get_instance(instance_id).state != "running" or (not ran and time.monotonic() >= deadline):
            return None
        if not ran:
            time.sleep(0.1)


def seed_instances(engine: Engine, scenarios: Sequence[Scenario] = SCENARIOS,
                   wait_seconds: float = 0.0) -> list[str]:
    """Start and advance the scenarios whose process is deployed; return the instance ids (none on a rerun)."""
    if engine.query_instances(InstanceFilter(limit=1))[1]:
        return []
    with engine.db.read() as conn:
        deployed = {info.key for info in engine.repository.list(conn)}
    started: list[str] = []
    for scenario in scenarios:
        if scenario.key not in deployed:
            continue
        with engine.db.transaction() as conn:
            variables = scenario.variables(conn)
        if variables is None:
            continue
        instance = engine.start(scenario.key, variables, business_key=scenario.business_key, user=scenario.user)
        started.append(instance.id)
        for step in scenario.steps:
            task_id = _open_task(engine, instance.id, step.element_id, wait_seconds)
            if task_id is None:
                break
            offered = engine.task_data(task_id) if step.confirmed else {}
            data = {**{key: offered[key] for key in step.confirmed if offered.get(key) is not None}, **step.data}
            engine.complete_task(task_id, data, user=step.user)
        engine.run_jobs()
    return started
