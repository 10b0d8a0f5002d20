"""Incidents and problems: ITIL-style priority matrix, SLA deadlines per SLA class, problem → incidents.

Deadlines are in calendar time (24/7 support, as the ISP's network operations centre runs); a business-hours
calendar would plug into ``sla_deadlines``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .accounts import get_account
from .errors import DomainError
from .numbering import yearly_number
from .schema import contact, incident, problem
from .status import Transitions, change_status

LEVELS = ("high", "medium", "low")
ORIGINS = ("phone", "mail", "web", "rest", "monitoring")

# impact × urgency → priority; rows: impact, columns: urgency (high, medium, low).
PRIORITY_MATRIX: dict[tuple[str, str], str] = {
    ("high", "high"): "P1", ("high", "medium"): "P2", ("high", "low"): "P3",
    ("medium", "high"): "P2", ("medium", "medium"): "P3", ("medium", "low"): "P4",
    ("low", "high"): "P3", ("low", "medium"): "P4", ("low", "low"): "P4",
}

H = timedelta(hours=1)
# SLA class → priority → (response time, resolution time).
SLA_TARGETS: dict[str, dict[str, tuple[timedelta, timedelta]]] = {
    "gold": {"P1": (H / 4, 4 * H), "P2": (H / 2, 8 * H), "P3": (2 * H, 24 * H), "P4": (8 * H, 72 * H)},
    "silver": {"P1": (H / 2, 8 * H), "P2": (H, 16 * H), "P3": (4 * H, 48 * H), "P4": (16 * H, 120 * H)},
    "bronze": {"P1": (H, 24 * H), "P2": (4 * H, 48 * H), "P3": (8 * H, 96 * H), "P4": (24 * H, 240 * H)},
}

INCIDENT_TRANSITIONS: Transitions = {
    "new": frozenset({"assigned", "resolved"}),
    "assigned": frozenset({"pending", "resolved"}),
    "pending": frozenset({"assigned", "resolved"}),
    "resolved": frozenset({"closed", "assigned"}),  # reopened when the customer says it is not fixed
}
OPEN_INCIDENT = ("new", "assigned", "pending")
PROBLEM_TRANSITIONS: Transitions = {"open": frozenset({"resolved"})}


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def priority(impact: str, urgency: str) -> str:
    return PRIORITY_MATRIX[(v.one_of("impact", impact, LEVELS), v.one_of("urgency", urgency, LEVELS))]


def sla_deadlines(sla_class: str, prio: str, opened_at: datetime) -> tuple[datetime, datetime]:
    """Response and resolution deadline of an incident opened at ``opened_at``."""
    targets = SLA_TARGETS.get(sla_class)
    if targets is None:
        raise DomainError("sla_class", f"sla_class must be one of {', '.join(SLA_TARGETS)}")
    response, resolution = targets[prio]
    return opened_at + response, opened_at + resolution


def open_incident(
    conn: Connection,
    account_id: int,
    summary: str,
    *,
    impact: str,
    urgency: str,
    origin: str = "phone",
    contact_id: int | None = None,
    category: str | None = None,
    description: str | None = None,
    now: datetime | None = None,
) -> int:
    """Record an incident with its priority and the SLA deadlines of the account's SLA class."""
    acc = get_account(conn, account_id)
    if contact_id is not None:
        owner = conn.execute(sa.select(contact.c.account_id).where(contact.c.id == contact_id)).one_or_none()
        if owner is None or owner.account_id != account_id:
            raise DomainError("contact_id", f"contact {contact_id} is not a contact of account {acc.number}")
    prio = priority(impact, urgency)
    opened = _now(now)
    response_due, resolution_due = sla_deadlines(str(acc.sla_class), prio, opened)
    number, _ = yearly_number(conn, "incident", "I", opened.year)
    return int(
        conn.execute(
            incident.insert()
            .values(number=number, account_id=account_id, contact_id=contact_id,
                    origin=v.one_of("origin", origin, ORIGINS), category=v.optional_text("category", category, 50),
                    summary=v.required_text("summary", summary, 300), description=description,
                    impact=impact, urgency=urgency, priority=prio, status="new", opened_at=opened,
                    response_due=response_due, resolution_due=resolution_due)
            .returning(incident.c.id)
        ).scalar_one()
    )


