"""Loading and saving instances together with their projections.

Each unit of work loads the instance row, advances the workflow and saves the state with every projection
(user tasks, timer jobs, message subscriptions, history) in the same transaction. The row's lock_version
makes a concurrent writer lose with ``Conflict`` instead of overwriting.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.engine import Connection

from . import webhooks
from .assignment import Routing, encode_excluded, is_personal_spec, routing_of
from .database import as_utc, utcnow
from .errors import Conflict, NotFound, ProcessError
from .pruning import compact
from .repository import DefinitionRepository, LoadedDefinition, strip_schema_suffix
from .sandbox import MAX_DATA_BYTES, RestrictedScriptEngine
from .schema import history_event, job, message_subscription, process_instance, user_task, user_task_group
from .serialization import StateSerializer
from .specs import ExternalServiceTask
from .stepper import (
    HistoryEntry,
    all_tasks,
    caught_names,
    element_id,
    entry_for,
    event_members,
    service_call,
    timer_due,
)
from .timers import Period

RUNNING, COMPLETED, CANCELLED = "running", "completed", "cancelled"
SERVICE_JOB = "service"
TIMER_JOB = "timer"
CONTINUATION_JOB = "continue"
DEFAULT_RETRIES = 3


@dataclass
class Snapshot:
    """What an instance waits for: the part of its state that the projections mirror."""

    user_tasks: dict[str, Any] = field(default_factory=dict)
    timers: dict[str, tuple[Any, datetime | None]] = field(default_factory=dict)
    messages: dict[str, Any] = field(default_factory=dict)
    services: dict[str, Any] = field(default_factory=dict)
    signals: dict[str, Any] = field(default_factory=dict)


def take_snapshot(workflow: BpmnWorkflow) -> Snapshot:
    snap = Snapshot()
    for task in all_tasks(workflow):
        if task.state == TaskState.READY and task.task_spec.manual:
            snap.user_tasks[str(task.id)] = task
        elif task.state == TaskState.STARTED and isinstance(task.task_spec, ExternalServiceTask):
            snap.services[str(task.id)] = task
    for task in workflow.event_manager.tasks.values():
        if not task.has_state(TaskState.WAITING):
            continue
        members = event_members(task)
        if any(isinstance(d, TimerEventDefinition) for d in members):
            snap.timers[str(task.id)] = (task, timer_due(task))
        if any(isinstance(d, MessageEventDefinition) for d in members):
            snap.messages[str(task.id)] = task
        if any(isinstance(d, SignalEventDefinition) for d in members):
            snap.signals[str(task.id)] = task
    return snap


def current_variables(workflow: BpmnWorkflow) -> dict[str, Any]:
    """The data an instance shows: the workflow data when it ended, else the data at its live tasks."""
    if workflow.is_completed():
        data = dict(workflow.data)
    else:
        data = {}
        live = [t for t in workflow.tasks.values()
                if t.state in (TaskState.READY, TaskState.WAITING, TaskState.STARTED)]
        for task in sorted(live, key=lambda t: t.last_state_change):
            data.update(task.data)
        if not live and workflow.last_task is not None:
            data.update(workflow.last_task.data)
    return without_data_objects(data)


def without_data_objects(data: dict[str, Any]) -> dict[str, Any]:
    """Spiff keeps BPMN data objects under one key of the data; they are not variables anyone edits."""
    return {k: v for k, v in data.items() if k != "data_objects"}


@dataclass
class LoadedInstance:
    id: str
    definition: LoadedDefinition
    business_key: str | None
    state: str
    lock_version: int
    called_versions: dict[str, int]
    workflow: BpmnWorkflow
    before: Snapshot
    variables_before: dict[str, Any]
    started_at: datetime | None = None
    is_new: bool = False
    jobs_created: int = 0


def _properties(task: Any) -> dict[str, str]:
    extensions = getattr(task.task_spec, "extensions", None) or {}
    return dict(extensions.get("properties") or {})


def form_key_of(task: Any) -> str | None:
    props = _properties(task)
    key = props.get("formKey") or props.get("formJsonSchemaFilename")
    return strip_schema_suffix(key) if key else None


def candidate_groups_of(task: Any, routing: Routing | None = None) -> list[str]:
    """The lane (unless the model gives the task a person, see engine/assignment.py) and the extra groups
    (``routing``'s evaluated ones; without it the literal ``candidateGroups``, and ``["…"]`` for an expression,
    enough to tell whether a task has groups at all)."""
    groups: list[str] = []
    lane = getattr(task.task_spec, "lane", None)
    if lane and not (routing.personal if routing is not None else is_personal_spec(task)):
        groups.append(str(lane))
    if routing is not None:
        groups.extend(routing.extra_groups)
    else:
        extra = _properties(task).get("candidateGroups")
        if extra:
            groups.extend(g.strip() for g in extra.split(",") if g.strip())
    return list(dict.fromkeys(groups))


def due_at_of(task: Any, now: datetime) -> datetime | None:
    props = _properties(task)
    if props.get("dueIn"):
        return Period.parse(props["dueIn"]).after(now)
    parent = task.parent
    if parent is not None and type(parent.task_spec).__name__ == "BoundaryEventSplit":
        dues = [timer_due(sibling) for sibling in parent.children
                if sibling is not task and sibling.has_state(TaskState.WAITING)
                and isinstance(getattr(sibling.task_spec, "event_definition", None), TimerEventDefinition)]
        dues_known = [d for d in dues if d is not None]
        if dues_known:
            return min(dues_known)
    return None


def close_user_tasks(conn: Connection, task_ids: list[str], state: str, now: datetime,
                     completed_by: str | None = None, grouped: bool = True) -> None:
    """Close open tasks in the inbox and in its group index together (``grouped``: any has candidate groups)."""
    conn.execute(user_task.update().where(user_task.c.id.in_(task_ids)).where(user_task.c.state == "open")
                 .values(state=state, completed_at=now, completed_by=completed_by))
    if grouped:
        conn.execute(user_task_group.update().where(user_task_group.c.task_id.in_(task_ids)).values(state=state))


class InstanceStore:
    """Rows ↔ workflows for one engine; shares the definition cache and one serializer."""

    def __init__(self, repository: DefinitionRepository, script_engine: RestrictedScriptEngine) -> None:
        self.repository = repository
        self.script_engine = script_engine
        self.serializer = StateSerializer()

    def new(self, conn: Connection, definition: LoadedDefinition, business_key: str | None) -> LoadedInstance:
        specs, versions = self.repository.resolve_called(conn, definition)
        workflow = BpmnWorkflow(definition.parsed.spec, specs, script_engine=self.script_engine)
        return LoadedInstance(str(uuid.uuid4()), definition, business_key, RUNNING, 0, versions, workflow,
                              Snapshot(), {}, utcnow(), is_new=True)

    def load(self, conn: Connection, instance_id: str, for_update: bool = True) -> LoadedInstance:
        query = sa.select(process_instance).where(process_instance.c.id == instance_id)
        if for_update and conn.dialect.name == "postgresql":
            # Writers of one instance queue on its row instead of both loading the same version and one losing
            # with a conflict: parallel branches completed at once all succeed. (SQLite's writers are
            # serialised by BEGIN IMMEDIATE already.)
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"process instance '{instance_id}' does not exist")
        definition = self.repository.get(conn, row.process_key, row.process_version)
        pinned = json.loads(row.called_versions)
        specs, versions = self.repository.resolve_called(conn, definition, pinned)
        workflow = BpmnWorkflow(definition.parsed.spec, specs, script_engine=self.script_engine,
                                deserializing=True)
        self.serializer.loads(row.workflow_state, workflow)
        return LoadedInstance(row.id, definition, row.business_key, row.state, row.lock_version, versions,
                              workflow, take_snapshot(workflow), json.loads(row.variables),
                              as_utc(row.started_at))

    def save(self, conn: Connection, inst: LoadedInstance, history: list[HistoryEntry],
             user: str | None = None, final_state: str | None = None) -> None:
        workflow = inst.workflow
        now = utcnow()
        compact(workflow)
        after = take_snapshot(workflow) if final_state is None else Snapshot()
        state_json = self.serializer.dumps(workflow)
        if len(state_json) > MAX_DATA_BYTES:  # the same bound the sandbox puts on a task's data (issue 21)
            raise ProcessError(f"the instance state would be {len(state_json) / 1048576:.1f} MiB, more than the "
                               f"limit of {MAX_DATA_BYTES / 1048576:g} MiB (SILVERFLOW_MAX_INSTANCE_STATE_BYTES); "
                               "keep large content in documents")
        variables = self.serializer.to_jsonable(current_variables(workflow)) if final_state is None \
            else inst.variables_before
        completed = final_state is None and workflow.is_completed()
        state = final_state or (COMPLETED if completed else RUNNING)
        ended_at = now if state != RUNNING else None
        values = dict(state=state, lock_version=inst.lock_version + 1, workflow_state=state_json,
                      variables=json.dumps(variables), called_versions=json.dumps(inst.called_versions),
                      ended_at=ended_at)
        if inst.is_new:
            conn.execute(_INSERT_INSTANCE, dict(
                id=inst.id, definition_id=inst.definition.info.id, process_key=inst.definition.info.key,
                process_version=inst.definition.info.version, business_key=inst.business_key,
                started_at=inst.started_at or now, started_by=user, error=None, **values))
            history.insert(0, HistoryEntry("instance.started", user_id=user,
                                           data={"variables": variables}, at=inst.started_at or now))
            inst.is_new = False
        else:
            result = conn.execute(_UPDATE_INSTANCE, dict(b_id=inst.id, b_lock_version=inst.lock_version,
                                                          **values))
            if result.rowcount != 1:
                raise Conflict(f"process instance '{inst.id}' was changed concurrently; reload and retry")
        inst.lock_version += 1
        inst.state = state
        self._project_user_tasks(conn, inst, after, history, now)
        inst.jobs_created += self._project_timers(conn, inst, after, history, now)
        self._project_messages(conn, inst, after, history, now)
        inst.jobs_created += self._project_service_jobs(conn, inst, after, history, now)
        changed = {k: v for k, v in variables.items() if inst.variables_before.get(k, _MISSING) != v}
        removed = [k for k in inst.variables_before if k not in variables]
        if changed or removed:
            history.append(HistoryEntry("variables.changed", user_id=user,
                                        data={"changed": changed, "removed": removed}))
        if state == COMPLETED:
            history.append(HistoryEntry("instance.completed", user_id=user))
        inst.jobs_created += webhooks.emit(conn, inst.id, inst.definition.info.key, [
            (e.type, {"elementId": e.element_id, "taskId": e.task_id, "variables": variables}
             if e.type == "instance.completed" else {"elementId": e.element_id, "taskId": e.task_id,
                                                     "name": e.element_name})
            for e in history if e.type in webhooks.EVENTS])
        self._write_history(conn, inst.id, history)
        inst.before = after
        inst.variables_before = variables

    # -- projections ------------------------------------------------------------------------------------
    def _project_user_tasks(self, conn: Connection, inst: LoadedInstance, after: Snapshot,
                            history: list[HistoryEntry], now: datetime) -> None:
        gone = [tid for tid in inst.before.user_tasks if tid not in after.user_tasks]
        if gone:
            close_user_tasks(conn, gone, "cancelled", now,
                             grouped=any(candidate_groups_of(inst.before.user_tasks[tid]) for tid in gone))
            for tid in gone:
                task = inst.before.user_tasks[tid]
                if task.has_state(TaskState.CANCELLED):
                    history.append(entry_for(task, "task.cancelled"))
        new = [task for tid, task in after.user_tasks.items() if tid not in inst.before.user_tasks]
        if not new:
            return
        rows: list[dict[str, Any]] = []
        groups: list[dict[str, Any]] = []
        for task in new:
            props = _properties(task)
            routing = routing_of(task, self.script_engine)
            candidate_groups = candidate_groups_of(task, routing)
            rows.append(dict(
                id=str(task.id), instance_id=inst.id, element_id=element_id(task),
                name=getattr(task.task_spec, "bpmn_name", None) or element_id(task),
                lane=getattr(task.task_spec, "lane", None), candidate_groups=",".join(candidate_groups) or None,
                assignee=routing.assignee, personal=routing.personal,
                excluded_users=encode_excluded(routing.excluded), form_key=form_key_of(task),
                due_at=due_at_of(task, now), priority=int(props.get("priority", 50)),
                process_key=inst.definition.info.key, business_key=inst.business_key, state="open",
                created_at=now, claimed_at=None, completed_at=None, completed_by=None))
            groups.extend({"task_id": str(task.id), "group_name": g, "shared": len(candidate_groups) > 1}
                          for g in candidate_groups)
            created: dict[str, Any] = {"candidateGroups": candidate_groups}
            if routing.assignee:
                created["assignee"] = routing.assignee
            if routing.excluded:
                created["excludedUsers"] = routing.excluded
            history.append(entry_for(task, "task.created", data=created))
        conn.execute(_INSERT_USER_TASK, rows)
        if groups:
            conn.execute(user_task_group.insert(), groups)

    def _project_timers(self, conn: Connection, inst: LoadedInstance, after: Snapshot,
                        history: list[HistoryEntry], now: datetime) -> int:
        gone = [tid for tid in inst.before.timers if tid not in after.timers]
        changed = [tid for tid, (_t, due) in after.timers.items()
                   if tid in inst.before.timers and inst.before.timers[tid][1] != due]
        if gone or changed:
            conn.execute(job.delete().where(job.c.instance_id == inst.id).where(job.c.kind == TIMER_JOB)
                         .where(job.c.task_id.in_(gone + changed)))
        new = [tid for tid in after.timers if tid not in inst.before.timers] + changed
        for tid in new:
            task, due = after.timers[tid]
            history.append(entry_for(task, "element.entered",
                                     data={"waitsFor": "timer", "dueAt": due.isoformat() if due else None}))
        if new:
            conn.execute(job.insert(), [dict(
                id=str(uuid.uuid4()), kind=TIMER_JOB, state="pending", instance_id=inst.id, task_id=tid,
                process_key=inst.definition.info.key, element_id=element_id(after.timers[tid][0]),
                due_at=after.timers[tid][1] or (now + timedelta(days=36500)), payload=None, attempts=0,
                max_attempts=1, lock_owner=None, lock_expires_at=None, last_error=None, last_traceback=None,
                idempotency_key=f"{inst.id}:{tid}", created_at=now, finished_at=None) for tid in new])
        return len(new)

    def _project_service_jobs(self, conn: Connection, inst: LoadedInstance, after: Snapshot,
                              history: list[HistoryEntry], now: datetime) -> int:
        """A service task waiting for its connector is a job; one that went away takes its job along."""
        gone = [tid for tid in inst.before.services if tid not in after.services]
        if gone:
            # The worker that completed a task marks its own job done; anything else was interrupted.
            conn.execute(job.update().where(job.c.instance_id == inst.id).where(job.c.kind == SERVICE_JOB)
                         .where(job.c.task_id.in_(gone)).where(job.c.state.in_(("pending", "failed")))
                         .values(state="cancelled", finished_at=now))
        new = [task for tid, task in after.services.items() if tid not in inst.before.services]
        rows = []
        for task in new:
            call = service_call(task, inst.id, inst.business_key)
            spec = task.task_spec
            retries = spec.retries if spec.retries is not None else DEFAULT_RETRIES
            rows.append(dict(
                id=str(uuid.uuid4()), kind=SERVICE_JOB, state="pending", instance_id=inst.id, task_id=str(task.id),
                process_key=inst.definition.info.key, element_id=call.element_id, due_at=now,
                payload=json.dumps(self.serializer.to_jsonable({
                    "operator": call.operator, "params": call.params, "businessKey": call.business_key,
                    "backoffBase": spec.retry_backoff_base})),
                attempts=0, max_attempts=retries + 1, lock_owner=None, lock_expires_at=None, last_error=None,
                last_traceback=None, idempotency_key=call.idempotency_key, created_at=now, finished_at=None))
            history.append(entry_for(task, "element.entered", data={"waitsFor": "service",
                                                                    "operator": call.operator}))
        if rows:
            conn.execute(_INSERT_JOB, rows)
        return len(rows)

    def _project_messages(self, conn: Connection, inst: LoadedInstance, after: Snapshot,
                          history: list[HistoryEntry], now: datetime) -> None:
        """Waiting message and signal catch events become subscriptions that correlation looks up."""
        for kind, event_type, before, current in (
                ("message", MessageEventDefinition, inst.before.messages, after.messages),
                ("signal", SignalEventDefinition, inst.before.signals, after.signals)):
            gone = [tid for tid in before if tid not in current]
            if gone:
                conn.execute(message_subscription.delete().where(message_subscription.c.instance_id == inst.id)
                             .where(message_subscription.c.task_id.in_(gone)))
            new = [task for tid, task in current.items() if tid not in before]
            for task in new:
                history.append(entry_for(task, "element.entered",
                                         data={"waitsFor": kind, "names": caught_names(task, event_type)}))
            rows = [dict(id=str(uuid.uuid4()), instance_id=inst.id, task_id=str(task.id), kind=kind,
                         message_name=name, element_id=element_id(task), business_key=inst.business_key,
                         created_at=now)
                    for task in new for name in caught_names(task, event_type)]
            if rows:
                conn.execute(message_subscription.insert(), rows)

    def _write_history(self, conn: Connection, instance_id: str, history: list[HistoryEntry]) -> None:
        if not history:
            return
        conn.execute(_INSERT_HISTORY, [dict(
            instance_id=instance_id, at=entry.at, type=entry.type, element_id=entry.element_id,
            element_name=entry.element_name, element_type=entry.element_type, task_id=entry.task_id,
            user_id=entry.user_id,
            data=json.dumps(self.serializer.to_jsonable(entry.data)) if entry.data is not None else None)
            for entry in history])
        history.clear()

    def task(self, inst: LoadedInstance, task_id: str) -> Any:
        task = inst.workflow.get_task_from_id(UUID(task_id))
        return task


_MISSING = object()
_INSERT_INSTANCE = process_instance.insert()
_INSERT_USER_TASK = user_task.insert()
_INSERT_HISTORY = history_event.insert()
_INSERT_JOB = job.insert()
_UPDATE_INSTANCE = (process_instance.update()
                    .where(process_instance.c.id == sa.bindparam("b_id"))
                    .where(process_instance.c.lock_version == sa.bindparam("b_lock_version")))
