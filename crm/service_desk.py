"""Incidents and problems: priority and SLA deadlines from ``crm.sla``, status rules, the public and internal
log, and problems whose resolution resolves their incidents.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .accounts import get_account
from .errors import DomainError
from .numbering import yearly_number
from .schema import booked_service, contact, incident, incident_log, problem
from .sla import deadlines, missed, priority
from .status import Transitions, change_status

ORIGINS = ("phone", "mail", "web", "rest", "monitoring")
VISIBILITIES = ("public", "internal")

INCIDENT_TRANSITIONS: Transitions = {
    "new": frozenset({"assigned", "resolved"}),
    "assigned": frozenset({"pending", "resolved"}),
    "pending": frozenset({"assigned", "resolved"}),
    "resolved": frozenset({"closed", "assigned"}),  # reopened when the customer says it is not fixed
}
OPEN_INCIDENT = ("new", "assigned", "pending")
PROBLEM_TRANSITIONS: Transitions = {"open": frozenset({"resolved"})}


def open_incident(
    conn: Connection,
    account_id: int,
    summary: str,
    *,
    impact: str,
    urgency: str,
    origin: str = "phone",
    contact_id: int | None = None,
    booked_service_id: int | None = None,
    category: str | None = None,
    description: str | None = None,
    now: datetime | None = None,
) -> int:
    """Record an incident with its priority and the SLA deadlines of the account's SLA class."""
    acc = get_account(conn, account_id)
    _check_belongs(conn, contact, contact_id, "contact_id", account_id, str(acc.number))
    _check_belongs(conn, booked_service, booked_service_id, "booked_service_id", account_id, str(acc.number))
    prio = priority(impact, urgency)
    opened = v.timestamp(now)
    due = deadlines(str(acc.sla_class), prio, opened)
    values = {
        "account_id": account_id,
        "contact_id": contact_id,
        "booked_service_id": booked_service_id,
        "origin": v.one_of("origin", origin, ORIGINS),
        "category": v.optional_text("category", category, 50),
        "summary": v.required_text("summary", summary, 300),
        "description": description,
        "impact": impact,
        "urgency": urgency,
        "priority": prio,
        "status": "new",
        "opened_at": opened,
        "response_due": due.response_due,
        "resolution_due": due.resolution_due,
    }
    number, _ = yearly_number(conn, "incident", "I", opened.year)
    return int(
        conn.execute(incident.insert().values(number=number, **values).returning(incident.c.id)).scalar_one()
    )


def _check_belongs(
    conn: Connection, table: sa.Table, row_id: int | None, field: str, account_id: int, account_number: str
) -> None:
    """A referenced contact or booked service must be the incident's account's own."""
    if row_id is None:
        return
    owner = conn.execute(sa.select(table.c.account_id).where(table.c.id == row_id)).one_or_none()
    if owner is None or owner.account_id != account_id:
        raise DomainError(field, f"{field} {row_id} does not belong to account {account_number}")


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
    extra = {} if current.responded_at is not None else {"responded_at": v.timestamp(now)}
    change_status(
        conn,
        incident,
        incident_id,
        INCIDENT_TRANSITIONS,
        "assigned",
        assigned_group=v.required_text("assigned_group", group, 100),
        assignee=v.optional_text("assignee", assignee, 200),
        **extra,
    )


def reassign_incident(conn: Connection, incident_id: int, group: str, assignee: str | None = None) -> None:
    """Route an already assigned incident to another group or person; its status stays ``assigned``.

    :func:`assign_incident` is the transition *into* ``assigned`` and refuses assigned → assigned.
    """
    values = {
        "assigned_group": v.required_text("assigned_group", group, 100),
        "assignee": v.optional_text("assignee", assignee, 200),
    }
    result = conn.execute(
        incident.update().where(incident.c.id == incident_id, incident.c.status == "assigned").values(**values)
    )
    if result.rowcount != 1:
        status = conn.execute(sa.select(incident.c.status).where(incident.c.id == incident_id)).scalar_one_or_none()
        if status is None:
            raise DomainError("incident_id", f"incident {incident_id} does not exist")
        raise DomainError("status", f"incident {incident_id} is {status}, not assigned")


def route_incident(
    conn: Connection, incident_id: int, group: str, assignee: str | None = None, now: datetime | None = None
) -> None:
    """Give the incident to ``group`` (and person): assign it, or re-route it when it is assigned already."""
    if get_incident(conn, incident_id).status == "assigned":
        reassign_incident(conn, incident_id, group, assignee)
    else:
        assign_incident(conn, incident_id, group, assignee, now)


def set_pending(conn: Connection, incident_id: int) -> None:
    """Waiting for the customer or a supplier."""
    change_status(conn, incident, incident_id, INCIDENT_TRANSITIONS, "pending")


def resolve_incident(
    conn: Connection, incident_id: int, resolution: str, now: datetime | None = None
) -> None:
    change_status(
        conn,
        incident,
        incident_id,
        INCIDENT_TRANSITIONS,
        "resolved",
        resolution=v.required_text("resolution", resolution, 10000),
        resolved_at=v.timestamp(now),
    )


def close_incident(conn: Connection, incident_id: int, now: datetime | None = None) -> None:
    change_status(conn, incident, incident_id, INCIDENT_TRANSITIONS, "closed", closed_at=v.timestamp(now))