def get_incident(conn: Connection, incident_id: int) -> sa.Row[tuple[object, ...]]:
    row = conn.execute(sa.select(incident).where(incident.c.id == incident_id)).one_or_none()
    if row is None:
        raise DomainError("incident_id", f"incident {incident_id} does not exist")
    return row


def assign_incident(
    conn: Connection, incident_id: int, group: str, assignee: str | None = None, now: datetime | None = None
) -> None:
    """Routing to a group counts as the first response (the response SLA is met then, or missed)."""
    current = get_incident(conn, incident_id)
    extra = {} if current.responded_at is not None else {"responded_at": _now(now)}
    change_status(conn, incident, incident_id, INCIDENT_TRANSITIONS, "assigned",
                  assigned_group=v.required_text("assigned_group", group, 100),
                  assignee=v.optional_text("assignee", assignee, 200), **extra)


def set_pending(conn: Connection, incident_id: int) -> None:
    """Waiting for the customer or a supplier."""
    change_status(conn, incident, incident_id, INCIDENT_TRANSITIONS, "pending")


def resolve_incident(conn: Connection, incident_id: int, resolution: str, now: datetime | None = None) -> None:
    change_status(conn, incident, incident_id, INCIDENT_TRANSITIONS, "resolved",
                  resolution=v.required_text("resolution", resolution, 10000), resolved_at=_now(now))


def close_incident(conn: Connection, incident_id: int, now: datetime | None = None) -> None:
    change_status(conn, incident, incident_id, INCIDENT_TRANSITIONS, "closed", closed_at=_now(now))


def create_problem(conn: Connection, title: str, root_cause: str | None = None, workaround: str | None = None,
                   now: datetime | None = None) -> int:
    return int(
        conn.execute(
            problem.insert()
            .values(title=v.required_text("title", title, 300), root_cause=root_cause, workaround=workaround,
                    status="open", created_at=_now(now))
            .returning(problem.c.id)
        ).scalar_one()
    )


def _open_problem(conn: Connection, problem_id: int) -> None:
    status = conn.execute(sa.select(problem.c.status).where(problem.c.id == problem_id)).scalar_one_or_none()
    if status is None:
        raise DomainError("problem_id", f"problem {problem_id} does not exist")
    if status != "open":
        raise DomainError("problem_id", f"problem {problem_id} is already {status}")


def link_incident(conn: Connection, problem_id: int, incident_id: int) -> None:
    """Group an open incident under an open problem (same root cause)."""
    _open_problem(conn, problem_id)
    if get_incident(conn, incident_id).status not in OPEN_INCIDENT:
        raise DomainError("incident_id", f"incident {incident_id} is no longer open")
    conn.execute(incident.update().where(incident.c.id == incident_id).values(problem_id=problem_id))


def resolve_problem(conn: Connection, problem_id: int, resolution: str, now: datetime | None = None) -> list[int]:
    """Resolve the problem and every still-open incident linked to it; returns the incidents resolved."""
    _open_problem(conn, problem_id)
    text = v.required_text("resolution", resolution, 10000)
    when = _now(now)
    change_status(conn, problem, problem_id, PROBLEM_TRANSITIONS, "resolved", resolution=text, resolved_at=when)
    ids = [int(i) for i in conn.execute(
        sa.select(incident.c.id)
        .where(incident.c.problem_id == problem_id, incident.c.status.in_(OPEN_INCIDENT))
        .order_by(incident.c.id)
    ).scalars()]
    for incident_id in ids:
        resolve_incident(conn, incident_id, f"Resolved with problem {problem_id}: {text}", when)
    return ids
