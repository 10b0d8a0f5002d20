"""Read models for inboxes and lists: filtered, sorted, paged queries over the projections."""

from __future__ import annotations

import functools
import json
import operator
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from .database import as_utc, utcnow
from .errors import EngineError
from .participants import Audience, audience_condition
from .schema import process_instance, user_task, user_task_group

VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
TASK_SORTS = {"created": user_task.c.created_at, "due": user_task.c.due_at, "priority": user_task.c.priority,
              "name": user_task.c.name}
INSTANCE_SORTS = {"started": process_instance.c.started_at, "ended": process_instance.c.ended_at,
                  "key": process_instance.c.process_key}


class QueryError(EngineError, ValueError):
    """A filter or sort a client asked for that cannot be applied."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class TaskView:
    id: str
    instance_id: str
    element_id: str
    name: str | None
    lane: str | None
    candidate_groups: list[str]
    assignee: str | None
    form_key: str | None
    due_at: datetime | None
    priority: int
    process_key: str
    business_key: str | None
    state: str
    created_at: datetime
    claimed_at: datetime | None
    completed_at: datetime | None
    completed_by: str | None


@dataclass(frozen=True)
class InstanceSummary:
    id: str
    process_key: str
    process_version: int
    business_key: str | None
    state: str
    started_at: datetime
    ended_at: datetime | None
    started_by: str | None


@dataclass
class TaskFilter:
    instance_id: str | None = None
    state: str | None = "open"
    assignee: str | None = None
    candidate_group: str | None = None
    unassigned: bool = False
    process_key: str | None = None
    business_key: str | None = None
    due_before: datetime | None = None
    created_after: datetime | None = None
    # A clerk sees tasks assigned to them or offered to one of their groups.
    visible_to_user: str | None = None
    visible_to_groups: list[str] | None = None
    # Leave out the tasks this person may not work on (an approval of their own request: engine/assignment.py).
    hidden_from: str | None = None
    sort: str = "created"
    limit: int = 50
    offset: int = 0


@dataclass
class InstanceFilter:
    process_key: str | None = None
    state: str | None = None
    business_key: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    # Only the instances this audience may see (need-to-know); None: every instance (the engine's own callers).
    audience: Audience | None = None
    sort: str = "-started"
    limit: int = 50
    offset: int = 0


def task_view(row: Any) -> TaskView:
    return TaskView(row.id, row.instance_id, row.element_id, row.name, row.lane,
                    row.candidate_groups.split(",") if row.candidate_groups else [], row.assignee,
                    row.form_key, as_utc(row.due_at), row.priority, row.process_key, row.business_key,
                    row.state, as_utc(row.created_at) or utcnow(), as_utc(row.claimed_at),
                    as_utc(row.completed_at), row.completed_by)


def _order(sort: str, columns: dict[str, Any], tie: Any) -> list[Any]:
    name = sort.lstrip("-")
    if name not in columns:
        raise QueryError("sort", f"unknown sort '{sort}' (use one of {', '.join(sorted(columns))}, '-' for descending)")
    column = columns[name]
    return [column.desc() if sort.startswith("-") else column.asc(), tie]


def _page(limit: int, offset: int) -> None:
    if not 1 <= limit <= 1000:
        raise QueryError("limit", "must be between 1 and 1000")
    if offset < 0:
        raise QueryError("offset", "must not be negative")


def query_tasks(conn: Connection, f: TaskFilter) -> tuple[list[TaskView], int]:
    _page(f.limit, f.offset)
    conditions: list[Any] = []
    if f.instance_id is not None:
        conditions.append(user_task.c.instance_id == f.instance_id)
    if f.state is not None:
        conditions.append(user_task.c.state == f.state)
    if f.assignee is not None:
        conditions.append(user_task.c.assignee == f.assignee)
    if f.unassigned:
        conditions.append(user_task.c.assignee.is_(None))
    if f.candidate_group is not None:
        conditions.append(user_task.c.id.in_(sa.select(user_task_group.c.task_id)
                                             .where(user_task_group.c.group_name == f.candidate_group)))
    if f.process_key is not None:
        conditions.append(user_task.c.process_key == f.process_key)
    if f.business_key is not None:
        conditions.append(user_task.c.business_key == f.business_key)
    if f.due_before is not None:
        conditions.append(user_task.c.due_at < f.due_before)
    if f.created_after is not None:
        conditions.append(user_task.c.created_at > f.created_after)
    if f.hidden_from is not None:
        conditions.append(sa.or_(user_task.c.excluded_users.is_(None),
                                 sa.not_(user_task.c.excluded_users.contains(f",{f.hidden_from},", autoescape=True))))
    filters = sa.and_(sa.true(), *conditions)
    if f.visible_to_groups is None:
        where = filters
        total = conn.execute(sa.select(sa.func.count()).select_from(user_task).where(where)).scalar_one()
    else:
        visible = [_offered_to_any(f.visible_to_groups)]
        if f.visible_to_user is not None:
            visible.append(user_task.c.assignee == f.visible_to_user)
        where = sa.and_(filters, sa.or_(*visible))
        total = _count_visible(conn, filters, f)
    rows = conn.execute(sa.select(user_task).where(where).order_by(*_order(f.sort, TASK_SORTS, user_task.c.id))
                        .limit(f.limit).offset(f.offset))
    return [task_view(r) for r in rows], int(total)


def _offered_to_one_of(groups: list[str]) -> Any:
    """The task is offered to exactly one group, one of ``groups`` (the usual case): a plain equality, so the
    planner estimates it from the column statistics and a count is an index-only scan."""
    return user_task.c.candidate_groups.in_(groups)


def _offered_to_any(groups: list[str]) -> Any:
    """The task's own candidate-group list names one of ``groups`` (NULL when it has none).

    A row filter rather than a lookup in ``user_task_group``: the inbox page walks the sort index and stops
    after ``limit`` rows, whereas a subquery over the group table makes PostgreSQL hash every task of the
    groups first (tens of milliseconds with 100 000 open tasks). Only lists of several groups need a pattern.
    """
    if not groups:
        return sa.false()
    listed = sa.literal(",") + user_task.c.candidate_groups + sa.literal(",")
    one_of_several = sa.and_(user_task.c.candidate_groups.contains(",", autoescape=True),
                             sa.or_(*(listed.contains(f",{group},", autoescape=True) for group in groups)))
    return sa.or_(_offered_to_one_of(groups), one_of_several)


def _is_plain_inbox(f: TaskFilter) -> bool:
    """A clerk's inbox with no filter but the state: its single-group tasks are countable from the group index."""
    return (f.state is not None and f.instance_id is None and f.assignee is None and not f.unassigned
            and f.candidate_group is None and f.process_key is None and f.business_key is None
            and f.due_before is None and f.created_after is None)