def create_problem(
    conn: Connection,
    title: str,
    root_cause: str | None = None,
    workaround: str | None = None,
    now: datetime | None = None,
) -> int:
    return int(
        conn.execute(
            problem.insert()
            .values(
                title=v.required_text("title", title, 300),
                root_cause=root_cause,
                workaround=workaround,
                status="open",
                created_at=v.timestamp(now),
            )
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


def resolve_problem(
    conn: Connection, problem_id: int, resolution: str, now: datetime | None = None
) -> list[int]:
    """Resolve the problem and every still-open incident linked to it; returns the incidents resolved."""
    _open_problem(conn, problem_id)
    text = v.required_text("resolution", resolution, 10000)
    when = v.timestamp(now)
    change_status(
        conn, problem, problem_id, PROBLEM_TRANSITIONS, "resolved", resolution=text, resolved_at=when
    )
    ids = open_incidents_of_problem(conn, problem_id)
    for incident_id in ids:
        resolve_incident(conn, incident_id, f"Resolved with problem {problem_id}: {text}", when)
    return ids


def add_log_entry(
    conn: Connection,
    incident_id: int,
    author: str,
    text: str,
    visibility: str = "internal",
    now: datetime | None = None,
) -> int:
    """Append to the incident's log; ``public`` entries are what the customer sees, ``internal`` ones not."""
    get_incident(conn, incident_id)
    values = {
        "incident_id": incident_id,
        "author": v.required_text("author", author, 200),
        "text": v.required_text("text", text, 20000),
        "visibility": v.one_of("visibility", visibility, VISIBILITIES),
        "at": v.timestamp(now),
    }
    return int(conn.execute(incident_log.insert().values(**values).returning(incident_log.c.id)).scalar_one())


def incident_log_entries(
    conn: Connection, incident_id: int, public_only: bool = False
) -> list[sa.Row[tuple[object, ...]]]:
    """The log in time order; the customer's view passes ``public_only``."""
    query = sa.select(incident_log).where(incident_log.c.incident_id == incident_id)
    if public_only:
        query = query.where(incident_log.c.visibility == "public")
    return list(conn.execute(query.order_by(incident_log.c.at, incident_log.c.id)))


def overdue_incidents(conn: Connection, now: datetime) -> list[tuple[int, str]]:
    """Open incidents past a deadline, as (id, "response" | "resolution"): the input of escalation."""
    at = v.aware("now", now)
    query = (
        sa.select(incident.c.id, incident.c.responded_at, incident.c.response_due)
        .where(
            incident.c.status.in_(OPEN_INCIDENT),
            sa.or_(
                sa.and_(incident.c.responded_at.is_(None), incident.c.response_due < at),
                incident.c.resolution_due < at,
            ),
        )
        .order_by(incident.c.id)
    )
    return [
        (int(row.id), "response" if missed(row.response_due, row.responded_at, at) else "resolution")
        for row in conn.execute(query)
    ]


def sla_violations(
    conn: Connection, account_id: int, since: datetime, until: datetime
) -> list[dict[str, object]]:
    """Incidents opened in [since, until) that missed their response or resolution deadline (SLA report)."""
    start, end = v.aware("since", since), v.aware("until", until)
    if end <= start:
        raise DomainError("until", "until must be after since")
    rows = conn.execute(
        sa.select(incident)
        .where(incident.c.account_id == account_id, incident.c.opened_at >= start, incident.c.opened_at < end)
        .order_by(incident.c.opened_at, incident.c.id)
    )
    report = []
    for row in rows:
        late = [
            name
            for name, due, done in (
                ("response", row.response_due, row.responded_at),
                ("resolution", row.resolution_due, row.resolved_at),
            )
            if missed(due, done, end)
        ]
        if late:
            report.append(
                {"incident_id": row.id, "number": row.number, "priority": row.priority, "missed": late}
            )
    return report


PROBLEM_TEXTS = ("root_cause", "workaround")


def record_analysis(
    conn: Connection, problem_id: int, changes: Mapping[str, str | None], require_open: bool = True
) -> None:
    """Write the root cause and/or workaround given (blank clears one); ``require_open`` refuses a solved problem."""
    unknown = set(changes) - set(PROBLEM_TEXTS)
    if unknown:
        raise DomainError(sorted(unknown)[0], "only root_cause and workaround can be changed")
    status = conn.execute(sa.select(problem.c.status).where(problem.c.id == problem_id)).scalar_one_or_none()
    if status is None:
        raise DomainError("problem_id", f"problem {problem_id} does not exist")
    if require_open and status != "open":
        raise DomainError("problem_id", f"problem {problem_id} is already {status}")
    values = {field: v.optional_text(field, value, 20000) for field, value in changes.items()}
    if values:
        conn.execute(problem.update().where(problem.c.id == problem_id).values(**values))


def set_workaround(conn: Connection, problem_id: int, root_cause: str | None, workaround: str) -> list[int]:
    """Publish what is known of the open problem; returns its open incidents, which should hear of it."""
    changes = {"workaround": v.required_text("workaround", workaround, 10000)}
    if root_cause is not None:
        changes["root_cause"] = v.required_text("root_cause", root_cause, 10000)
    record_analysis(conn, problem_id, changes)
    return open_incidents_of_problem(conn, problem_id)


def open_incidents_of_problem(conn: Connection, problem_id: int) -> list[int]:
    return [
        int(i)
        for i in conn.execute(
            sa.select(incident.c.id)
            .where(incident.c.problem_id == problem_id, incident.c.status.in_(OPEN_INCIDENT))
            .order_by(incident.c.id)
        ).scalars()
    ]


def incidents_of_problem(conn: Connection, problem_id: int) -> list[int]:
    return [
        int(i)
        for i in conn.execute(
            sa.select(incident.c.id).where(incident.c.problem_id == problem_id).order_by(incident.c.id)
        ).scalars()
    ]
