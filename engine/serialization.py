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

from .specs import ExternalServiceTask
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
        self.registry._encoder_mode = True
        try:
            dct = self.converter.to_dict(workflow)
            dct["format"] = STATE_FORMAT
            return json.dumps(dct, cls=self._encoder, separators=(",", ":"))
        finally:
            self.registry._encoder_mode = False

    def loads(self, state: str, workflow: BpmnWorkflow) -> BpmnWorkflow:
        """Fill ``workflow`` (created with ``deserializing=True`` from cached specs) with the saved state."""
        dct = json.loads(state)
        dct.pop("format", None)
        return self.converter.restore(dct, workflow)

    def to_jsonable(self, value: Any) -> Any:
        """Task data as plain JSON values (for projections and history)."""
        return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return repr(value)
