"""Instance modification (Camunda's "process instance modification"): repair a running instance by hand.

An operator starts a token before or after an element, cancels the tokens at an element, moves a token (cancel
and start in one go) or skips a service task whose connector cannot answer, giving the result the connector
would have given. Every modification names a reason and is recorded in the history (who, what, why); all
instructions of one request apply in one transaction under the instance's optimistic lock, and the save path
re-projects user tasks, jobs, timers and message subscriptions as after any step.

On SpiffWorkflow 3 a new token is a task added under a finished task of the (sub)workflow it belongs to (the
root of its tree, which stays finished: see engine/pruning.py) and reset as a fresh branch (``reset_branch``
predicts its successors and makes it ready when it may run). An activity with boundary events starts at its
``BoundaryEventSplit``, so the events are armed again: a timer counts from now.
"""

from __future__ import annotations

import json
from copy import deepcopy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.engine import Connection

from .database import utcnow
from .errors import EngineError, InvalidState, NotFound
from .instances import CANCELLED, RUNNING, SERVICE_JOB, LoadedInstance
from .schema import job
from .specs import ExternalServiceTask
from .stepper import HistoryEntry, advance, all_tasks, element_id, entry_for, is_visible, service_call

if TYPE_CHECKING:
    from .runtime import Engine, InstanceView

START_BEFORE, START_AFTER, CANCEL, MOVE, SKIP = (
    "startBeforeActivity", "startAfterActivity", "cancel", "moveToken", "skipTask")
KINDS = (START_BEFORE, START_AFTER, CANCEL, MOVE, SKIP)
LIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED
MAX_REASON = 2000


@dataclass(frozen=True)
class Instruction:
    """One step of a modification.

    ``element_id`` is the element to start at (before/after), to cancel, to move from or to skip;
    ``target_element_id`` where a moved token goes; ``task_id`` picks one token of several at the element
    (cancel, move, skip); ``variables`` are set on the new token (start, move) or the skipped task;
    ``result`` is what the skipped connector would have answered (stored in its result variable).
    """

    kind: str
    element_id: str
    target_element_id: str | None = None
    task_id: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    result: Any = None


