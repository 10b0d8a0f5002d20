"""Migration of running instances to another version of their process (Camunda's migration plans).

A **plan** maps the elements of a source definition to those of a target by element id: the same id (and the
same kind of element) maps by itself, anything else must be mapped explicitly. **Validating** a plan against an
instance tells whether it can move and why not: an active element without a mapping, a token inside a
sub-process or waiting at a join (not supported), or data the target cannot work with — the last found by
migrating in a transaction that is rolled back, so whatever the target evaluates when a token arrives (timer
expressions, assignee expressions, …) is tried on the instance's real data. **Executing** migrates each instance
in its own transaction and reports per instance.

On SpiffWorkflow the state is a task tree of the old spec, so migrating re-creates the workflow on the target
spec: a fresh tree whose root counts as run, with one token placed (``engine.modification.place_token``) at the
mapped element of every active one, carrying that task's data. The normal save then re-projects: the old user
tasks close and new ones open (a claim is carried over), service jobs are written again, and timers keep their
due time when the timer element maps (``update_event_triggers`` arms them anew from now). The history stays
with the instance and gets ``instance.migrated`` with the versions and the mappings used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.engine import Connection

from .database import utcnow
from .errors import EngineError, NotFound
from .instances import RUNNING, LoadedInstance
from .modification import LIVE, instance_data, place_token
from .repository import LoadedDefinition
from .schema import process_definition, process_instance, user_task
from .stepper import HistoryEntry, advance, element_id, is_visible

if TYPE_CHECKING:
    from .runtime import Engine

MAX_INSTANCES = 1000


class InvalidPlan(EngineError):
    """A plan names an element one of the definitions does not have (HTTP 422 naming it)."""

    def __init__(self, message: str, field: str, element_id: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.element_id = element_id


@dataclass(frozen=True)
class Unmapped:
    element_id: str
    name: str | None
    reason: str


@dataclass(frozen=True)
class MigrationPlan:
    source_key: str
    source_version: int
    target_key: str
    target_version: int
    mappings: dict[str, str]  # source element id → target element id
    unmapped: list[Unmapped] = field(default_factory=list)
    update_event_triggers: bool = False


@dataclass(frozen=True)
class InstanceReport:
    instance_id: str
    ok: bool
    reasons: list[str]
    business_key: str | None = None
    active_elements: list[str] = field(default_factory=list)


class MigrationRefused(EngineError):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


# -- definitions and plans --------------------------------------------------------------------------------------

def load_definition(engine: Engine, conn: Connection, definition_id: str | None = None, key: str | None = None,
                    version: int | None = None) -> LoadedDefinition:
    """A definition by id, or by key and version (latest without a version)."""
    if definition_id:
        row = conn.execute(sa.select(process_definition.c.key, process_definition.c.version)
                           .where(process_definition.c.id == definition_id)).first()
        if row is None:
            raise NotFound(f"process definition '{definition_id}' does not exist")
        key, version = row.key, row.version
    if not key:
        raise InvalidPlan("name a definition by id or by key (and version)", "key")
    return engine.repository.get(conn, key, version)


def elements_of(definition: LoadedDefinition) -> dict[str, Any]:
    specs = {}
    for process in [definition.parsed.spec, *definition.parsed.embedded.values()]:
        for spec in process.task_specs.values():
            bpmn_id = getattr(spec, "bpmn_id", None)
            if bpmn_id and bpmn_id not in specs:
                specs[str(bpmn_id)] = spec
    return specs


def _kind(spec: Any) -> str:
    return type(spec).__name__


def make_plan(source: LoadedDefinition, target: LoadedDefinition, explicit: dict[str, str] | None = None,
              update_event_triggers: bool = False) -> MigrationPlan:
    """Map by element id (same id and kind), then apply the explicit mappings; list what stays unmapped."""
    src, dst = elements_of(source), elements_of(target)
    for source_id, target_id in (explicit or {}).items():
        if source_id not in src:
            raise InvalidPlan(f"element '{source_id}' does not exist in {source.info.key} version "
                              f"{source.info.version}", f"mappings.{source_id}", source_id)
        if target_id not in dst:
            raise InvalidPlan(f"element '{target_id}' does not exist in {target.info.key} version "
                              f"{target.info.version}", f"mappings.{source_id}", target_id)
    mappings: dict[str, str] = {}
    unmapped: list[Unmapped] = []
    for source_id, spec in src.items():
        name = getattr(spec, "bpmn_name", None)
        if explicit and source_id in explicit:
            mappings[source_id] = explicit[source_id]
        elif source_id in dst and _kind(dst[source_id]) == _kind(spec):
            mappings[source_id] = source_id
        elif source_id in dst:
            unmapped.append(Unmapped(source_id, name, f"is a {_kind(spec)} here and a {_kind(dst[source_id])} in "
                                                      "the target: map it explicitly"))
        else:
            unmapped.append(Unmapped(source_id, name, "does not exist in the target: map it explicitly"))
    return MigrationPlan(source.info.key, source.info.version, target.info.key, target.info.version, mappings,
                         unmapped, update_event_triggers)


# -- one instance ---------------------------------------------------------------------------------------------

def _tokens(workflow: Any) -> list[Any]:
    """The tasks holding a token; boundary events ride along with their activity."""
    tokens = []
    for task in [*workflow.tasks.values(), *(t for sub in workflow.subprocesses.values() for t in sub.tasks.values())]:
        if not task.has_state(LIVE) or not is_visible(task):
            continue
        parent = task.parent
        if _kind(task.task_spec) == "BoundaryEvent" and parent is not None \
                and isinstance(parent.task_spec, BoundaryEventSplit) \
                and any(c is not task and c.has_state(LIVE) and _kind(c.task_spec) != "BoundaryEvent"
                        for c in parent.children):
            continue
        tokens.append(task)
    return tokens


def structural_reasons(inst: LoadedInstance, plan: MigrationPlan) -> list[str]:
    """Why an instance cannot follow the plan, before trying it: state, version, unmapped or unsupported tokens."""
    info = inst.definition.info
    if inst.state != RUNNING:
        return [f"the instance is {inst.state}"]
    if (info.key, info.version) != (plan.source_key, plan.source_version):
        return [f"the instance runs {info.key} version {info.version}, the plan migrates {plan.source_key} "
                f"version {plan.source_version}"]
    reasons = []
    for task in _tokens(inst.workflow):
        element = element_id(task)
        label = f"'{element}'" + (f" ({task.task_spec.bpmn_name})" if getattr(task.task_spec, "bpmn_name", None)
                                  else "")
        if task.workflow is not inst.workflow or task.id in inst.workflow.subprocesses:
            reasons.append(f"active element {label} is or lies in a sub-process: migrating sub-process tokens "
                           "is not supported; wait until it is done or move the token first")
        elif task.has_state(TaskState.WAITING) and "Gateway" in _kind(task.task_spec):
            reasons.append(f"a token waits at the join {label}: complete the other branches first")
        elif element not in plan.mappings:
            reasons.append(f"active element {label} has no mapping in the target version")
    return reasons


def _migrate(engine: Engine, conn: Connection, plan: MigrationPlan, instance_id: str, user: str | None,
             reason: str | None) -> LoadedInstance:
    inst = engine.store.load(conn, instance_id)
    reasons = structural_reasons(inst, plan)
    if reasons:
        raise MigrationRefused(reasons)
    target = engine.repository.get(conn, plan.target_key, plan.target_version)
    targets = elements_of(target)
    specs, versions = engine.repository.resolve_called(conn, target)
    old = inst.workflow
    tokens = _tokens(old)
    claims = {r.id: r.assignee for r in conn.execute(
        sa.select(user_task.c.id, user_task.c.assignee).where(user_task.c.instance_id == inst.id)
        .where(user_task.c.state == "open").where(user_task.c.assignee.is_not(None))) if r.assignee}
    workflow = BpmnWorkflow(target.parsed.spec, specs, script_engine=engine.script_engine)
    root = workflow.task_tree
    root._drop_children(force=True)
    root.data = instance_data(old)
    root._set_state(TaskState.COMPLETED)  # counts as run: the tokens below it start where they were
    placed: list[tuple[Any, Any, Any]] = []  # (old task, new spec, new placed task)
    old_timers = [_waiting_timers(task) for task in tokens]
    for task in tokens:
        spec = targets[plan.mappings[element_id(task)]]
        placed.append((task, spec, place_token(workflow, spec, root, task.data)))
    old.cancel()  # the old tokens end (their user tasks close as cancelled in the projection)
    migrated = LoadedInstance(inst.id, target, inst.business_key, RUNNING, inst.lock_version, versions, workflow,
                              inst.before, inst.variables_before, inst.started_at)
    history = [HistoryEntry("instance.migrated", user_id=user, data={
        "fromKey": plan.source_key, "fromVersion": plan.source_version, "toKey": plan.target_key,
        "toVersion": plan.target_version, "reason": reason,
        "mappings": {element_id(t): plan.mappings[element_id(t)] for t in tokens}})]
    ctx = engine.step_context(migrated, history)
    advance(workflow, ctx)  # arms the boundary events of the placed activities (timers from now) ...
    if not plan.update_event_triggers:
        _keep_timers(placed, old_timers, plan)  # ... unless a timer that maps keeps its due time
    engine.save_advanced(conn, migrated, ctx.history, user, ctx)
    conn.execute(process_instance.update().where(process_instance.c.id == inst.id).values(
        definition_id=target.info.id, process_key=target.info.key, process_version=target.info.version))
    _carry_claims(conn, placed, claims)
    return migrated


def _user_task_of(placed: Any, spec: Any) -> Any | None:
    if placed.task_spec is spec:
        return placed
    return next((c for c in placed.children if c.task_spec is spec), None)


def _carry_claims(conn: Connection, placed: list[tuple[Any, Any, Any]], claims: dict[str, str]) -> None:
    """A claimed user task stays with its person when it maps to a user task again (unless routed anew)."""
    now = utcnow()
    for old, spec, new in placed:
        assignee = claims.get(str(old.id))
        task = _user_task_of(new, spec)
        if assignee is None or task is None or not task.task_spec.manual:
            continue
        conn.execute(user_task.update().where(user_task.c.id == str(task.id)).where(user_task.c.state == "open")
                     .where(user_task.c.assignee.is_(None)).where(user_task.c.personal.is_(False))
                     .values(assignee=assignee, claimed_at=now))


def _waiting_timers(task: Any) -> dict[str, Any]:
    """The due states of a token's waiting timers (its own, or its boundary events'), by element id."""
    waiting = [task]
    if task.parent is not None and isinstance(task.parent.task_spec, BoundaryEventSplit):
        waiting += [c for c in task.parent.children if c is not task]
    return {element_id(t): t._get_internal_data("event_value") for t in waiting
            if t.has_state(TaskState.WAITING) and t._get_internal_data("event_value") is not None}


def _keep_timers(placed: list[tuple[Any, Any, Any]], old_timers: list[dict[str, Any]], plan: MigrationPlan) -> None:
    """A waiting timer that maps keeps its due time (placing the token armed it from now)."""
    for (_old, _spec, new), timers in zip(placed, old_timers, strict=True):
        new_waiting = [new, *new.children] if isinstance(new.task_spec, BoundaryEventSplit) else [new]
        by_element = {element_id(t): t for t in new_waiting if t.has_state(TaskState.WAITING) and is_visible(t)}
        for source, value in timers.items():
            target = by_element.get(plan.mappings.get(source, ""))
            if target is not None and target._get_internal_data("event_value") is not None:
                target._set_internal_data(event_value=value)


# -- the operations -----------------------------------------------------------------------------------------------

class _DryRun(Exception):
    pass


def _describe(exc: BaseException) -> str:
    if isinstance(exc, MigrationRefused):
        return "; ".join(exc.reasons)
    message = str(exc)
    element = getattr(exc, "element_id", None)
    task = getattr(exc, "task", None)
    if element is None and task is not None:
        element = element_id(task)
    return f"data: {message}" + (f" (at '{element}')" if element and element not in message else "")


def validate(engine: Engine, plan: MigrationPlan, instance_ids: list[str]) -> list[InstanceReport]:
    """Try the plan on every instance and roll back: which would migrate, and why the others would not."""
    reports = []
    for instance_id in instance_ids[:MAX_INSTANCES]:
        business_key, active = None, []
        try:
            with engine.db.transaction() as conn:
                inst = engine.store.load(conn, instance_id, for_update=False)
                business_key = inst.business_key
                active = sorted({element_id(t) for t in _tokens(inst.workflow)})
                _migrate(engine, conn, plan, instance_id, None, None)
                raise _DryRun()
        except _DryRun:
            reports.append(InstanceReport(instance_id, True, [], business_key, active))
        except NotFound as exc:
            reports.append(InstanceReport(instance_id, False, [str(exc)]))
        except MigrationRefused as exc:
            reports.append(InstanceReport(instance_id, False, exc.reasons, business_key, active))
        except (EngineError, SpiffWorkflowException, ValueError, KeyError, TypeError) as exc:
            reports.append(InstanceReport(instance_id, False, [_describe(exc)], business_key, active))
    return reports


def execute(engine: Engine, plan: MigrationPlan, instance_ids: list[str], user: str | None,
            reason: str | None = None) -> list[InstanceReport]:
    """Migrate each instance in a transaction of its own; one that cannot move is reported, the rest go on."""
    reports = []
    for instance_id in instance_ids[:MAX_INSTANCES]:
        try:
            with engine.transaction() as conn:
                migrated = _migrate(engine, conn, plan, instance_id, user, reason)
            reports.append(InstanceReport(instance_id, True, [], migrated.business_key,
                                          engine._view(migrated).active_elements))
        except MigrationRefused as exc:
            reports.append(InstanceReport(instance_id, False, exc.reasons))
        except (EngineError, SpiffWorkflowException, ValueError, KeyError, TypeError) as exc:
            reports.append(InstanceReport(instance_id, False, [_describe(exc)]))
    return reports


def instances_of(engine: Engine, plan: MigrationPlan, business_key: str | None = None,
                 limit: int = MAX_INSTANCES) -> list[str]:
    """The running instances of the plan's source version (a filter instead of a list of ids)."""
    query = (sa.select(process_instance.c.id).where(process_instance.c.process_key == plan.source_key)
             .where(process_instance.c.process_version == plan.source_version)
             .where(process_instance.c.state == RUNNING).order_by(process_instance.c.started_at).limit(limit))
    if business_key:
        query = query.where(process_instance.c.business_key == business_key)
    with engine.db.read() as conn:
        return [r.id for r in conn.execute(query)]