def _count_visible(conn: Connection, filters: Any, f: TaskFilter) -> int:
    """How many tasks matching ``filters`` a clerk sees, in one round trip of three disjoint counts.

    Tasks offered to one of the groups alone; tasks offered to several groups, found through their ``shared``
    rows in the group index (usually few, so their DISTINCT is cheap); tasks assigned to the user that none of
    the groups is offered. No part scans every open task. The plain inbox counts its single-group tasks in the
    group index (index-only, and its rows change only when a task closes, so they stay all-visible); with more
    filters the tasks' ``(state, candidate_groups)`` index answers.
    """
    groups = f.visible_to_groups or []

    def count(condition: Any) -> Any:
        return sa.select(sa.func.count()).select_from(user_task).where(filters, condition).scalar_subquery()

    parts: list[Any] = []
    if groups:
        in_groups: Any = user_task_group.c.group_name.in_(groups)
        if f.state is not None:
            in_groups = sa.and_(in_groups, user_task_group.c.state == f.state)
        if _is_plain_inbox(f):
            parts.append(sa.select(sa.func.count()).select_from(user_task_group)
                         .where(in_groups, user_task_group.c.shared.is_(False)).scalar_subquery())
        else:
            parts.append(count(_offered_to_one_of(groups)))
        parts.append(sa.select(sa.func.count(sa.distinct(user_task_group.c.task_id)))
                     .select_from(user_task_group.join(user_task, user_task.c.id == user_task_group.c.task_id))
                     .where(in_groups, user_task_group.c.shared.is_(True), filters).scalar_subquery())
    if f.visible_to_user is not None:
        parts.append(count(sa.and_(user_task.c.assignee == f.visible_to_user,
                                   sa.or_(user_task.c.candidate_groups.is_(None), sa.not_(_offered_to_any(groups))))))
    if not parts:
        return 0
    return int(conn.execute(sa.select(functools.reduce(operator.add, parts))).scalar_one())


def _variable_condition(conn: Connection, name: str, value: Any) -> Any:
    if not VARIABLE_NAME.match(name):
        raise QueryError("variable", f"'{name}' is not a variable name")
    if conn.dialect.name == "postgresql":
        text = value if isinstance(value, str) else json.dumps(value)
        return sa.cast(process_instance.c.variables, JSONB)[name].astext == text
    return sa.func.json_extract(process_instance.c.variables, f"$.{name}") == value


def query_instances(conn: Connection, f: InstanceFilter) -> tuple[list[InstanceSummary], int]:
    _page(f.limit, f.offset)
    conditions: list[Any] = []
    if f.process_key is not None:
        conditions.append(process_instance.c.process_key == f.process_key)
    if f.state is not None:
        conditions.append(process_instance.c.state == f.state)
    if f.business_key is not None:
        conditions.append(process_instance.c.business_key == f.business_key)
    if f.started_after is not None:
        conditions.append(process_instance.c.started_at > f.started_after)
    if f.started_before is not None:
        conditions.append(process_instance.c.started_at < f.started_before)
    for name, value in f.variables.items():
        conditions.append(_variable_condition(conn, name, value))
    if f.audience is not None:
        conditions.append(audience_condition(f.audience))
    where = sa.and_(sa.true(), *conditions)
    total = conn.execute(sa.select(sa.func.count()).select_from(process_instance).where(where)).scalar_one()
    columns = [process_instance.c[c] for c in ("id", "process_key", "process_version", "business_key", "state",
                                               "started_at", "ended_at", "started_by")]
    rows = conn.execute(sa.select(*columns).where(where)
                        .order_by(*_order(f.sort, INSTANCE_SORTS, process_instance.c.id))
                        .limit(f.limit).offset(f.offset))
    return [InstanceSummary(r.id, r.process_key, r.process_version, r.business_key, r.state,
                            as_utc(r.started_at) or utcnow(), as_utc(r.ended_at), r.started_by)
            for r in rows], int(total)
