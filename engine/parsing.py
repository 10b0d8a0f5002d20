"""BPMN parsing and validation: XML in, parsed specs or a list of problems out.

Uses Spiff's spiff-flavoured parser, so files made in bpmn-js with the spiff extensions (service task
operators, properties, pre/post scripts) work, and plain BPMN too. Every problem names the element and the
line, and nothing that a modeller can draw crashes the deploy: anything unexpected becomes a problem.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import CallActivity, SubWorkflowTask
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser

from .errors import Problem
from .initiator import initiator_problems
from .sandbox import ScriptRejected, check
from .specs import ExternalServiceTask
from .timers import use_calendar_timers

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
FLOW_NODE_TAGS = {
    "task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask",
    "businessRuleTask", "subProcess", "adHocSubProcess", "transaction", "callActivity",
    "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway",
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
}
UNSUPPORTED = {
    "complexGateway": "complex gateways are not supported",
    "businessRuleTask": "business rule tasks (DMN) are not supported",
}
UNSUPPORTED_EVENT_DEFINITIONS = {
    "compensateEventDefinition": "compensation events are not supported",
    "linkEventDefinition": "link events are not supported",
}


class SilverflowParser(SpiffBpmnParser):
    """Spiff's parser with our service task, which waits for the engine to call the connector."""

    OVERRIDE_PARSER_CLASSES = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("serviceTask"): (ServiceTaskParser, ExternalServiceTask),
    }


def checksum(xml: bytes) -> str:
    return hashlib.sha256(xml).hexdigest()


@dataclass
class ParsedProcess:
    """One executable process of a file, parsed once and cached per (key, version)."""

    key: str
    name: str
    spec: BpmnProcessSpec
    embedded: dict[str, BpmnProcessSpec]
    called_keys: set[str]


@dataclass
class ParsedFile:
    file_name: str
    xml: bytes
    checksum: str
    processes: dict[str, ParsedProcess] = field(default_factory=dict)


def _line_of(root: Any, element_id: str | None) -> int | None:
    if not element_id:
        return None
    found = root.xpath("//*[@id=$id]", id=element_id)
    return int(found[0].sourceline) if found else None


def element_line(xml: bytes, element_id: str | None) -> int | None:
    """The line of an element in a file that already parsed (for problems found after parsing)."""
    return _line_of(etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True)), element_id)


def _structural_problems(file_name: str, root: Any) -> list[Problem]:
    problems = []
    if root.tag != f"{{{BPMN_NS}}}definitions":
        return [Problem("not a BPMN 2.0 file: the root element must be bpmn:definitions", file_name,
                        None, root.sourceline)]
    processes = root.findall(f"{{{BPMN_NS}}}process")
    if not processes:
        problems.append(Problem("the file contains no process", file_name, None, root.sourceline))
    elif not any(p.get("isExecutable", "true") == "true" for p in processes):
        problems.append(Problem("no executable process: set isExecutable=\"true\" on the process to deploy it",
                                file_name, processes[0].get("id"), processes[0].sourceline))
    for node in root.iter():
        if not isinstance(node.tag, str) or not node.tag.startswith(f"{{{BPMN_NS}}}"):
            continue
        local = node.tag.split("}", 1)[1]
        reason = UNSUPPORTED.get(local) or UNSUPPORTED_EVENT_DEFINITIONS.get(local)
        if reason:
            owner = node if local in UNSUPPORTED else node.getparent()
            problems.append(Problem(f"{owner.tag.split('}', 1)[1]}: {reason}", file_name,
                                    owner.get("id"), node.sourceline))
    problems.extend(_gateway_timer_problems(file_name, root))
    problems.extend(initiator_problems(file_name, root))
    return problems


def _gateway_timer_problems(file_name: str, root: Any) -> list[Problem]:
    """An event-based gateway waits as one task with one timer value, so a second timer branch would silently
    never fire: refuse it at deploy time."""
    problems = []
    for container in root.iter(f"{{{BPMN_NS}}}process", f"{{{BPMN_NS}}}subProcess"):
        by_id = {child.get("id"): child for child in container}
        for gateway in container.findall(f"{{{BPMN_NS}}}eventBasedGateway"):
            timers = [flow.get("targetRef") for flow in container.findall(f"{{{BPMN_NS}}}sequenceFlow")
                      if flow.get("sourceRef") == gateway.get("id")
                      and (target := by_id.get(flow.get("targetRef"))) is not None
                      and target.find(f"{{{BPMN_NS}}}timerEventDefinition") is not None]
            if len(timers) > 1:
                problems.append(Problem(
                    f"eventBasedGateway: one timer branch at most, found {len(timers)} ({', '.join(timers)}); "
                    "put the other deadline on a boundary timer of a sub-process", file_name, gateway.get("id"),
                    gateway.sourceline))
    return problems


def _schema_problems(file_name: str, root: Any) -> list[Problem]:
    VALIDATOR.preprocess(root)
    if VALIDATOR.validator.validate(root):
        return []
    problems = []
    for error in VALIDATOR.validator.error_log:
        element_id = None
        if error.path:
            try:
                found = root.getroottree().xpath(error.path, namespaces={k: v for k, v in root.nsmap.items() if k})
                element_id = found[0].get("id") if found else None
            except etree.XPathError:
                element_id = None
        problems.append(Problem(f"schema: {error.message}", file_name, element_id, error.line))
    return problems


