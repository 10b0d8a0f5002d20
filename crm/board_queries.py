"""Read models of the service-desk board (incidents by status, one incident, one problem, the caller lookup of
phone capture). Its writes are ``crm.service_desk``'s. One query per block, joined with the account, so the
board never loops per card.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .errors import DomainError
from .queries import SLA_STATES, incident_sla_state
from .schema import account, contact, incident, problem
from .service_desk import OPEN_INCIDENT

BOARD_STATUSES = ("new", "assigned", "pending", "resolved")
OPEN_LIMIT = 50  # cards per open column, most urgent first (300 made 0.8 MB of HTML and > 300 ms at 100k accounts)
RESOLVED_LIMIT = 50  # the newest resolved incidents only


def _rows(conn: Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in conn.execute(query)]


_INCIDENT_WITH_ACCOUNT = (
    incident,
    account.c.name.label("account_name"),
    account.c.number.label("account_number"),
    account.c.sla_class.label("sla_class"),
)


def _with_account() -> Any:
    return sa.select(*_INCIDENT_WITH_ACCOUNT).select_from(
        incident.join(account, account.c.id == incident.c.account_id)
    )


@dataclass(frozen=True)
class BoardFilter:
    """The board's filters; ``sla`` (within, at_risk, breached) is judged at ``now`` and keeps only open
    incidents, so it hides the resolved column."""

    group: str | None = None
    priority: str | None = None
    assignee: str | None = None
    sla: str | None = None
    now: datetime | None = None

    def statuses(self) -> tuple[str, ...]:
        return OPEN_INCIDENT if self.sla else BOARD_STATUSES

    def where(self) -> list[Any]:
        """WHERE terms; the SLA state is computed in SQL by ``crm.queries.sla_state``'s rule, so the card limit
        and the column totals stay right however many incidents there are."""
        terms: list[Any] = []
        if self.sla:
            v.one_of("sla", self.sla, SLA_STATES)
            if self.now is None:
                raise DomainError("now", "the SLA filter needs the current time")
            terms.append(incident_sla_state(self.now) == self.sla)
        if self.group:
            terms.append(incident.c.assigned_group == self.group)
        if self.priority:
            terms.append(incident.c.priority == self.priority)
        if self.assignee:
            terms.append(incident.c.assignee == self.assignee)
        return terms


def board_totals(conn: Connection, chosen: BoardFilter = BoardFilter()) -> dict[str, int]:
    """How many incidents each column holds in all, since a column shows only the first of them."""
    statuses = chosen.statuses()
    query = (sa.select(incident.c.status, sa.func.count())
             .where(incident.c.status.in_(statuses), *chosen.where())
             .group_by(incident.c.status))
    counted = {str(status): int(count) for status, count in conn.execute(query)}
    return {status: counted.get(status, 0) for status in statuses}


def board_incidents(
    conn: Connection,
    chosen: BoardFilter = BoardFilter(),
    *,
    open_limit: int = OPEN_LIMIT,
    resolved_limit: int = RESOLVED_LIMIT,
) -> dict[str, list[dict[str, Any]]]:
    """Incidents per board column: open ones most urgent deadline first, resolved ones newest first."""
    filters = chosen.where()
    columns: dict[str, list[dict[str, Any]]] = {}
    for status in chosen.statuses():
        query = _with_account().where(incident.c.status == status, *filters)
        if status == "resolved":
            query = query.order_by(incident.c.resolved_at.desc(), incident.c.id.desc()).limit(resolved_limit)
        else:
            query = query.order_by(incident.c.resolution_due, incident.c.id).limit(open_limit)
        columns[status] = _rows(conn, query)
    return columns


def assigned_groups(conn: Connection) -> list[str]:
    """Groups incidents have been routed to so far: the choices of the group filter."""
    query = (
        sa.select(incident.c.assigned_group)
        .where(incident.c.assigned_group.is_not(None))
        .distinct()
        .order_by(incident.c.assigned_group)
    )
    return [str(g) for g in conn.execute(query).scalars()]


def incident_detail(conn: Connection, incident_id: int) -> dict[str, Any]:
    """One incident with its account, contact and problem names (the incident page)."""
    query = (
        sa.select(
            *_INCIDENT_WITH_ACCOUNT,
            contact.c.first_name.label("contact_first_name"),
            contact.c.last_name.label("contact_last_name"),
            contact.c.phone.label("contact_phone"),
            problem.c.title.label("problem_title"),
        )
        .select_from(
            incident.join(account, account.c.id == incident.c.account_id)
            .outerjoin(contact, contact.c.id == incident.c.contact_id)
            .outerjoin(problem, problem.c.id == incident.c.problem_id)
        )
        .where(incident.c.id == incident_id)
    )
    row = conn.execute(query).first()
    if row is None:
        raise DomainError("incident_id", f"incident {incident_id} does not exist")
    return dict(row._mapping)


def problem_detail(conn: Connection, problem_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A problem and its incidents (with their accounts), oldest incident first."""
    row = conn.execute(sa.select(problem).where(problem.c.id == problem_id)).first()
    if row is None:
        raise DomainError("problem_id", f"problem {problem_id} does not exist")
    incidents = _rows(conn, _with_account().where(incident.c.problem_id == problem_id).order_by(incident.c.id))
    return dict(row._mapping), incidents


def find_account(conn: Connection, text: str) -> dict[str, Any] | None:
    """An account by its number (``K-10001``, any case) or its database id; None when there is none."""
    needle = text.strip()
    if not needle:
        return None
    where: Any = sa.func.upper(account.c.number) == needle.upper()
    if needle.isdigit():
        where = sa.or_(where, account.c.id == int(needle))
    row = conn.execute(sa.select(account).where(where).order_by(account.c.id).limit(1)).first()
    return dict(row._mapping) if row is not None else None


def contacts_of(conn: Connection, account_id: int) -> list[dict[str, Any]]:
    """The account's contact persons for the caller drop-down, by name."""
    query = (
        sa.select(contact.c.id, contact.c.first_name, contact.c.last_name, contact.c.phone)
        .where(contact.c.account_id == account_id)
        .order_by(contact.c.last_name, contact.c.first_name, contact.c.id)
    )
    return _rows(conn, query)

