"""Advancing a workflow until it waits, recording what happened on the way."""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition, TimerEventDefinition
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.spiff.specs.event_definitions import ErrorEventDefinition
from SpiffWorkflow.util.task import TaskState

from .database import utcnow
from .errors import ProcessError
from .pruning import compact
from .services import ServiceBusinessError, ServiceCall, ServiceGateway
from .specs import ExternalServiceTask
from .timers import Cycle, Period


def element_id(task: Any) -> str:
    return str(getattr(task.task_spec, "bpmn_id", None) or task.task_spec.name)


def is_visible(task: Any) -> bool:
    """Spiff adds internal tasks (Root, Start, End, joins); only elements on the diagram go to history."""
    return getattr(task.task_spec, "bpmn_id", None) is not None


@dataclass
class HistoryEntry:
    type: str
    element_id: str | None = None
    element_name: str | None = None
    element_type: str | None = None
    task_id: str | None = None
    user_id: str | None = None
    data: dict[str, Any] | None = None
    at: datetime = field(default_factory=utcnow)


def entry_for(task: Any, type_: str, user_id: str | None = None, data: dict[str, Any] | None = None) -> HistoryEntry:
    spec = task.task_spec
    return HistoryEntry(type_, element_id(task), getattr(spec, "bpmn_name", None),
                        type(spec).__name__, str(task.id), user_id, data)


@dataclass(frozen=True)
class StepLimits:
    """How much one step may do before the instance goes on as a job (Camunda's asynchronous continuation),
    and how many engine passes an instance may make with no wait state before that is an incident."""

    seconds: float = 0.03
    passes: int = 5_000
    passes_without_wait: int = 300_000


