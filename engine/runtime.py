"""The engine's public face: deploy, start, work on tasks, deliver messages, fire timers, read state."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jsonschema
import sqlalchemy as sa
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException, TaskNotFoundException, WorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.engine import Connection

from . import assignment
from .database import Database, as_utc, utcnow
from .errors import Conflict, FormValidationError, InvalidState, NotFound, ProcessError
from .initiator import plain_start_events, with_initiator
from .instances import CANCELLED, RUNNING, InstanceStore, LoadedInstance, close_user_tasks, without_data_objects
from .jobs import (
    START_TIMER_JOB,
    TIMER_JOB,
    JobExecutor,
    JobView,
    get_job,
    list_jobs,
    retry_job,
    schedule_continuation,
)
from .queries import InstanceFilter, InstanceSummary, TaskFilter, TaskView, query_instances, query_tasks, task_view
from .repository import DefinitionRepository, DeploymentResult
from .sandbox import RestrictedScriptEngine, SandboxEnvironment
from .schema import (
    history_event,
    job,
    message_buffer,
    message_subscription,
    process_instance,
    user_task,
    worker_heartbeat,
)
from .services import NoServices, ServiceGateway
from .start_timers import StartTimers
from .stepper import (
    HistoryEntry,
    StepBudget,
    StepContext,
    StepLimits,
    advance,
    all_tasks,
    caught_names,
    element_id,
    entry_for,
    fire_once,
    is_visible,
    member_named,
)
from .timers import clock_at

JOBS_CHANNEL = "silverflow_jobs"


@dataclass(frozen=True)
class InstanceView:
    id: str
    process_key: str
    process_version: int
    business_key: str | None
    state: str
    variables: dict[str, Any]
    started_at: datetime
    ended_at: datetime | None
    active_elements: list[str]


@dataclass(frozen=True)
class Correlation:
    delivered: list[InstanceView]
    started: list[InstanceView]
    buffered: bool


@dataclass(frozen=True)
class HistoryView:
    id: int
    at: datetime
    type: str
    element_id: str | None
    element_name: str | None
    element_type: str | None
    task_id: str | None
    user_id: str | None
    data: dict[str, Any] | None


class Engine:
    """One per process: holds the definition cache; every call is one database transaction."""

    def __init__(self, database: Database, services: ServiceGateway | None = None,
                 script_time_limit: float = 2.0, inline_services: bool = False,
                 step_limits: StepLimits | None = None) -> None:
        self.db = database
        self.services: ServiceGateway = services or NoServices()
        # With limits (the server's engine), a long step answers at once and goes on as a continuation job;
        # without, a step runs until the instance waits (embedding, scripts that want the end state at once).
        self.step_limits = step_limits
        # Jobs (the default) run connectors in workers outside any transaction; inline calls them in the step.
        self.inline_services = inline_services
        # Set after a commit that created jobs, so an in-process worker wakes at once instead of polling.
        self.jobs_signal = threading.Event()
        self.repository = DefinitionRepository()
        self.script_engine = RestrictedScriptEngine(SandboxEnvironment(time_limit=script_time_limit))
        self.store = InstanceStore(self.repository, self.script_engine)
        self.start_timers = StartTimers(self.script_engine)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One unit of work; wakes waiting workers after a commit that created jobs."""
        with self.db.transaction() as conn:
            yield conn
            created = conn.info.pop("silverflow_jobs_created", False)
        if created:
            self.jobs_signal.set()

    def _note_jobs(self, conn: Connection, inst: LoadedInstance) -> None:
        if inst.jobs_created:
            self._signal_jobs(conn)
            inst.jobs_created = 0

    def _signal_jobs(self, conn: Connection) -> None:
        conn.info["silverflow_jobs_created"] = True
        if self.db.dialect == "postgresql":
            conn.execute(sa.text(f"NOTIFY {JOBS_CHANNEL}"))  # delivered at commit

    # -- definitions ----------------------------------------------------------------------------------
    def deploy(self, files: list[tuple[str, bytes]], forms: list[tuple[str, bytes]] | None = None,
               deployed_by: str | None = None, source: str | None = None) -> DeploymentResult:
        with self.transaction() as conn:
            result = self.repository.deploy(conn, files, forms or [], deployed_by, source, self.services.check)
            for loaded in result.loaded:
                self.start_timers.schedule(conn, loaded)
        for loaded in result.loaded:  # committed: only now may anyone find the new versions in the cache
            self.repository.remember(loaded)
        return result

    # -- instances ------------------------------------------------------------------------------------
    def start(self, key: str, variables: dict[str, Any] | None = None, business_key: str | None = None,
              version: int | None = None, user: str | None = None) -> InstanceView:
        """Start the latest (or the given) version; a none start event's ``initiator`` variable becomes ``user``."""
        with self.transaction() as conn:
            definition = self.repository.get(conn, key, version)
            if not definition.parsed.executable:
                raise InvalidState(f"process '{key}' version {definition.info.version} is not executable "
                                   "(isExecutable=\"false\"): it is kept for the diagram and cannot be started")
            inst = self.store.new(conn, definition, business_key)
            start_variables = dict(variables or {})
            for start_event in plain_start_events(definition.parsed.spec):
                start_variables = with_initiator(start_event, start_variables, user)
            for task in inst.workflow.get_tasks(state=TaskState.READY):
                task.set_data(**start_variables)
            self._advance_and_save(conn, inst, user)
            return self._view(inst)

    def cancel(self, instance_id: str, reason: str | None = None, user: str | None = None) -> InstanceView:
        with self.transaction() as conn:
            inst = self._load_running(conn, instance_id)
            inst.workflow.cancel()
            history = [HistoryEntry("instance.cancelled", user_id=user, data={"reason": reason})]
            self.store.save(conn, inst, history, user, final_state=CANCELLED)
            return self._view(inst)

    def get_instance(self, instance_id: str) -> InstanceView:
        with self.db.read() as conn:
            row = conn.execute(sa.select(process_instance).where(process_instance.c.id == instance_id)).first()
            if row is None:
                raise NotFound(f"process instance '{instance_id}' does not exist")
            active = [r.element_id for r in conn.execute(
                sa.select(user_task.c.element_id).where(user_task.c.instance_id == instance_id)
                .where(user_task.c.state == "open"))]
            active += [r.element_id for r in conn.execute(
                sa.select(job.c.element_id).where(job.c.instance_id == instance_id)
                .where(job.c.state == "pending"))]
            active += [r.element_id for r in conn.execute(
                sa.select(message_subscription.c.element_id)
                .where(message_subscription.c.instance_id == instance_id))]
            return InstanceView(row.id, row.process_key, row.process_version, row.business_key, row.state,
                                json.loads(row.variables), as_utc(row.started_at) or utcnow(),
                                as_utc(row.ended_at), sorted(set(active) - {None}))

    def history(self, instance_id: str) -> list[HistoryView]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(history_event).where(history_event.c.instance_id == instance_id)
                                .order_by(history_event.c.id)).all()
        return [HistoryView(r.id, as_utc(r.at) or utcnow(), r.type, r.element_id, r.element_name,
                            r.element_type, r.task_id, r.user_id, json.loads(r.data) if r.data else None)
                for r in rows]

    # -- user tasks -----------------------------------------------------------------------------------
    def list_tasks(self, instance_id: str | None = None, state: str | None = "open",
                   assignee: str | None = None, candidate_group: str | None = None) -> list[TaskView]:
        tasks, _total = self.query_tasks(TaskFilter(instance_id=instance_id, state=state, assignee=assignee,
                                                    candidate_group=candidate_group, limit=1000))
        return tasks

    def query_tasks(self, task_filter: TaskFilter) -> tuple[list[TaskView], int]:
        with self.db.read() as conn:
            return query_tasks(conn, task_filter)

    def query_instances(self, instance_filter: InstanceFilter) -> tuple[list[InstanceSummary], int]:
        with self.db.read() as conn:
            return query_instances(conn, instance_filter)

    def set_variables(self, instance_id: str, changes: dict[str, Any], removed: list[str] | None = None,
                      user: str | None = None) -> InstanceView:
        """Change data of a running instance (at every task that waits), recorded in the history."""
        with self.transaction() as conn:
            inst = self._load_running(conn, instance_id)
            live = [t for t in inst.workflow.get_tasks(state=TaskState.READY | TaskState.WAITING | TaskState.STARTED)]
            for task in live:
                task.data.update(changes)
                for name in removed or []:
                    task.data.pop(name, None)
            self.store.save(conn, inst, [], user)
            return self._view(inst)

    def broadcast_signal(self, name: str, variables: dict[str, Any] | None = None,
                         user: str | None = None) -> list[InstanceView]:
        """Throw a signal to every running instance that catches it; return those that did."""
        reached = []
        with self.transaction() as conn:
            ids = [r.instance_id for r in conn.execute(
                sa.select(message_subscription.c.instance_id).where(message_subscription.c.message_name == name)
                .where(message_subscription.c.kind == "signal").distinct())]
            for instance_id in ids:
                inst = self.store.load(conn, instance_id)
                waiting = [t for t in inst.before.signals.values() if name in caught_names(t, SignalEventDefinition)]
                if not waiting:
                    continue
                definition = member_named(waiting[0], SignalEventDefinition, name)
                inst.workflow.catch(BpmnEvent(definition, payload=dict(variables or {})))
                for task in waiting:
                    task.data.update(variables or {})
                history = [HistoryEntry("signal.received", user_id=user, data={"name": name, "variables": variables})]
                self._advance_and_save(conn, inst, user, history)
                reached.append(self._view(inst))
        return reached

    def get_task(self, task_id: str) -> TaskView:
        with self.db.read() as conn:
            return task_view(self._task_row(conn, task_id))

    def task_data(self, task_id: str) -> dict[str, Any]:
        """The data a user task's form starts from: that task's own data.

        The instance variables merge every live task, so the tasks of a parallel multi-instance activity would
        all show the last item; a task's own data holds its own item. A task that is no longer open shows the
        instance variables. Costs one state load (read-only).
        """
        with self.db.read() as conn:
            row = self._task_row(conn, task_id)
            inst = self.store.load(conn, row.instance_id, for_update=False)
        try:
            task = self.store.task(inst, task_id) if row.state == "open" else None
        except TaskNotFoundException:
            task = None
        if task is None:
            return dict(inst.variables_before)
        return dict(self.store.serializer.to_jsonable(without_data_objects(task.data)))

    def task_form(self, task_id: str) -> dict[str, Any] | None:
        with self.db.read() as conn:
            row = self._task_row(conn, task_id)
            return self.repository.form(conn, row.form_key) if row.form_key else None

    def claim(self, task_id: str, user: str) -> TaskView:
        with self.transaction() as conn:
            row = self._open_task(conn, task_id)
            assignment.check_claim(row, user)
            if row.assignee and row.assignee != user:
                raise Conflict(f"task '{task_id}' is already claimed by {row.assignee}")
            return self._set_assignee(conn, row, user, "task.claimed", user)

    def unclaim(self, task_id: str, user: str | None = None) -> TaskView:
        with self.transaction() as conn:
            row = self._open_task(conn, task_id)
            assignment.check_unclaim(row)
            return self._set_assignee(conn, row, None, "task.unclaimed", user)

    def assign(self, task_id: str, assignee: str | None, user: str | None = None) -> TaskView:
        with self.transaction() as conn:
            row = self._open_task(conn, task_id)
            assignment.check_assign(row, assignee, user)
            return self._set_assignee(conn, row, assignee, "task.assigned", user)

    def complete_task(self, task_id: str, data: dict[str, Any] | None = None,
                      user: str | None = None) -> InstanceView:
        data = data or {}
        with self.transaction() as conn:
            row = self._open_task(conn, task_id)
            assignment.check_complete(row, user)
            if row.assignee and user is not None and row.assignee != user:
                raise Conflict(f"task '{task_id}' is claimed by {row.assignee}")
            if row.form_key:
                data = self._validate_form(conn, row.form_key, data)
            inst = self._load_running(conn, row.instance_id)
            task = self.store.task(inst, task_id)
            if task is None or not task.has_state(TaskState.READY):
                raise InvalidState(f"task '{task_id}' is not waiting any more")
            update_form_data = getattr(task.task_spec, "add_data_from_form", None)
            if update_form_data is not None:
                update_form_data(task, data)
            else:  # a plain or manual task: no form of its own, whatever data came along is kept
                task.set_data(**data)
            assignment.stamp_completer(task, user)
            history = [entry_for(task, "task.completed", user, data)]
            try:
                task.run()
            except (WorkflowException, SpiffWorkflowException) as exc:
                raise ProcessError(str(exc), row.element_id) from exc
            history.append(entry_for(task, "element.completed", user))
            close_user_tasks(conn, [task_id], "completed", utcnow(), user, grouped=bool(row.candidate_groups))
            del inst.before.user_tasks[task_id]
            self._advance_and_save(conn, inst, user, history)
            return self._view(inst)

    # -- events ---------------------------------------------------------------------------------------
    def correlate_message(self, name: str, variables: dict[str, Any] | None = None,
                          business_key: str | None = None,
                          correlation_keys: dict[str, Any] | None = None,
                          user: str | None = None, buffer_seconds: float | None = None) -> list[InstanceView]:
        """The instances a message reached (delivered to or started); see ``correlate``."""
        result = self.correlate(name, variables, business_key, correlation_keys, user, buffer_seconds)
        return result.delivered + result.started

    def correlate(self, name: str, variables: dict[str, Any] | None = None, business_key: str | None = None,
                  correlation_keys: dict[str, Any] | None = None, user: str | None = None,
                  buffer_seconds: float | None = None) -> Correlation:
        """Deliver to every instance waiting for the message that matches; else start by message.

        When nothing waits and nothing starts, the message is kept for ``buffer_seconds`` (and an empty list
        returned) if given, so an instance that reaches the catch event a little later still gets it;
        otherwise NotFound. Delivery happens in one transaction: exactly once, or not at all.
        """
        with self.transaction() as conn:
            return self._correlate(conn, name, variables or {}, business_key, correlation_keys, user, buffer_seconds)

    def _correlate(self, conn: Connection, name: str, variables: dict[str, Any], business_key: str | None,
                   correlation_keys: dict[str, Any] | None, user: str | None, buffer_seconds: float | None,
                   required: bool = True, sender: str | None = None) -> Correlation:
        query = sa.select(message_subscription.c.instance_id, message_subscription.c.task_id) \
            .where(message_subscription.c.message_name == name).where(message_subscription.c.kind == "message")
        if business_key is not None:
            query = query.where(message_subscription.c.business_key == business_key)
        if sender is not None:
            query = query.where(message_subscription.c.instance_id != sender)
        candidates: dict[str, list[str]] = {}
        for row in conn.execute(query.order_by(message_subscription.c.created_at)):
            candidates.setdefault(row.instance_id, []).append(row.task_id)
        delivered = []
        for instance_id, task_ids in candidates.items():
            inst = self.store.load(conn, instance_id)
            if correlation_keys and any(inst.variables_before.get(k) != v for k, v in correlation_keys.items()):
                continue
            self._deliver(inst, name, variables, task_ids[0])
            history = [HistoryEntry("message.received", user_id=user,
                                    data={"name": name, "variables": variables, "from": sender})]
            self._advance_and_save(conn, inst, user, history)
            delivered.append(self._view(inst))
        if delivered:
            return Correlation(delivered, [], False)
        started = self._start_by_message(conn, name, variables, business_key, user)
        if not started and buffer_seconds:
            now = utcnow()
            conn.execute(message_buffer.insert().values(
                id=str(uuid.uuid4()), message_name=name, business_key=business_key,
                correlation_keys=json.dumps(correlation_keys or {}), variables=json.dumps(variables),
                created_at=now, expires_at=now + timedelta(seconds=buffer_seconds)))
            return Correlation([], [], True)
        if not started and required:
            raise NotFound(f"no process instance waits for message '{name}'"
                           + (f" with {correlation_keys}" if correlation_keys else "")
                           + " and no process starts with it")
        return Correlation([], started, False)

    def _send_thrown_messages(self, conn: Connection, inst: LoadedInstance, events: list[Any],
                              user: str | None) -> None:
        """A message throw or end event reaches other instances: those of the same business key (if it has
        one), or — when the payload carries ``correlationKeys`` — those whose variables match these keys."""
        for event in events:
            definition = event.event_definition
            if not isinstance(definition, MessageEventDefinition):
                continue
            payload = dict(event.payload) if isinstance(event.payload, dict) else {}
            keys = payload.pop("correlationKeys", None)
            business_key = inst.business_key if not isinstance(keys, dict) else None
            result = self._correlate(conn, definition.name, payload, business_key,
                                     keys if isinstance(keys, dict) else None, user, None,
                                     required=False, sender=inst.id)
            reached = [v.id for v in result.delivered + result.started]
            conn.execute(history_event.insert().values(
                instance_id=inst.id, at=utcnow(), type="message.sent", element_id=None, element_name=None,
                element_type=None, task_id=None, user_id=user,
                data=json.dumps({"name": definition.name, "reached": reached})))

    def _deliver(self, inst: LoadedInstance, name: str, variables: dict[str, Any], task_id: str) -> None:
        task = self.store.task(inst, task_id)
        definition = member_named(task, MessageEventDefinition, name)
        inst.workflow.catch(BpmnEvent(definition, payload=dict(variables)))
        if getattr(definition, "message_var", None) is None:
            task.data.update(variables)

    def _start_by_message(self, conn: Connection, name: str, variables: dict[str, Any],
                          business_key: str | None, user: str | None) -> list[InstanceView]:
        started = []
        for info in self.repository.list(conn):
            definition = self.repository.get(conn, info.key, info.version)
            starts = [ts for ts in definition.parsed.spec.task_specs.values()
                      if type(ts).__name__ == "StartEvent"
                      and isinstance(getattr(ts, "event_definition", None), MessageEventDefinition)
                      and ts.event_definition.name == name]
            if not starts:
                continue
            inst = self.store.new(conn, definition, business_key)
            inst.workflow.do_engine_steps()  # up to the message start event, which now waits
            waiting = [t for t in inst.workflow.get_tasks(state=TaskState.WAITING) if t.task_spec in starts]
            inst.workflow.catch(BpmnEvent(starts[0].event_definition, payload=dict(variables)))
            for task in waiting:
                task.data.update(with_initiator(task.task_spec, variables, user))
            history = [HistoryEntry("message.received", data={"name": name, "variables": variables},
                                    user_id=user)]
            self._advance_and_save(conn, inst, user, history)
            started.append(self._view(inst))
        return started

    def fire_due_timers(self, now: datetime | None = None, limit: int = 100) -> int:
        """Fire every timer due at ``now`` (default: the current time); return how many fired.

        Tests pass a future ``now`` instead of sleeping; workers fire timers through the job queue.
        """
        return self.run_jobs(now, kinds=(TIMER_JOB, START_TIMER_JOB), limit=limit)

    def run_jobs(self, now: datetime | None = None, kinds: tuple[str, ...] | None = None,
                 limit: int = 1000, worker_id: str = "inline") -> int:
        """Run each due job once in this thread, including jobs those runs create; return how many ran.

        A failing job is not run again in the same call even when its retry is already due at ``now``. Timers
        armed on the way count from ``now`` too, so tests can walk through calendar dates.
        """
        executor = JobExecutor(self, worker_id)
        handled: set[str] = set()
        with clock_at(now):
            while len(handled) < limit:
                batch = executor.claim(min(10, limit - len(handled)), now, kinds, exclude=handled)
                if not batch:
                    break
                for claimed in batch:
                    executor.run(claimed, now)
                    handled.add(claimed.id)
        return len(handled)

    def jobs(self, state: str | None = None, instance_id: str | None = None, kind: str | None = None,
             limit: int = 100) -> list[JobView]:
        with self.db.read() as conn:
            return list_jobs(conn, state, instance_id, kind, limit)

    def get_job(self, job_id: str) -> JobView:
        with self.db.read() as conn:
            return get_job(conn, job_id)

    def worker_heartbeat_age(self) -> float | None:
        """Seconds since the freshest worker heartbeat; None when no worker ever ran."""
        with self.db.read() as conn:
            last = as_utc(conn.execute(sa.select(sa.func.max(worker_heartbeat.c.last_seen))).scalar())
        return None if last is None else (utcnow() - last).total_seconds()

    def retry_job(self, job_id: str) -> JobView:
        with self.transaction() as conn:
            view = retry_job(conn, job_id)
            self._signal_jobs(conn)
            return view

    def _start_by_timer(self, conn: Connection, job_id: str, now: datetime) -> None:
        """A timer start event is due: start an instance of the latest version, reschedule cycles."""
        row = conn.execute(sa.select(job).where(job.c.id == job_id)).one()
        definition = self.repository.get(conn, row.process_key)
        inst = self.store.new(conn, definition, None)
        for task in list(inst.workflow.tasks.values()):  # still predicted: nothing has run yet
            if type(task.task_spec).__name__ != "StartEvent" \
                    or not isinstance(task.task_spec.event_definition, TimerEventDefinition):
                continue
            if task.task_spec.bpmn_id == row.element_id:
                fire_once(task)  # before any step evaluates the timer, so exactly one token starts
            else:
                task.cancel()  # another timer start event has a schedule of its own
        history = [HistoryEntry("timer.fired", element_id=row.element_id, data={"startTimer": True})]
        self._advance_and_save(conn, inst, None, history)
        self.start_timers.reschedule(conn, row, now)

    # -- internals ------------------------------------------------------------------------------------
    def _advance_and_save(self, conn: Connection, inst: LoadedInstance, user: str | None,
                          history: list[HistoryEntry] | None = None) -> None:
        ctx = self.step_context(inst, history)
        advance(inst.workflow, ctx)
        self.save_advanced(conn, inst, ctx.history, user, ctx)

    def step_context(self, inst: LoadedInstance, history: list[HistoryEntry] | None = None) -> StepContext:
        budget = StepBudget(self.step_limits) if self.step_limits is not None else None
        return StepContext(inst.id, inst.business_key, self.services, history or [],
                           inline_services=self.inline_services, budget=budget)

    def _continue(self, conn: Connection, instance_id: str, passes_so_far: int) -> None:
        """Run a continuation job: advance an instance that stopped because its step's budget was spent."""
        inst = self.store.load(conn, instance_id)
        if inst.state != RUNNING:
            return
        limits = self.step_limits or StepLimits()
        if passes_so_far >= limits.passes_without_wait:
            ready = _ready_elements(inst)
            raise ProcessError(f"the process made {passes_so_far} engine passes without reaching a wait state "
                               f"(a loop or cycle without a user task, timer, message or service call?); "
                               f"ready: {', '.join(ready) or '-'}", ready[0] if ready else None)
        ctx = self.step_context(inst, [HistoryEntry("instance.continued", data={"passes": passes_so_far})])
        advance(inst.workflow, ctx)
        self.save_advanced(conn, inst, ctx.history, None, ctx, passes_so_far)

    def save_advanced(self, conn: Connection, inst: LoadedInstance, history: list[HistoryEntry],
                      user: str | None = None, ctx: StepContext | None = None, passes_before: int = 0) -> None:
        """Persist an instance that has just advanced, and pass on what it threw: messages no one inside
        it caught go to other instances, buffered messages to catch events it now waits at. A step that
        stopped on its budget leaves a continuation job that goes on from here."""
        thrown = inst.workflow.get_events()
        self.store.save(conn, inst, history, user)
        if ctx is not None and ctx.yielded and ctx.budget is not None and inst.state == RUNNING:
            schedule_continuation(conn, inst, passes_before + ctx.budget.passes, _ready_elements(inst))
            inst.jobs_created += 1
        self._note_jobs(conn, inst)
        if thrown:
            self._send_thrown_messages(conn, inst, thrown, user)
        if inst.before.messages:
            self._consume_buffered(conn, inst, user)

    def _consume_buffered(self, conn: Connection, inst: LoadedInstance, user: str | None) -> None:
        """Hand a buffered message to an instance that has just started waiting for it."""
        now = utcnow()
        waits = {name: tid for tid, t in inst.before.messages.items()
                 for name in caught_names(t, MessageEventDefinition)}
        rows = conn.execute(sa.select(message_buffer).where(message_buffer.c.message_name.in_(list(waits)))
                            .where(message_buffer.c.expires_at > now)
                            .order_by(message_buffer.c.created_at)).all()
        for row in rows:
            if row.business_key is not None and row.business_key != inst.business_key:
                continue
            if any(inst.variables_before.get(k) != v for k, v in json.loads(row.correlation_keys).items()):
                continue
            if conn.execute(message_buffer.delete().where(message_buffer.c.id == row.id)).rowcount != 1:
                continue  # someone else took it
            variables = json.loads(row.variables)
            self._deliver(inst, row.message_name, variables, waits[row.message_name])
            history = [HistoryEntry("message.received", user_id=user, data={
                "name": row.message_name, "variables": variables, "buffered": True})]
            self._advance_and_save(conn, inst, user, history)
            return

    def _load_running(self, conn: Connection, instance_id: str) -> LoadedInstance:
        inst = self.store.load(conn, instance_id)
        if inst.state != RUNNING:
            raise InvalidState(f"process instance '{instance_id}' is {inst.state}")
        return inst

    def _view(self, inst: LoadedInstance) -> InstanceView:
        active = sorted({
            *(t.task_spec.bpmn_id for t in inst.before.user_tasks.values()),
            *(t.task_spec.bpmn_id for t, _due in inst.before.timers.values()),
            *(t.task_spec.bpmn_id for t in inst.before.messages.values()),
            *(t.task_spec.bpmn_id for t in inst.before.services.values()),
        } - {None})
        return InstanceView(inst.id, inst.definition.info.key, inst.definition.info.version, inst.business_key,
                            inst.state, dict(inst.variables_before), inst.started_at or utcnow(),
                            utcnow() if inst.state != RUNNING else None, active)

    def _task_row(self, conn: Connection, task_id: str) -> Any:
        row = conn.execute(sa.select(user_task).where(user_task.c.id == task_id)).first()
        if row is None:
            raise NotFound(f"task '{task_id}' does not exist")
        return row

    def _open_task(self, conn: Connection, task_id: str) -> Any:
        row = self._task_row(conn, task_id)
        if row.state == "completed":
            raise InvalidState(f"task '{task_id}' was already completed by {row.completed_by or 'someone'}")
        if row.state != "open":
            raise InvalidState(f"task '{task_id}' is {row.state}")
        return row

    def _set_assignee(self, conn: Connection, row: Any, assignee: str | None, event: str,
                      user: str | None) -> TaskView:
        now = utcnow()
        conn.execute(user_task.update().where(user_task.c.id == row.id)
                     .values(assignee=assignee, claimed_at=now if assignee else None))
        conn.execute(history_event.insert().values(
            instance_id=row.instance_id, at=now, type=event, element_id=row.element_id, element_name=row.name,
            element_type="UserTask", task_id=row.id, user_id=user, data=json.dumps({"assignee": assignee})))
        return task_view(conn.execute(sa.select(user_task).where(user_task.c.id == row.id)).one())

    def _validate_form(self, conn: Connection, form_key: str, data: dict[str, Any]) -> dict[str, Any]:
        """The submitted data without the form's read-only fields (the context a task shows is not the clerk's to
        change, whatever a client sends back), checked against the form's schema."""
        schema = self.repository.form(conn, form_key)
        if schema is None:
            return data
        read_only = {name for name, spec in (schema.get("properties") or {}).items()
                     if isinstance(spec, dict) and spec.get("readOnly")}
        data = {name: value for name, value in data.items() if name not in read_only}
        validator = jsonschema.Draft202012Validator(schema)
        errors = []
        for error in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
            path = "/".join(str(p) for p in error.absolute_path)
            if error.validator == "required" and isinstance(error.instance, dict):
                missing = [f for f in error.validator_value if f not in error.instance]
                for field_name in missing:
                    errors.append({"field": f"{path}/{field_name}".strip("/"), "message": "is required"})
                continue
            errors.append({"field": path or "(form)", "message": error.message})
        if errors:
            raise FormValidationError(errors)
        return data


@contextmanager
def engine_for(url: str, services: ServiceGateway | None = None) -> Iterator[Engine]:
    database = Database(url)
    try:
        yield Engine(database, services)
    finally:
        database.dispose()


__all__ = ["Engine", "InstanceView", "TaskView", "HistoryView", "engine_for"]


def _ready_elements(inst: LoadedInstance) -> list[str]:
    """The diagram elements an instance that stopped on its step budget will go on with."""
    return sorted({element_id(t) for t in all_tasks(inst.workflow) if t.state == TaskState.READY and is_visible(t)})