def _walk_specs(spec: BpmnProcessSpec, parser: SilverflowParser) -> tuple[dict[str, BpmnProcessSpec], set[str]]:
    """Collect embedded sub-process specs (recursively) and the keys of called processes; give every spec
    calendar timers on the way (``engine.timers``)."""
    embedded: dict[str, BpmnProcessSpec] = {}
    called: set[str] = set()
    pending = [spec]
    while pending:
        current = pending.pop()
        for task_spec in current.task_specs.values():
            use_calendar_timers(task_spec)
            if isinstance(task_spec, CallActivity):
                called.add(task_spec.spec)
            elif isinstance(task_spec, SubWorkflowTask) and task_spec.spec not in embedded:
                sub = parser.get_spec(task_spec.spec)
                embedded[task_spec.spec] = sub
                pending.append(sub)
    return embedded, called


def _script_problems(file_name: str, root: Any, specs: list[BpmnProcessSpec]) -> list[Problem]:
    problems = []
    for spec in specs:
        for task_spec in spec.task_specs.values():
            sources: list[tuple[str, str, str]] = []
            for attr, mode in (("script", "exec"), ("prescript", "exec"), ("postscript", "exec")):
                value = getattr(task_spec, attr, None)
                if value:
                    sources.append((attr, value, mode))
            for condition, _target in getattr(task_spec, "cond_task_specs", []) or []:
                if condition is not None and getattr(condition, "args", None):
                    sources.append(("condition", condition.args[0], "eval"))
            if isinstance(task_spec, ExternalServiceTask):
                for name, param in task_spec.operation_params.items():
                    sources.append((f"parameter {name}", param["value"], "eval"))
            element_id = getattr(task_spec, "bpmn_id", None) or task_spec.name
            for what, source, mode in sources:
                try:
                    check(source, mode)
                except ScriptRejected as exc:
                    problems.append(Problem(f"{what}: {exc}", file_name, element_id, _line_of(root, element_id)))
    return problems


def parse_files(files: list[tuple[str, bytes]]) -> tuple[list[ParsedFile], list[Problem]]:
    """Parse and validate BPMN files together, so call activities may point across them."""
    parser = SilverflowParser()
    parsed: list[ParsedFile] = []
    problems: list[Problem] = []
    roots: dict[str, Any] = {}
    for file_name, xml in files:
        try:
            root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError as exc:
            problems.append(Problem(f"not well-formed XML: {exc.msg}", file_name, None, exc.lineno))
            continue
        file_problems = _structural_problems(file_name, root) or _schema_problems(file_name, root)
        if file_problems:
            problems.extend(file_problems)
            continue
        try:
            parser.add_bpmn_xml(root, filename=file_name)
        except ValidationException as exc:
            problems.append(_problem_from_validation(exc, file_name, root))
            continue
        except Exception as exc:  # noqa: BLE001 - a modeller's file must never crash the deploy
            problems.append(Problem(f"cannot read the file: {exc}", file_name, None, None))
            continue
        roots[file_name] = root
        parsed.append(ParsedFile(file_name, xml, checksum(xml)))
    if problems:
        return [], problems

    for parsed_file in parsed:
        root = roots[parsed_file.file_name]
        for process in root.findall(f"{{{BPMN_NS}}}process"):
            key = process.get("id")
            if process.get("isExecutable", "true") != "true":
                continue
            try:
                spec = parser.get_spec(key)
                embedded, called = _walk_specs(spec, parser)
            except ValidationException as exc:
                problems.append(_problem_from_validation(exc, parsed_file.file_name, root))
                continue
            except SpiffWorkflowException as exc:
                problems.append(Problem(str(exc), parsed_file.file_name, key, process.sourceline))
                continue
            except Exception as exc:  # noqa: BLE001
                problems.append(Problem(f"cannot parse process: {exc}", parsed_file.file_name, key,
                                        process.sourceline))
                continue
            problems.extend(_script_problems(parsed_file.file_name, root, [spec, *embedded.values()]))
            parsed_file.processes[key] = ParsedProcess(key, process.get("name") or key, spec, embedded, called)
    return ([] if problems else parsed), problems


def _problem_from_validation(exc: ValidationException, file_name: str, root: Any) -> Problem:
    element_id = getattr(exc, "id", None) or None
    line = getattr(exc, "line_number", None) or _line_of(root, element_id)
    message = exc.args[0] if exc.args else str(exc)
    return Problem(str(message), file_name, element_id, int(line) if line else None)


def parse_process(file_name: str, xml: bytes, key: str) -> ParsedProcess:
    """Parse one stored process again (after a restart); the XML was validated when it was deployed."""
    parser = SilverflowParser()
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    parser.add_bpmn_xml(root, filename=file_name)
    spec = parser.get_spec(key)
    embedded, called = _walk_specs(spec, parser)
    process = root.find(f"{{{BPMN_NS}}}process[@id='{key}']")
    name = process.get("name") if process is not None else None
    return ParsedProcess(key, name or key, spec, embedded, called)
