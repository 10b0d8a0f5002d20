"""Read models of the service desk, sales pipeline, calendar and staff lists: filters, paging and totals.

Each list returns ``(rows, total)`` with rows as plain dicts, so the REST layer pages and exports them the
same way. One query per list plus at most one for its children (participants of a page of appointments).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .errors import DomainError
from .queries import SLA_STATES, incident_sla_state, sla_state
from .schema import (
    activity,
    appointment,
    appointment_participant,
    campaign,
    campaign_member,
    expense_claim,
    expense_item,
    incident,
    opportunity,
    problem,
    sick_note,
    time_entry,
    vacation_request,
)
from .service_desk import OPEN_INCIDENT
from .staff import request_row, request_table

# the date a staff request is about: what its list filters and sorts by
STAFF_DAY = {
    "time_entry": time_entry.c.work_date,
    "expense_claim": expense_claim.c.trip_start,
    "vacation_request": vacation_request.c.first_day,
    "sick_note": sick_note.c.first_day,
}


def _rows(conn: Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in conn.execute(query)]


def _contains(column: Any, text: str) -> Any:
    """Case-insensitive substring match; LIKE wildcards in the text match literally."""
    needle = text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sa.func.lower(column).like(f"%{needle}%", escape="\\")


def _paged(
    conn: Connection, table: sa.Table, where: list[Any], order: list[Any], limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    total = conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()
    rows = _rows(conn, sa.select(table).where(*where).order_by(*order).limit(limit).offset(offset))
    return rows, int(total)


def with_sla_state(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An incident row plus its resolution SLA state while open (None once resolved or closed)."""
    state = sla_state(row["opened_at"], row["resolution_due"], now) if row["status"] in OPEN_INCIDENT else None
    return {**row, "sla_state": state}


