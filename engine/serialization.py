"""Instance state to JSON and back, without the process definition.

Spiff's serializer writes the whole parsed spec into every saved state; we store each definition once and
keep the parsed spec cached, so a saved state holds only the task tree and data (about half the bytes and
half the time of a full save).
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.serializer.helpers.encoder import create_encoder
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter
from SpiffWorkflow.spiff.specs.defaults import ServiceTask

from .errors import ProcessError
from .specs import ExternalServiceTask
from .stepper import all_tasks, element_id
from .timers import register_calendar_timers

STATE_FORMAT = 1


class StateOnlyWorkflowConverter(BpmnWorkflowConverter):
    """Converts a workflow's tasks and data, leaving the specs to the definition cache."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct: dict[str, Any] = super(BpmnWorkflowConverter, self).to_dict(workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def restore(self, dct: dict[str, Any], workflow: BpmnWorkflow) -> BpmnWorkflow:
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _build_registry() -> Any:
    config = dict(SPIFF_CONFIG)
    config.pop(ServiceTask, None)
    config[ExternalServiceTask] = ServiceTaskConverter
    registry = BpmnWorkflowSerializer.configure(config)
    register_calendar_timers(registry)
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]), "Decimal")
    registry.register(date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"]), "date")
    return registry


class StateSerializer:
    """Dumps and restores instance state; one instance is shared by the whole process."""

    def __init__(self) -> None:
        self.registry = _build_registry()
        self.converter = StateOnlyWorkflowConverter(BpmnWorkflow, self.registry)
        self._encoder = create_encoder(self.registry, None)

    def dumps(self, workflow: BpmnWorkflow) -> str:
        """The instance state as JSON; a variable that JSON cannot hold (bytes, NaN, an object a script made)
        fails the step as a ProcessError naming the variable and the element that set it."""
        self.registry._encoder_mode = True
        try:
            dct = self.converter.to_dict(workflow)
            dct["format"] = STATE_FORMAT
            try:
                return json.dumps(dct, cls=self._encoder, separators=(",", ":"), allow_nan=False)
            except (TypeError, ValueError, RecursionError) as exc:
                raise self._unstorable(workflow) or ProcessError(f"the instance state cannot be stored: {exc}") \
                    from exc
        finally:
            self.registry._encoder_mode = False

    def _storable(self, value: Any) -> bool:
        try:
            json.dumps(self.registry.convert(value), cls=self._encoder, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            return False
        return True

    def _unstorable(self, workflow: BpmnWorkflow) -> ProcessError | None:
        """The variable that cannot be stored, blamed on the element that set it: the task holding it whose
        parent did not hold it yet (its children only inherited it)."""
        for task in all_tasks(workflow):
            for name, value in task.data.items():
                if self._storable(value):
                    continue
                parent = task.parent
                if parent is not None and name in parent.data and not self._storable(parent.data[name]):
                    continue
                return ProcessError(
                    f"variable '{name}' holds {_kind(value)}, which a process variable cannot hold; store text, "
                    "numbers, true/false, dates, lists or objects of these", element_id(task))
        return None

    def loads(self, state: str, workflow: BpmnWorkflow) -> BpmnWorkflow:
        """Fill ``workflow`` (created with ``deserializing=True`` from cached specs) with the saved state."""
        dct = json.loads(state)
        dct.pop("format", None)
        return self.converter.restore(dct, workflow)

    def to_jsonable(self, value: Any) -> Any:
        """Task data as plain JSON values (for projections and history)."""
        return json.loads(json.dumps(value, default=_json_default))


def _kind(value: Any) -> str:
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, bytes | bytearray):
        return "bytes"
    if isinstance(value, dict | list | tuple | set | frozenset):
        return f"a {type(value).__name__} with a value JSON cannot hold"
    return f"a {type(value).__name__} object"


def _json_default(value: Any) -> Any:
    """Plain JSON for what scripts produce: Decimals as text (exact), dates as ISO 8601, sets as lists."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    return repr(value)