def plan_for(engine: Engine, source: dict[str, Any], target: dict[str, Any],
             explicit: dict[str, str] | None = None, update_event_triggers: bool = False) -> MigrationPlan:
    """A plan between two definitions named by ``{"id": …}`` or ``{"key": …, "version": …}``."""
    with engine.db.read() as conn:
        src = load_definition(engine, conn, source.get("id"), source.get("key"), source.get("version"))
        dst = load_definition(engine, conn, target.get("id"), target.get("key"), target.get("version"))
    if (src.info.key, src.info.version) == (dst.info.key, dst.info.version):
        raise InvalidPlan("source and target are the same version", "target")
    return make_plan(src, dst, explicit, update_event_triggers)


def checked_plan(engine: Engine, source_key: str, source_version: int, target_key: str, target_version: int,
                 mappings: dict[str, str], update_event_triggers: bool = False) -> MigrationPlan:
    """A plan as a client sends it back (to validate or execute): exactly its mappings, each element checked."""
    with engine.db.read() as conn:
        src = engine.repository.get(conn, source_key, source_version)
        dst = engine.repository.get(conn, target_key, target_version)
    full = make_plan(src, dst, mappings, update_event_triggers)
    return MigrationPlan(full.source_key, full.source_version, full.target_key, full.target_version,
                         dict(mappings), [u for u in full.unmapped if u.element_id not in mappings],
                         update_event_triggers)


def running_per_version(engine: Engine, key: str) -> dict[int, int]:
    """How many instances of each version of a process are running (what a migration could move)."""
    with engine.db.read() as conn:
        rows = conn.execute(sa.select(process_instance.c.process_version, sa.func.count())
                            .where(process_instance.c.process_key == key)
                            .where(process_instance.c.state == RUNNING)
                            .group_by(process_instance.c.process_version)).all()
    return {int(version): int(count) for version, count in rows}
