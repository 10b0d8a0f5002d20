"""Incidents and problems: priority and SLA deadlines from ``crm.sla``, status rules, the public and internal
log, and problems whose resolution resolves their incidents.

The response SLA is met by a person: the first log entry, routing, question to the customer or resolution *by
an agent* records ``responded_at`` — the process's own automatic routing does not (``by_person=False``). A
pending incident's clock stops (``pending_since``) and its deadlines move on by the pause when it is resumed;
a reopened incident gets fresh deadlines. An incident from an unknown mail sender has no account until triage
(:func:`attach_account`) and runs on the default SLA class meanwhile.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .accounts import get_account
from .business_calendar import BERLIN
from .errors import DomainError
from .numbering import yearly_number
from .schema import booked_service, contact, incident, incident_log, problem
from .sla import deadlines, missed, priority, shifted, sla_calendar
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


TRIAGE_SLA_CLASS = "bronze"  # until an incident without an account is given one


def open_incident(
    conn: Connection,
    account_id: int | None,
    summary: str,
    *,
    impact: str,
    urgency: str,
    origin: str = "phone",
    contact_id: int | None = None,
    booked_service_id: int | None = None,
    category: str | None = None,
    description: str | None = None,
    reporter_email: str | None = None,
    now: datetime | None = None,
) -> int:
    """Record an incident with its priority and the SLA deadlines of the account's SLA class (an incident
    without an account — a mail from an unknown sender — waits for triage on the default class)."""
    if account_id is None:
        if contact_id is not None or booked_service_id is not None:
            raise DomainError("account_id", "an incident with a contact or a service needs its account")
        sla_class = TRIAGE_SLA_CLASS
    else:
        acc = get_account(conn, account_id)
        _check_belongs(conn, contact, contact_id, "contact_id", account_id, str(acc.number))
        _check_belongs(conn, booked_service, booked_service_id, "booked_service_id", account_id, str(acc.number))
        sla_class = str(acc.sla_class)
    prio = priority(impact, urgency)
    opened = v.timestamp(now)
    due = deadlines(sla_class, prio, opened)
    values = {
        "account_id": account_id,
        "contact_id": contact_id,
        "booked_service_id": booked_service_id,
        "origin": v.one_of("origin", origin, ORIGINS),
        "category": v.optional_text("category", category, 50),
        "summary": v.required_text("summary", summary, 300),
        "description": description,
        "reporter_email": v.email(reporter_email) if reporter_email else None,
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


def sla_class_of(conn: Connection, row: sa.Row[tuple[object, ...]]) -> str:
    """The SLA class an incident's deadlines run on: its account's, or the triage default."""
    if row.account_id is None:
        return TRIAGE_SLA_CLASS
    return str(get_account(conn, int(str(row.account_id))).sla_class)


def record_response(conn: Connection, incident_id: int, now: datetime | None = None) -> bool:
    """A person answered (log entry, routing, question, resolution): the first time sets ``responded_at``.
    Returns whether this was the first response."""
    result = conn.execute(
        incident.update()
        .where(incident.c.id == incident_id, incident.c.responded_at.is_(None))
        .values(responded_at=v.timestamp(now))
    )
    return bool(result.rowcount)


def assign_incident(
    conn: Connection,
    incident_id: int,
    group: str,
    assignee: str | None = None,
    now: datetime | None = None,
    *,
    by_person: bool = True,
) -> None:
    """Route the incident to a group; a person routing it responds (the process's automatic routing does not).
    A pending incident is resumed first (its deadlines move on by the pause)."""
    if get_incident(conn, incident_id).status == "pending":
        resume_incident(conn, incident_id, now)
        reassign_incident(conn, incident_id, group, assignee, now, by_person=by_person)
        return
    if by_person:
        record_response(conn, incident_id, now)
    change_status(
        conn,
        incident,
        incident_id,
        INCIDENT_TRANSITIONS,
        "assigned",
        assigned_group=v.required_text("assigned_group", group, 100),
        assignee=v.optional_text("assignee", assignee, 200),
    )


def reassign_incident(
    conn: Connection,
    incident_id: int,
    group: str,
    assignee: str | None = None,
    now: datetime | None = None,
    *,
    by_person: bool = True,
) -> None:
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
    if by_person:
        record_response(conn, incident_id, now)


def route_incident(
    conn: Connection,
    incident_id: int,
    group: str,
    assignee: str | None = None,
    now: datetime | None = None,
    *,
    by_person: bool = True,
) -> None:
    """Give the incident to ``group`` (and person): assign it, or re-route it when it is assigned already."""
    if get_incident(conn, incident_id).status == "assigned":
        reassign_incident(conn, incident_id, group, assignee, now, by_person=by_person)
    else:
        assign_incident(conn, incident_id, group, assignee, now, by_person=by_person)


def set_pending(conn: Connection, incident_id: int, now: datetime | None = None, *, by_person: bool = True) -> None:
    """Waiting for the customer or a supplier: the SLA clock stops until :func:`resume_incident`."""
    when = v.timestamp(now)
    if by_person:
        record_response(conn, incident_id, when)
    change_status(conn, incident, incident_id, INCIDENT_TRANSITIONS, "pending", pending_since=when)


def resume_incident(conn: Connection, incident_id: int, now: datetime | None = None) -> None:
    """The customer answered: back to ``assigned``, the deadlines moved on by the working time of the pause."""
    row = get_incident(conn, incident_id)
    when = v.timestamp(now)
    values: dict[str, object] = {"pending_since": None}
    if row.status == "pending" and row.pending_since is not None:
        sla_class, prio = sla_class_of(conn, row), str(row.priority)
        values["resolution_due"] = shifted(sla_class, prio, row.resolution_due, row.pending_since, when)
        if row.responded_at is None:
            values["response_due"] = shifted(sla_class, prio, row.response_due, row.pending_since, when)
    change_status(conn, incident, incident_id, INCIDENT_TRANSITIONS, "assigned", **values)


def reopen_incident(
    conn: Connection, incident_id: int, group: str, assignee: str | None = None, now: datetime | None = None
) -> None:
    """The customer says it is not fixed: back to ``group`` with fresh resolution deadlines from now."""
    row = get_incident(conn, incident_id)
    when = v.timestamp(now)
    due = deadlines(sla_class_of(conn, row), str(row.priority), when)
    change_status(
        conn,
        incident,
        incident_id,
        INCIDENT_TRANSITIONS,
        "assigned",
        assigned_group=v.required_text("assigned_group", group, 100),
        assignee=v.optional_text("assignee", assignee, 200),
        resolution_due=due.resolution_due,
        resolved_at=None,
    )


def attach_account(
    conn: Connection, incident_id: int, account_id: int, contact_id: int | None = None, now: datetime | None = None
) -> None:
    """Triage: the incident of an unknown sender gets its account (and contact); the deadlines are those of the
    account's SLA class, counted from the opening."""
    row = get_incident(conn, incident_id)
    if row.account_id is not None and row.account_id != account_id:
        raise DomainError("account_id", f"incident {incident_id} belongs to another account already")
    acc = get_account(conn, account_id)
    _check_belongs(conn, contact, contact_id, "contact_id", account_id, str(acc.number))
    due = deadlines(str(acc.sla_class), str(row.priority), row.opened_at)
    conn.execute(
        incident.update()
        .where(incident.c.id == incident_id)
        .values(account_id=account_id, contact_id=contact_id, response_due=due.response_due,
                resolution_due=due.resolution_due)
    )


def resolve_incident(
    conn: Connection, incident_id: int, resolution: str, now: datetime | None = None
) -> None:
    when = v.timestamp(now)
    record_response(conn, incident_id, when)  # a resolution answers the customer at the latest
    change_status(
        conn,
        incident,
        incident_id,
        INCIDENT_TRANSITIONS,
        "resolved",
        resolution=v.required_text("resolution", resolution, 10000),
        resolved_at=when,
        pending_since=None,
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
    *,
    by_agent: bool = True,
) -> int:
    """Append to the incident's log; ``public`` entries are what the customer sees, ``internal`` ones not.
    An agent's entry is a response (the first sets ``responded_at``); the system's and the customer's are not."""
    get_incident(conn, incident_id)
    if by_agent:
        record_response(conn, incident_id, now)
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


# -- mail intake ----------------------------------------------------------------------------------------------
INCIDENT_NUMBER = re.compile(r"\bI-\d{4}-\d{5}\b")


def incident_numbers_in(text: str) -> list[str]:
    """Incident numbers named in a subject (``[I-2026-00021]``, ``Re: Störung I-2026-00021 behoben``)."""
    return list(dict.fromkeys(INCIDENT_NUMBER.findall(text or "")))


def sender_of(conn: Connection, address: str) -> tuple[int | None, int | None]:
    """(account_id, contact_id) of the contact with this e-mail address (case-insensitive), preferring one with
    an account; (None, None) for an unknown sender."""
    text = (address or "").strip().lower()
    if not text:
        return None, None
    row = conn.execute(
        sa.select(contact.c.id, contact.c.account_id)
        .where(sa.func.lower(contact.c.email) == text)
        .order_by(contact.c.account_id.is_(None), contact.c.id)
        .limit(1)
    ).first()
    if row is None:
        return None, None
    return (None if row.account_id is None else int(row.account_id)), int(row.id)


def reply_target(
    conn: Connection, numbers: list[str], sender: str, answers_our_mail: bool = False
) -> sa.Row[tuple[object, ...]] | None:
    """The incident a mail continues: one named by number whose account the sender belongs to (or who reported
    it), or — when the mail answers one of our own mails about it — whoever wrote. A stranger naming someone
    else's incident number does not write into it."""
    address = (sender or "").strip().lower()
    account_id, _contact_id = sender_of(conn, address)
    for number in numbers:
        row = conn.execute(sa.select(incident).where(incident.c.number == number)).first()
        if row is None:
            continue
        own = (account_id is not None and row.account_id == account_id) or (
            row.reporter_email is not None and str(row.reporter_email).lower() == address
        )
        if own or answers_our_mail:
            return row
    return None


# -- the customer's SLA report ------------------------------------------------------------------------------
def month_bounds(period: str) -> tuple[datetime, datetime]:
    """``"2026-11"`` → [1 November 00:00, 1 December 00:00) in Europe/Berlin, as UTC instants."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", period or "")
    if match is None or not 1 <= int(match[2]) <= 12:
        raise DomainError("period", f"period must be a month like 2026-11, not {period!r}")
    year, month = int(match[1]), int(match[2])
    start = datetime(year, month, 1, tzinfo=BERLIN)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=BERLIN)
    return start.astimezone(UTC), end.astimezone(UTC)


def sla_report(conn: Connection, account_id: int, period: str) -> dict[str, object]:
    """The account's QoS figures for a month: incidents opened, responses and resolutions within the SLA, the
    violations (numbers and what was missed), and the average response and resolution time in working hours."""
    since, until = month_bounds(period)
    acc = get_account(conn, account_id)
    rows = list(conn.execute(
        sa.select(incident)
        .where(incident.c.account_id == account_id, incident.c.opened_at >= since, incident.c.opened_at < until)
        .order_by(incident.c.opened_at, incident.c.id)
    ))
    violations = sla_violations(conn, account_id, since, until)
    late = {int(str(v["incident_id"])): list(v["missed"]) for v in violations}  # type: ignore[call-overload]
    response_hours, resolution_hours = [], []
    for row in rows:
        calendar = sla_calendar(str(acc.sla_class), str(row.priority))
        if row.responded_at is not None:
            response_hours.append(calendar.working_time(row.opened_at, row.responded_at).total_seconds() / 3600)
        if row.resolved_at is not None:
            resolution_hours.append(calendar.working_time(row.opened_at, row.resolved_at).total_seconds() / 3600)

    def average(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 1) if values else None

    return {
        "account_id": account_id,
        "period": period,
        "sla_class": str(acc.sla_class),
        "incidents": len(rows),
        "resolved": sum(1 for r in rows if r.resolved_at is not None),
        "response_met": sum(1 for r in rows if "response" not in late.get(int(r.id), [])),
        "resolution_met": sum(1 for r in rows if "resolution" not in late.get(int(r.id), [])),
        "violations": [{"number": str(v["number"]), "priority": str(v["priority"]), "missed": list(v["missed"])}  # type: ignore[call-overload]
                       for v in violations],
        "average_response_hours": average(response_hours),
        "average_resolution_hours": average(resolution_hours),
    }


def accounts_with_incidents(conn: Connection, period: str) -> list[int]:
    """The accounts with incidents opened in the month: they get an SLA report."""
    since, until = month_bounds(period)
    return [int(i) for i in conn.execute(
        sa.select(incident.c.account_id).distinct()
        .where(incident.c.account_id.is_not(None), incident.c.opened_at >= since, incident.c.opened_at < until)
        .order_by(incident.c.account_id)
    ).scalars()]