def list_incidents(
    conn: Connection,
    *,
    now: datetime,
    status: str | None = None,
    account_id: int | None = None,
    group: str | None = None,
    priority: str | None = None,
    sla: str | None = None,
    text: str = "",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Incidents by filters, newest first; ``sla`` keeps open incidents in that resolution SLA state."""
    where: list[Any] = []
    if status is not None:
        where.append(incident.c.status == status)
    if account_id is not None:
        where.append(incident.c.account_id == account_id)
    if group is not None:
        where.append(incident.c.assigned_group == group)
    if priority is not None:
        where.append(incident.c.priority == priority)
    if text.strip():
        where.append(sa.or_(_contains(incident.c.summary, text), _contains(incident.c.number, text)))
    if sla is not None:
        v.one_of("sla_state", sla, SLA_STATES)
        where.append(incident.c.status.in_(OPEN_INCIDENT))
        where.append(incident_sla_state(now) == sla)
    rows, total = _paged(
        conn, incident, where, [incident.c.opened_at.desc(), incident.c.id.desc()], limit, offset
    )
    return [with_sla_state(row, now) for row in rows], total


def list_problems(
    conn: Connection, status: str | None = None, text: str = "", limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    where: list[Any] = []
    if status is not None:
        where.append(problem.c.status == status)
    if text.strip():
        where.append(_contains(problem.c.title, text))
    return _paged(conn, problem, where, [problem.c.created_at.desc(), problem.c.id.desc()], limit, offset)


def get_problem(conn: Connection, problem_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(problem).where(problem.c.id == problem_id)).one_or_none()
    if row is None:
        raise DomainError("problem_id", f"problem {problem_id} does not exist")
    return dict(row._mapping)


def problem_incidents(conn: Connection, problem_id: int) -> list[dict[str, Any]]:
    return _rows(conn, sa.select(incident).where(incident.c.problem_id == problem_id).order_by(incident.c.id))


def list_opportunities(
    conn: Connection,
    *,
    stage: str | None = None,
    account_id: int | None = None,
    owner: str | None = None,
    text: str = "",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Opportunities by expected close date (the order a sales team works them in)."""
    where: list[Any] = []
    if stage is not None:
        where.append(opportunity.c.stage == stage)
    if account_id is not None:
        where.append(opportunity.c.account_id == account_id)
    if owner is not None:
        where.append(opportunity.c.owner == owner)
    if text.strip():
        where.append(_contains(opportunity.c.title, text))
    order = [opportunity.c.expected_close, opportunity.c.id]
    return _paged(conn, opportunity, where, order, limit, offset)


def get_opportunity(conn: Connection, opportunity_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(opportunity).where(opportunity.c.id == opportunity_id)).one_or_none()
    if row is None:
        raise DomainError("opportunity_id", f"opportunity {opportunity_id} does not exist")
    return dict(row._mapping)


def list_campaigns(
    conn: Connection, kind: str | None = None, text: str = "", limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """Campaigns, newest first, each with its member count."""
    where: list[Any] = []
    if kind is not None:
        where.append(campaign.c.kind == kind)
    if text.strip():
        where.append(_contains(campaign.c.name, text))
    total = conn.execute(sa.select(sa.func.count()).select_from(campaign).where(*where)).scalar_one()
    count = (
        sa.select(sa.func.count())
        .where(campaign_member.c.campaign_id == campaign.c.id)
        .scalar_subquery()
        .label("member_count")
    )
    query = (
        sa.select(campaign, count)
        .where(*where)
        .order_by(campaign.c.starts_on.desc(), campaign.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return _rows(conn, query), int(total)


def get_campaign(conn: Connection, campaign_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(campaign).where(campaign.c.id == campaign_id)).one_or_none()
    if row is None:
        raise DomainError("campaign_id", f"campaign {campaign_id} does not exist")
    return dict(row._mapping)


def list_activities(
    conn: Connection,
    *,
    account_id: int | None = None,
    contact_id: int | None = None,
    campaign_id: int | None = None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Activities newest first; filtered by account this is the customer's timeline."""
    where: list[Any] = []
    for column, value in (
        (activity.c.account_id, account_id),
        (activity.c.contact_id, contact_id),
        (activity.c.campaign_id, campaign_id),
        (activity.c.kind, kind),
    ):
        if value is not None:
            where.append(column == value)
    order = [activity.c.occurred_at.desc(), activity.c.id.desc()]
    return _paged(conn, activity, where, order, limit, offset)


def participants_by_appointment(conn: Connection, ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        query = (
            sa.select(appointment_participant)
            .where(appointment_participant.c.appointment_id.in_(ids))
            .order_by(appointment_participant.c.participant)
        )
        for row in conn.execute(query):
            found[int(row.appointment_id)].append(str(row.participant))
    return found


def list_appointments(
    conn: Connection,
    *,
    participant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    status: str | None = None,
    account_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Appointments overlapping [since, until) by start time, each with its participants."""
    where: list[Any] = []
    if participant is not None:
        where.append(
            sa.exists().where(
                appointment_participant.c.appointment_id == appointment.c.id,
                appointment_participant.c.participant == participant,
            )
        )
    if since is not None:
        where.append(appointment.c.ends_at > v.aware("from", since))
    if until is not None:
        where.append(appointment.c.starts_at < v.aware("until", until))
    if status is not None:
        where.append(appointment.c.status == status)
    if account_id is not None:
        where.append(appointment.c.account_id == account_id)
    rows, total = _paged(conn, appointment, where, [appointment.c.starts_at, appointment.c.id], limit, offset)
    people = participants_by_appointment(conn, [int(row["id"]) for row in rows])
    return [{**row, "participants": people[int(row["id"])]} for row in rows], total


def list_staff_requests(
    conn: Connection,
    kind: str,
    *,
    employee: str | None = None,
    status: str | None = None,
    since: date | None = None,
    until: date | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Staff requests of one kind (a key of ``crm.staff.REQUEST_TABLES``), newest day first."""
    table = request_table(kind)
    day = STAFF_DAY[kind]
    where: list[Any] = []
    if employee is not None:
        where.append(table.c.employee == employee)
    if status is not None:
        where.append(table.c.status == status)
    if since is not None:
        where.append(day >= since)
    if until is not None:
        where.append(day <= until)
    return _paged(conn, table, where, [day.desc(), table.c.id.desc()], limit, offset)


def get_staff_request(conn: Connection, kind: str, request_id: int) -> dict[str, Any]:
    _table, row = request_row(conn, kind, request_id)
    found = dict(row._mapping)
    if kind == "expense_claim":
        found["items"] = _rows(
            conn,
            sa.select(expense_item)
            .where(expense_item.c.expense_claim_id == request_id)
            .order_by(expense_item.c.line_no),
        )
    return found


def get_activity(conn: Connection, activity_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(activity).where(activity.c.id == activity_id)).one_or_none()
    if row is None:
        raise DomainError("activity_id", f"activity {activity_id} does not exist")
    return dict(row._mapping)


def get_appointment(conn: Connection, appointment_id: int) -> dict[str, Any]:
    """The appointment with its participants."""
    row = conn.execute(sa.select(appointment).where(appointment.c.id == appointment_id)).one_or_none()
    if row is None:
        raise DomainError("appointment_id", f"appointment {appointment_id} does not exist")
    return {**row._mapping, "participants": participants_by_appointment(conn, [appointment_id])[appointment_id]}
