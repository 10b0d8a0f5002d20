"""Who started an instance: a start event's ``initiator`` property names the variable that receives the starting
user (Camunda's ``camunda:initiator``), so a process never has to trust a start variable for it.

    <bpmn:startEvent id="start">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="initiator" value="employee"/>
      </spiffworkflow:properties></bpmn:extensionElements>
    </bpmn:startEvent>
"""

from __future__ import annotations

import keyword
from typing import Any

from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.defaults import StartEvent
from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition

from .errors import Problem

INITIATOR_PROPERTY = "initiator"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"


def initiator_variable(task_spec: Any) -> str | None:
    """The variable a start event's ``initiator`` property names, or None."""
    extensions = getattr(task_spec, "extensions", None) or {}
    value = (extensions.get("properties") or {}).get(INITIATOR_PROPERTY)
    return str(value) if value else None


def plain_start_events(spec: BpmnProcessSpec) -> list[StartEvent]:
    """The start events a person triggers (no message, timer or signal): the ones ``Engine.start`` begins at."""
    return [ts for ts in spec.task_specs.values()
            if isinstance(ts, StartEvent) and isinstance(ts.event_definition, NoneEventDefinition)]


def with_initiator(task_spec: Any, variables: dict[str, Any], user: str | None) -> dict[str, Any]:
    """The start variables with the initiator variable set to ``user``: the engine's word beats the client's."""
    name = initiator_variable(task_spec)
    return variables if name is None else {**variables, name: user}


def initiator_problems(file_name: str, root: Any) -> list[Problem]:
    """Start events of a parsed file whose ``initiator`` is not a variable name a script could read."""
    problems = []
    for event in root.iter(f"{{{BPMN_NS}}}startEvent"):
        for prop in event.iterfind(f"{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}properties/"
                                   f"{{{SPIFF_NS}}}property[@name='{INITIATOR_PROPERTY}']"):
            value = prop.get("value") or ""
            if not value.isidentifier() or keyword.iskeyword(value):
                problems.append(Problem(
                    f"startEvent: initiator '{value}' is not a valid variable name (a Python identifier)",
                    file_name, event.get("id"), prop.sourceline))
    return problems