class InvalidModification(EngineError):
    """An instruction names something the definition does not have or allow (HTTP 422 naming the element).
    ``index`` is the instruction's position, ``field`` the part of it at fault."""

    def __init__(self, message: str, index: int | None = None, field: str = "elementId",
                 element_id: str | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.field = field
        self.element_id = element_id


# -- looking up elements -----------------------------------------------------------------------------------------

def element_specs(workflow: Any) -> dict[str, tuple[Any, str]]:
    """Every diagram element of an instance's definition and its sub-processes: bpmn id → (task spec, name of
    the process spec holding it)."""
    found: dict[str, tuple[Any, str]] = {}
    for process in [workflow.spec, *workflow.subprocess_specs.values()]:
        for spec in process.task_specs.values():
            bpmn_id = getattr(spec, "bpmn_id", None)
            if bpmn_id and bpmn_id not in found:
                found[str(bpmn_id)] = (spec, process.name)
    return found


def live_tokens(workflow: Any, element: str) -> list[Any]:
    """The tasks at an element that hold a token now (ready, waiting or started)."""
    return [t for t in all_tasks(workflow) if t.has_state(LIVE) and is_visible(t) and element_id(t) == element]


def successors(spec: Any) -> list[Any]:
    """The diagram elements a token reaches after ``spec`` completes (boundary joins are bookkeeping)."""
    result = []
    for output in spec.outputs:
        if getattr(output, "bpmn_id", None):
            result.append(output)
        elif type(output).__name__ == "BoundaryEventJoin":
            continue
        else:
            result.extend(successors(output) if type(output).__name__ != "_EndJoin" else [])
    return result


def _entry_spec(spec: Any) -> Any:
    """Where a token for ``spec`` starts: at its boundary split if it has boundary events (so they are armed)."""
    splits = [i for i in spec.inputs if isinstance(i, BoundaryEventSplit)]
    return splits[0] if splits else spec


def _workflow_for(workflow: Any, process_name: str) -> Any | None:
    """The live (sub)workflow running the process spec ``process_name``."""
    if workflow.spec.name == process_name:
        return workflow
    for sub in workflow.subprocesses.values():
        if sub.spec.name == process_name and not sub.is_completed():
            return sub
    return None


def _anchor(workflow: Any) -> Any:
    root = workflow.task_tree
    if not root.has_state(TaskState.FINISHED_MASK):
        raise InvalidState("the process has not started yet; nothing to modify")
    return root


def instance_data(workflow: Any) -> dict[str, Any]:
    """The data a new token starts with: the data of the live tasks merged, newest last (data objects too)."""
    live = [t for t in all_tasks(workflow) if t.has_state(LIVE) and t.workflow is workflow]
    data: dict[str, Any] = {}
    for task in sorted(live, key=lambda t: t.last_state_change):
        data.update(task.data)
    if not data and workflow.last_task is not None:
        data.update(workflow.last_task.data)
    return deepcopy(data)


def place_token(workflow: Any, spec: Any, anchor: Any, data: dict[str, Any]) -> Any:
    """A new token before ``spec``: a task under the finished ``anchor``, reset as a fresh branch (its successors
    predicted, ready at once unless it waits, e.g. a join or a catch event)."""
    task = anchor._add_child(_entry_spec(spec), TaskState.FUTURE)
    task.reset_branch(deepcopy(data))
    return task


def cancel_token(task: Any) -> list[Any]:
    """Cancel one token: an activity together with its boundary events, a called/embedded sub-process with all
    its tasks. Returns the tasks whose token ended."""
    parent = task.parent
    group = [task]
    if parent is not None and isinstance(parent.task_spec, BoundaryEventSplit) \
            and type(task.task_spec).__name__ != "BoundaryEvent":
        group = [c for c in parent.children if not c.has_state(TaskState.FINISHED_MASK)]
    top = task.workflow.top_workflow
    for member in group:
        sub = top.subprocesses.get(member.id)
        if sub is not None:
            top.cancel(sub)
        member.cancel()
    return group


# -- the modification ------------------------------------------------------------------------------------------

def _check_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidModification("a reason is required", None, "reason")
    if len(text) > MAX_REASON:
        raise InvalidModification(f"the reason is longer than {MAX_REASON} characters", None, "reason")
    return text


def _described(instruction: Instruction) -> dict[str, Any]:
    out: dict[str, Any] = {"type": instruction.kind, "elementId": instruction.element_id}
    if instruction.target_element_id:
        out["targetElementId"] = instruction.target_element_id
    if instruction.task_id:
        out["taskId"] = instruction.task_id
    if instruction.variables:
        out["variables"] = instruction.variables
    if instruction.kind == SKIP:
        out["result"] = instruction.result
    return out


def validate(workflow: Any, instructions: list[Instruction]) -> None:
    """Check the instructions against the definition: element ids exist and fit the instruction (422)."""
    if not instructions:
        raise InvalidModification("at least one instruction is needed", None, "instructions")
    elements = element_specs(workflow)
    for index, ins in enumerate(instructions):
        if ins.kind not in KINDS:
            raise InvalidModification(f"unknown instruction type '{ins.kind}' (one of {', '.join(KINDS)})",
                                      index, "type")
        names = [("elementId", ins.element_id)]
        if ins.kind == MOVE:
            if not ins.target_element_id:
                raise InvalidModification("moveToken needs targetElementId", index, "targetElementId")
            names.append(("targetElementId", ins.target_element_id))
        for field_name, name in names:
            if name not in elements:
                raise InvalidModification(f"element '{name}' does not exist in the process definition",
                                          index, field_name, name)
        spec = elements[ins.element_id][0]
        starts = {START_BEFORE: spec, MOVE: elements[ins.target_element_id or ""][0] if ins.kind == MOVE else None}
        start_spec = starts.get(ins.kind)
        if start_spec is not None and type(start_spec).__name__ == "BoundaryEvent":
            target = ins.target_element_id if ins.kind == MOVE else ins.element_id
            raise InvalidModification(f"element '{target}' is a boundary event: start before the activity it is "
                                      "attached to", index, "targetElementId" if ins.kind == MOVE else "elementId",
                                      target)
        if ins.kind == START_AFTER:
            nxt = successors(spec)
            if len(nxt) != 1:
                raise InvalidModification(
                    f"element '{ins.element_id}' has {len(nxt)} outgoing flows; start after it needs exactly one "
                    "(start before one of its successors instead)", index, "elementId", ins.element_id)
        if ins.kind == SKIP and not isinstance(spec, ExternalServiceTask):
            raise InvalidModification(f"element '{ins.element_id}' is not a service task; only service tasks can "
                                      "be skipped", index, "elementId", ins.element_id)


def apply(conn: Connection, inst: LoadedInstance, instructions: list[Instruction],
          user: str | None) -> list[HistoryEntry]:
    """Apply the instructions to a loaded running instance (in memory; the caller advances and saves)."""
    workflow = inst.workflow
    elements = element_specs(workflow)
    base_data = instance_data(workflow)
    history: list[HistoryEntry] = []
    for index, ins in enumerate(instructions):
        if ins.kind in (CANCEL, MOVE, SKIP):
            tokens = live_tokens(workflow, ins.element_id)
            if ins.task_id:
                tokens = [t for t in tokens if str(t.id) == ins.task_id]
            if not tokens:
                which = f"token '{ins.task_id}'" if ins.task_id else "token"
                raise InvalidState(f"instruction {index + 1}: element '{ins.element_id}' has no active {which}")
        if ins.kind == CANCEL:
            for task in tokens:
                cancel_token(task)
        elif ins.kind == MOVE:
            if len(tokens) > 1:
                raise InvalidState(f"instruction {index + 1}: element '{ins.element_id}' has {len(tokens)} "
                                   "active tokens; name one with taskId")
            data = {**deepcopy(tokens[0].data), **ins.variables}
            cancel_token(tokens[0])
            spec, process = elements[str(ins.target_element_id)]
            _start(workflow, spec, process, data, index)
        elif ins.kind in (START_BEFORE, START_AFTER):
            spec, process = elements[ins.element_id]
            if ins.kind == START_AFTER:
                spec = successors(spec)[0]
            _start(workflow, spec, process, {**base_data, **ins.variables}, index)
        elif ins.kind == SKIP:
            history.extend(_skip(conn, inst, tokens, ins, index))
    return history


def _start(workflow: Any, spec: Any, process: str, data: dict[str, Any], index: int) -> Any:
    target = _workflow_for(workflow, process)
    if target is None:
        raise InvalidState(f"instruction {index + 1}: element '{spec.bpmn_id}' lies in sub-process '{process}', "
                           "which is not active; start before the sub-process instead")
    return place_token(target, spec, _anchor(target), data)


def _skip(conn: Connection, inst: LoadedInstance, tokens: list[Any], ins: Instruction,
          index: int) -> list[HistoryEntry]:
    if len(tokens) > 1:
        raise InvalidState(f"instruction {index + 1}: element '{ins.element_id}' has {len(tokens)} active "
                           "tokens; name one with taskId")
    task = tokens[0]
    if not task.has_state(TaskState.STARTED):
        raise InvalidState(f"instruction {index + 1}: service task '{ins.element_id}' is not waiting for its "
                           "connector")
    row = conn.execute(sa.select(job.c.id, job.c.state, job.c.attempts, job.c.last_error)
                       .where(job.c.instance_id == inst.id).where(job.c.kind == SERVICE_JOB)
                       .where(job.c.task_id == str(task.id))
                       .where(job.c.state.in_(("pending", "running", "failed")))).first()
    if row is not None and row.state == "running":
        raise InvalidState(f"instruction {index + 1}: a worker is running service task '{ins.element_id}' "
                           "right now; wait until its attempt ends")
    history: list[HistoryEntry] = []
    if row is not None:
        # closed here, so the save's projection does not mark it as cancelled
        conn.execute(job.update().where(job.c.id == row.id).values(state="skipped", finished_at=utcnow(),
                                                                   lock_owner=None, lock_expires_at=None))
        inst.before.services.pop(str(task.id), None)
    task.data.update(deepcopy(ins.variables))
    # as if the connector had answered (its result variable); recorded like a normal completion
    completion: list[HistoryEntry] = []
    task.data[task.task_spec.result_variable] = deepcopy(ins.result if ins.result is not None else {})
    task.complete()
    completion.append(entry_for(task, "element.skipped", data={
        "jobId": row.id if row is not None else None, "attempts": row.attempts if row is not None else 0,
        "lastError": row.last_error if row is not None else None, "result": ins.result}))
    history.extend(completion)
    return history


def modify(engine: Engine, instance_id: str, instructions: list[Instruction], reason: str | None,
           user: str | None) -> InstanceView:
    """Apply a modification to a running instance in one transaction; a concurrent change loses (409)."""
    text = _check_reason(reason)
    with engine.transaction() as conn:
        inst = engine.store.load(conn, instance_id)
        if inst.state != RUNNING:
            raise InvalidState(f"process instance '{instance_id}' is {inst.state}; only running instances can be "
                               "modified")
        validate(inst.workflow, instructions)
        history = [HistoryEntry("instance.modified", user_id=user, data={
            "reason": text, "instructions": [_described(i) for i in instructions]})]
        history.extend(apply(conn, inst, instructions, user))
        ctx = engine.step_context(inst, history)
        advance(inst.workflow, ctx)
        if _nothing_left(inst.workflow):
            ctx.history.append(HistoryEntry("instance.cancelled", user_id=user, data={
                "reason": text, "byModification": True}))
            engine.store.save(conn, inst, ctx.history, user, final_state=CANCELLED)
        else:
            engine.save_advanced(conn, inst, ctx.history, user, ctx)
        return engine._view(inst)


def _nothing_left(workflow: Any) -> bool:
    """Every token was cancelled and none reached an end: the instance ends as cancelled (as in Camunda)."""
    if any(not t.has_state(TaskState.FINISHED_MASK) for t in all_tasks(workflow)):
        return False
    ended = any(t.task_spec.name == "End" and t.has_state(TaskState.COMPLETED) for t in workflow.tasks.values())
    return not ended


def active_elements(workflow: Any) -> list[dict[str, Any]]:
    """The tokens an operator may act on (for the instance page): element, task id, state, type."""
    return [{"elementId": element_id(t), "taskId": str(t.id), "state": TaskState.get_name(t.state),
             "type": type(t.task_spec).__name__}
            for t in all_tasks(workflow) if t.has_state(LIVE) and is_visible(t)]


def options(engine: Engine, instance_id: str) -> dict[str, Any]:
    """What the instance page offers an operator: the definition's elements and the tokens now (read only)."""
    with engine.db.read() as conn:
        inst = engine.store.load(conn, instance_id, for_update=False)
        failed = [r.element_id for r in conn.execute(
            sa.select(job.c.element_id).where(job.c.instance_id == instance_id).where(job.c.kind == SERVICE_JOB)
            .where(job.c.state.in_(("failed", "pending"))))]
    elements = [{"id": bpmn_id, "name": getattr(spec, "bpmn_name", None) or bpmn_id, "type": type(spec).__name__,
                 "startAfter": len(successors(spec)) == 1}
                for bpmn_id, (spec, _process) in element_specs(inst.workflow).items()]
    return {"state": inst.state, "elements": sorted(elements, key=lambda e: str(e["name"]).lower()),
            "tokens": active_elements(inst.workflow), "waitingServices": sorted(set(failed) - {None})}


def retry_with_fresh_parameters(engine: Engine, job_id: str, variables: dict[str, Any] | None = None,
                                reason: str | None = None, user: str | None = None) -> dict[str, Any]:
    """Fix the data behind an incident and retry in one step: set ``variables`` on the instance, evaluate the
    service task's parameters again from the data as it is now (a job's parameters were evaluated when the task
    was reached, so fixing a variable alone did not help) and queue the job with fresh attempts. One
    transaction under the instance's optimistic lock; history ``job.retried`` with the new parameters."""
    with engine.transaction() as conn:
        row = conn.execute(sa.select(job).where(job.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"job '{job_id}' does not exist")
        if row.kind != SERVICE_JOB or row.state not in ("failed", "pending"):
            raise InvalidState(f"job '{job_id}' is a {row.kind} job in state {row.state}; only a failed or waiting "
                               "service job can be retried with fresh parameters")
        inst = engine.store.load(conn, str(row.instance_id))
        if inst.state != RUNNING:
            raise InvalidState(f"process instance '{inst.id}' is {inst.state}")
        task = engine.store.task(inst, str(row.task_id))
        if task is None or not task.has_state(TaskState.STARTED):
            raise InvalidState(f"service task '{row.element_id}' no longer waits for its connector")
        if variables:
            for live in all_tasks(inst.workflow):
                if live.has_state(LIVE):
                    live.data.update(deepcopy(variables))
        call = service_call(task, inst.id, inst.business_key)  # a ProcessError names the element (422)
        payload = json.loads(row.payload) if row.payload else {}
        before = payload.get("params")
        payload["params"] = engine.store.serializer.to_jsonable(call.params)
        conn.execute(job.update().where(job.c.id == job_id).values(
            payload=json.dumps(payload), state="pending", attempts=0, due_at=utcnow(), finished_at=None,
            lock_owner=None, lock_expires_at=None))
        history = [entry_for(task, "job.retried", user_id=user, data={
            "jobId": job_id, "reason": (reason or "").strip() or None, "variables": variables or {},
            "params": payload["params"], "previousParams": before})]
        engine.store.save(conn, inst, history, user)
        engine._signal_jobs(conn)
        return {"jobId": job_id, "state": "pending", "params": payload["params"], "previousParams": before}