class StepBudget:
    """One step's share of the limits: spent pass by pass while Spiff runs engine tasks."""

    def __init__(self, limits: StepLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        self.passes = 0

    def spend(self) -> bool:
        """Count one pass; True when the step must stop and continue as a job."""
        self.passes += 1
        return self.passes >= self.limits.passes or time.monotonic() > self.deadline


@dataclass
class StepContext:
    instance_id: str
    business_key: str | None
    services: ServiceGateway
    history: list[HistoryEntry] = field(default_factory=list)
    # Inline: call connectors inside the step (tests, the engine-core benchmark). Otherwise a service task
    # stays STARTED and the save writes a job that a worker runs outside any transaction.
    inline_services: bool = False
    # With a budget, a step stops between two engine passes when it is spent and sets ``yielded``: the
    # caller saves the instance as it stands and schedules a continuation job.
    budget: StepBudget | None = None
    yielded: bool = False


def all_tasks(workflow: Any) -> Iterator[Any]:
    """Every task of the instance and its sub-processes (a flat walk: far cheaper than Spiff's iterator)."""
    yield from list(workflow.tasks.values())
    for subprocess in list(workflow.subprocesses.values()):
        yield from list(subprocess.tasks.values())


def _spiff_error(exc: Exception) -> ProcessError:
    task = getattr(exc, "task", None)
    element = element_id(task) if task is not None else None
    message = str(exc)
    notes = getattr(exc, "__notes__", None)
    if notes:
        message = f"{message} ({'; '.join(notes)})"
    return ProcessError(message, element)


MAX_ROUNDS = 10_000
COMPACT_ABOVE = 200
COMPACT_EVERY = 100


def run_engine_steps(workflow: Any, did_complete: Any, budget: StepBudget | None = None) -> bool:
    """Spiff's do_engine_steps, compacting the tree as it grows: a loop inside one step stays bounded too.
    Returns True when the budget ran out first (ready engine tasks remain; the tree is consistent, since
    it stops between two of Spiff's passes).

    Compaction walks the whole tree, so in a big tree it runs every COMPACT_EVERY passes, not after each: a
    chain of thousands of elements, which Spiff predicts in full at the start, made every pass cost the whole
    tree. Between two compactions the live tasks sink COMPACT_EVERY levels at most, well above the depth (1000)
    where Spiff's task iterator stops seeing them.
    """
    passes, compacted_size = 0, len(workflow.tasks)
    while workflow._do_engine_steps(did_complete_task=did_complete):
        passes += 1
        if len(workflow.tasks) > COMPACT_ABOVE and (passes % COMPACT_EVERY == 0
                                                     or len(workflow.tasks) > compacted_size + COMPACT_ABOVE):
            compact(workflow)
            compacted_size = len(workflow.tasks)
        if budget is not None and budget.spend():
            workflow.refresh_timers()
            return True
    workflow.refresh_timers()
    return False


def _recorder(ctx: StepContext) -> Any:
    def did_complete(task: Any) -> None:
        if is_visible(task) and task.has_state(TaskState.COMPLETED):
            ctx.history.append(entry_for(task, "element.completed"))

    return did_complete


def advance(workflow: Any, ctx: StepContext) -> None:
    """Run every engine task (gateways, scripts, events, services) until only waits remain."""
    did_complete = _recorder(ctx)
    try:
        for _round in range(MAX_ROUNDS):
            if run_engine_steps(workflow, did_complete, ctx.budget):
                ctx.yielded = True
                return
            tasks = list(all_tasks(workflow))
            ran_services = False
            if ctx.inline_services:
                for task in tasks:
                    if task.state == TaskState.STARTED and isinstance(task.task_spec, ExternalServiceTask):
                        _run_service(workflow, task, ctx)
                        ran_services = True
            # Timers refreshed at the end of Spiff's loop may have made more engine tasks ready.
            if not ran_services and not any(t.state == TaskState.READY and not t.task_spec.manual for t in tasks):
                return
        raise ProcessError(f"the process did not come to a wait state after {MAX_ROUNDS} rounds")
    except ProcessError:
        raise
    except (WorkflowException, SpiffWorkflowException) as exc:
        raise _spiff_error(exc) from exc


def service_call(task: Any, instance_id: str, business_key: str | None) -> ServiceCall:
    spec: ExternalServiceTask = task.task_spec
    try:
        params = spec.evaluated_parameters(task)
    except (WorkflowException, SpiffWorkflowException) as exc:
        raise _spiff_error(exc) from exc
    return ServiceCall(spec.operation_name, params, instance_id, element_id(task), f"{instance_id}:{task.id}",
                       business_key)


def _run_service(workflow: Any, task: Any, ctx: StepContext) -> None:
    spec: ExternalServiceTask = task.task_spec
    call = service_call(task, ctx.instance_id, ctx.business_key)
    try:
        result = ctx.services.call(call)
    except ServiceBusinessError as error:
        throw_business_error(workflow, task, error, ctx)
        return
    except Exception as exc:
        raise ProcessError(f"service task {element_id(task)} ({spec.operation_name}) failed: {exc}",
                           element_id(task)) from exc
    complete_service_task(task, result, ctx)


def complete_service_task(task: Any, result: Any, ctx: StepContext) -> None:
    task.data[task.task_spec.result_variable] = result
    task.complete()
    ctx.history.append(entry_for(task, "element.completed"))


def throw_business_error(workflow: Any, task: Any, error: ServiceBusinessError, ctx: StepContext) -> None:
    """Throw a BPMN error from the service task; a boundary event on it (or on a scope around it) catches."""
    payload = {"errorCode": error.code, "errorMessage": error.message, **error.data}
    definition = ErrorEventDefinition(error.code, code=error.code)
    workflow.top_workflow.catch(BpmnEvent(definition, payload=payload, target=task.workflow))
    # A catching boundary event cancels the task when it runs, so let it run before judging.
    position = len(ctx.history)
    run_engine_steps(workflow, _recorder(ctx))
    if not task.has_state(TaskState.CANCELLED):
        raise ProcessError(f"service task {element_id(task)} raised business error {error.code} "
                           f"and no error boundary event catches it", element_id(task))
    ctx.history.insert(position, entry_for(task, "element.error", data={"errorCode": error.code,
                                                                       "errorMessage": error.message}))


def event_members(task: Any) -> list[Any]:
    """The event definitions a waiting task catches (an event-based gateway catches several)."""
    definition = getattr(task.task_spec, "event_definition", None)
    if isinstance(definition, MultipleEventDefinition):
        return list(definition.event_definitions)
    return [definition] if definition is not None else []


def caught_names(task: Any, kind: type[Any]) -> list[str]:
    return [str(d.name) for d in event_members(task) if isinstance(d, kind)]


def member_named(task: Any, kind: type[Any], name: str) -> Any:
    return next(d for d in event_members(task) if isinstance(d, kind) and d.name == name)


def timer_due(task: Any) -> datetime | None:
    """When a waiting timer task fires (after Spiff has evaluated its expression)."""
    if not any(isinstance(d, TimerEventDefinition) for d in event_members(task)):
        return None
    value = task._get_internal_data("event_value")
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("next")
        if value is None:
            return None
    return TimerEventDefinition.get_datetime(value) if isinstance(value, str) else None


EPOCH = "1970-01-01T00:00:00+00:00"


def force_timer(task: Any) -> None:
    """Make a waiting timer fire now (the worker calls this when its job is due)."""
    value = task._get_internal_data("event_value")
    if isinstance(value, dict):
        value["next"] = EPOCH
    else:
        task._set_internal_data(event_fired=True)


def fire_once(task: Any) -> None:
    """Fire a timer start event exactly once: the start-timer schedule, not the instance, repeats cycles.

    Call it before the first engine step, so the timer expression is never evaluated here: a cycle with a start
    in the past would otherwise add tokens for overdue occurrences. A cycle event only passes a token on when
    an occurrence falls due, so it gets a cycle of one occurrence that is already due.
    """
    if isinstance(task.task_spec.event_definition, CycleTimerEventDefinition):
        task._set_internal_data(event_value=Cycle(1, datetime.fromisoformat(EPOCH), Period.parse("P1D")).state(0))
    else:
        task._set_internal_data(event_fired=True)


def format_exception(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))
