"""Whom an instance concerns: its initiator, the people and groups that hold or held one of its user tasks, and
whether its definition is confidential. The engine only reports these facts (and filters lists by them); who may
see what is decided once, in the API layer (``api/access.py``).

A process is confidential when one of its start events declares the property ``confidential`` (true/yes/1):

    <bpmn:startEvent id="start">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="initiator" value="employee"/>
        <spiffworkflow:property name="confidential" value="true"/>
      </spiffworkflow:properties></bpmn:extensionElements>
    </bpmn:startEvent>

Deploy stores the flag on the definition, so a list filters by it in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.defaults import StartEvent
from sqlalchemy.engine import Connection

from .errors import NotFound
from .schema import process_definition, process_instance, user_task, user_task_group

CONFIDENTIAL_PROPERTY = "confidential"


def is_confidential(spec: BpmnProcessSpec) -> bool:
    """Whether a start event of the process declares it confidential (read once, at deploy)."""
    for task_spec in spec.task_specs.values():
        if isinstance(task_spec, StartEvent):
            properties = (getattr(task_spec, "extensions", None) or {}).get("properties") or {}
            if str(properties.get(CONFIDENTIAL_PROPERTY, "")).strip().lower() in ("true", "yes", "1"):
                return True
    return False


@dataclass(frozen=True)
class Participants:
    """The facts a need-to-know decision about one instance rests on."""

    instance_id: str
    process_key: str
    confidential: bool
    initiator: str | None
    users: frozenset[str]  # assignees and completers of its user tasks, open or closed
    groups: frozenset[str]  # candidate groups of its user tasks, open or closed


def participants(conn: Connection, instance_id: str) -> Participants:
    """The instance's participants; NotFound for an unknown id (three indexed lookups)."""
    row = conn.execute(sa.select(process_instance.c.process_key, process_instance.c.started_by,
                                 process_definition.c.confidential)
                       .join(process_definition, process_definition.c.id == process_instance.c.definition_id)
                       .where(process_instance.c.id == instance_id)).first()
    if row is None:
        raise NotFound(f"process instance '{instance_id}' does not exist")
    users: set[str] = set()
    for task in conn.execute(sa.select(user_task.c.assignee, user_task.c.completed_by)
                             .where(user_task.c.instance_id == instance_id)):
        users.update(u for u in (task.assignee, task.completed_by) if u)
    groups = {g for (g,) in conn.execute(
        sa.select(user_task_group.c.group_name).distinct()
        .join(user_task, user_task.c.id == user_task_group.c.task_id)
        .where(user_task.c.instance_id == instance_id))}
    return Participants(instance_id, row.process_key, bool(row.confidential), row.started_by, frozenset(users),
                        frozenset(groups))


@dataclass
class Audience:
    """Whose instances a list shows, in the engine's terms (no roles): the API layer fills it per caller.

    Ordinary instances: all (``all_ordinary``), or those started by or with a task held by one of ``users``, or
    with a task offered to one of ``groups``. Confidential instances: all (``all_confidential``), or those
    started by or with a task held by one of ``confidential_users``.
    """

    users: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    confidential_users: list[str] = field(default_factory=list)
    all_ordinary: bool = False
    all_confidential: bool = False


def _concerning(users: list[str], groups: list[str]) -> Any:
    """Instances started by one of ``users``, with a task they hold or held, or offered to one of ``groups``;
    each part an indexed semi-join, so a list never loads instances it does not show."""
    parts: list[Any] = []
    if users:
        parts.append(process_instance.c.started_by.in_(users))
        parts.append(process_instance.c.id.in_(sa.select(user_task.c.instance_id)
                                                .where(user_task.c.assignee.in_(users))))
        parts.append(process_instance.c.id.in_(sa.select(user_task.c.instance_id)
                                                .where(user_task.c.completed_by.in_(users))))
    if groups:
        parts.append(process_instance.c.id.in_(
            sa.select(user_task.c.instance_id)
            .join(user_task_group, user_task_group.c.task_id == user_task.c.id)
            .where(user_task_group.c.group_name.in_(groups))))
    return sa.or_(*parts) if parts else sa.false()


def audience_condition(audience: Audience) -> Any:
    """A WHERE condition on ``process_instance`` for the instances ``audience`` may see."""
    confidential = process_instance.c.definition_id.in_(
        sa.select(process_definition.c.id).where(process_definition.c.confidential.is_(True)))
    ordinary = sa.true() if audience.all_ordinary else _concerning(audience.users, audience.groups)
    secret = sa.true() if audience.all_confidential else _concerning(audience.confidential_users, [])
    return sa.or_(sa.and_(sa.not_(confidential), ordinary), sa.and_(confidential, secret))
