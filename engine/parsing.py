"""BPMN parsing and validation: XML in, parsed specs or a list of problems out.

Uses Spiff's spiff-flavoured parser, so files made in bpmn-js with the spiff extensions (service task
operators, properties, pre/post scripts) work, and plain BPMN too. Every problem names the element and the
line, and nothing that a modeller can draw crashes the deploy: anything unexpected becomes a problem.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import CallActivity, SubWorkflowTask
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser, SpiffProcessParser
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser

from .decisions import DecisionEngine, DecisionTaskParser, add_decision, decision_engine
from .errors import Problem
from .foreign import as_utf8, execution_copy, readable, validation_copy
from .initiator import initiator_problems
from .sandbox import ScriptRejected, check
from .specs import ExternalServiceTask
from .timers import timer_definitions, timer_problem, use_calendar_timers

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
FLOW_NODE_TAGS = {
    "task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask",
    "businessRuleTask", "subProcess", "adHocSubProcess", "transaction", "callActivity",
    "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway",
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
}
UNSUPPORTED = {
    "complexGateway": "complex gateways are not supported",
}
UNSUPPORTED_EVENT_DEFINITIONS = {
    "compensateEventDefinition": "compensation events are not supported",
}
GATEWAY_TAGS = {"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway"}


def _implicit_split(parser_class: type[Any]) -> type[Any]:
    """An activity or event with several outgoing flows passes a token to each (BPMN's implicit parallel
    split); Spiff runs it that way, but its parser refuses it for anything but gateways and start events."""
    return type(f"Split{parser_class.__name__}", (parser_class,), {"handles_multiple_outgoing": lambda self: True})


class ShallowProcessParser(SpiffProcessParser):
    """Parses the elements of a process from the last to the first before Spiff's own walk from the start.

    Spiff parses an element by parsing everything after it first, recursively: a chain of ~500 elements
    exhausted Python's recursion limit. Parsed last-first, each element finds its successors already parsed.
    """

    def add_tasks(self) -> None:
        for node in self._last_first():
            self.parse_node(node)
        super().add_tasks()

    def _last_first(self) -> list[Any]:
        nodes = {node.get("id"): node for node in self.node if isinstance(node.tag, str)
                 and node.tag.split("}", 1)[-1] in FLOW_NODE_TAGS}
        successors: dict[str, list[str]] = {}
        for flow in self.xpath("./bpmn:sequenceFlow"):
            successors.setdefault(flow.get("sourceRef"), []).append(flow.get("targetRef"))
        roots = [i for i, n in nodes.items() if n.tag.split("}", 1)[-1] in ("startEvent", "boundaryEvent")]
        order: list[Any] = []
        seen: set[str] = set()
        for root in roots:  # an iterative depth-first walk; each node is listed after all it leads to
            stack = [(root, iter(successors.get(root, [])))]
            seen.add(root)
            while stack:
                current, following = stack[-1]
                target = next(following, None)
                if target is None:
                    stack.pop()
                    if nodes[current].tag.split("}", 1)[-1] not in ("startEvent", "boundaryEvent"):
                        order.append(nodes[current])
                elif target in nodes and target not in seen:
                    seen.add(target)
                    stack.append((target, iter(successors.get(target, []))))
        return order


class SilverflowParser(SpiffBpmnParser):
    """Spiff's parser with our service task, which waits for the engine to call the connector, implicit
    parallel splits on every task and event, no recursion along long chains, and business rule tasks that name
    their decision the Spiff or the Camunda way (``engine.decisions``)."""

    PROCESS_PARSER_CLASS = ShallowProcessParser

    OVERRIDE_PARSER_CLASSES = {
        tag: (_implicit_split(parser_class), spec_class)
        for tag, (parser_class, spec_class) in {
            **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
            full_tag("serviceTask"): (ServiceTaskParser, ExternalServiceTask),
            full_tag("businessRuleTask"): (DecisionTaskParser,
                                           SpiffBpmnParser.OVERRIDE_PARSER_CLASSES[full_tag("businessRuleTask")][1]),
        }.items()
    }

    def get_engine(self, decision_ref: str | None, node: Any) -> DecisionEngine:
        return decision_engine(self, decision_ref, node)


def checksum(xml: bytes) -> str:
    return hashlib.sha256(xml).hexdigest()


@dataclass
class ParsedProcess:
    """One process of a file, parsed once and cached per (key, version).

    A non-executable process (``isExecutable="false"``, what most tools exchange) is kept for the diagram:
    its spec is empty, so nothing starts it, and starting it by hand is refused.
    """

    key: str
    name: str
    spec: BpmnProcessSpec
    embedded: dict[str, BpmnProcessSpec]
    called_keys: set[str]
    executable: bool = True
    decision_keys: set[str] = field(default_factory=set)  # decisions its business rule tasks call


@dataclass
class ParsedFile:
    file_name: str
    xml: bytes  # always UTF-8, whatever the file was written in
    checksum: str
    processes: dict[str, ParsedProcess] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)


def _is_executable(process: Any) -> bool:
    return str(process.get("isExecutable", "true")).strip().lower() != "false"


def _kept_for_the_diagram(key: str, name: str | None) -> ParsedProcess:
    return ParsedProcess(key, name or key, BpmnProcessSpec(name=key), {}, set(), executable=False)


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
    for process in processes:
        if not _is_executable(process):
            continue  # kept for the diagram: what it holds is never run
        for node in process.iter():
            if not isinstance(node.tag, str) or not node.tag.startswith(f"{{{BPMN_NS}}}"):
                continue
            local = node.tag.split("}", 1)[1]
            reason = UNSUPPORTED.get(local) or UNSUPPORTED_EVENT_DEFINITIONS.get(local)
            if reason:
                owner = node if local in UNSUPPORTED else node.getparent()
                problems.append(Problem(f"{owner.tag.split('}', 1)[1]}: {reason}", file_name,
                                        owner.get("id"), node.sourceline))
        problems.extend(_flow_problems(file_name, process))
    problems.extend(_gateway_timer_problems(file_name, root))
    problems.extend(initiator_problems(file_name, root))
    return problems


def _flow_problems(file_name: str, process: Any) -> list[Problem]:
    """Flows must join elements of their own scope; a condition on a flow out of a task or event would be
    ignored (Spiff follows every such flow): refuse it rather than run both ways."""
    problems = []
    for container in process.iter(f"{{{BPMN_NS}}}process", f"{{{BPMN_NS}}}subProcess", f"{{{BPMN_NS}}}transaction"):
        kinds = {child.get("id"): child.tag.split("}", 1)[-1] for child in container if isinstance(child.tag, str)}
        for flow in container.findall(f"{{{BPMN_NS}}}sequenceFlow"):
            for end in ("sourceRef", "targetRef"):
                if flow.get(end) not in kinds:
                    problems.append(Problem(
                        f"sequenceFlow: its {end} '{flow.get(end)}' names no element of the same process or "
                        "sub-process", file_name, flow.get("id"), flow.sourceline))
            source = kinds.get(flow.get("sourceRef"))
            if source and source not in GATEWAY_TAGS and flow.find(f"{{{BPMN_NS}}}conditionExpression") is not None:
                problems.append(Problem(
                    f"sequenceFlow: a condition on a flow out of the {source} '{flow.get('sourceRef')}' is not "
                    "supported; put an exclusive or inclusive gateway after it", file_name, flow.get("id"),
                    flow.sourceline))
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
    judged = validation_copy(root)
    if VALIDATOR.validator.validate(judged):
        return []
    problems = []
    for error in VALIDATOR.validator.error_log:
        element_id = None
        if error.path:
            try:
                found = judged.getroottree().xpath(error.path,
                                                   namespaces={k: v for k, v in judged.nsmap.items() if k})
                element_id = _nearest_id(found[0]) if found else None
            except etree.XPathError:
                element_id = None
        problems.append(Problem(f"schema: {readable(error.message)}", file_name, element_id, error.line))
    return problems


def _nearest_id(node: Any) -> str | None:
    """The id of an element or of the nearest element around it that has one (a flow's targetRef has none)."""
    for candidate in (node, *node.iterancestors()):
        if candidate.get("id"):
            return str(candidate.get("id"))
    return None


def _decision_keys(specs: list[BpmnProcessSpec]) -> set[str]:
    return {task_spec.dmnEngine.key for spec in specs for task_spec in spec.task_specs.values()
            if isinstance(getattr(task_spec, "dmnEngine", None), DecisionEngine)}


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
            element_id = getattr(task_spec, "bpmn_id", None) or task_spec.name
            for timer in timer_definitions(task_spec):
                message = timer_problem(timer)
                if message:
                    problems.append(Problem(f"timer: {message}", file_name, element_id, _line_of(root, element_id)))
                elif timer.expression:
                    sources.append(("timer", timer.expression, "eval"))
            if isinstance(task_spec, ExternalServiceTask):
                for name, param in task_spec.operation_params.items():
                    sources.append((f"parameter {name}", param["value"], "eval"))
            for what, source, mode in sources:
                try:
                    check(source, mode)
                except ScriptRejected as exc:
                    problems.append(Problem(f"{what}: {exc}", file_name, element_id, _line_of(root, element_id)))
    return problems


def _read(file_name: str, xml: bytes) -> tuple[Any, bytes] | Problem:
    """The file's tree and its text as UTF-8 (files come in whatever encoding their tool declared)."""
    try:
        root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        return Problem(f"not well-formed XML: {readable(exc.msg)}", file_name, None, exc.lineno)
    try:
        return root, as_utf8(xml, root.getroottree().docinfo.encoding)
    except ValueError as exc:
        return Problem(str(exc), file_name, None, 1)


def parse_files(files: list[tuple[str, bytes]], decisions: Sequence[tuple[str, str, bytes]] = ()
                ) -> tuple[list[ParsedFile], list[Problem]]:
    """Parse and validate BPMN files together, so call activities may point across them; business rule tasks
    find their tables among ``decisions`` (key, file name, checked DMN XML)."""
    parser = SilverflowParser()
    for decision_key, decision_file, decision_xml in decisions:
        add_decision(parser, decision_key, decision_file, decision_xml)
    parsed: list[ParsedFile] = []
    problems: list[Problem] = []
    roots: dict[str, Any] = {}
    for file_name, raw in files:
        read = _read(file_name, raw)
        if isinstance(read, Problem):
            problems.append(read)
            continue
        root, xml = read
        file_problems = _structural_problems(file_name, root) or _schema_problems(file_name, root)
        if file_problems:
            problems.extend(file_problems)
            continue
        executed, warnings, file_problems = execution_copy(root, file_name)
        if file_problems:
            problems.extend(file_problems)
            continue
        try:
            parser.add_bpmn_xml(executed, filename=file_name)
        except ValidationException as exc:
            problems.append(_problem_from_validation(exc, file_name, root))
            continue
        except Exception as exc:  # noqa: BLE001 - a modeller's file must never crash the deploy
            problems.append(Problem(f"cannot read the file: {readable(str(exc))}", file_name, None, None))
            continue
        roots[file_name] = root
        parsed.append(ParsedFile(file_name, xml, checksum(xml), warnings=warnings))
    if problems:
        return [], problems

    for parsed_file in parsed:
        root = roots[parsed_file.file_name]
        for process in root.findall(f"{{{BPMN_NS}}}process"):
            key = process.get("id")
            if not _is_executable(process):
                parsed_file.processes[key] = _kept_for_the_diagram(key, process.get("name"))
                parsed_file.warnings.append(Problem(
                    "the process is not executable (isExecutable=\"false\"): kept for the diagram, it cannot be "
                    "started", parsed_file.file_name, key, process.sourceline))
                continue
            try:
                spec = parser.get_spec(key)
                embedded, called = _walk_specs(spec, parser)
            except ValidationException as exc:
                problems.append(_problem_from_validation(exc, parsed_file.file_name, root))
                continue
            except SpiffWorkflowException as exc:
                problems.append(Problem(readable(str(exc)), parsed_file.file_name, key, process.sourceline))
                continue
            except RecursionError:
                problems.append(Problem("the process is nested or chained too deeply to be read", parsed_file.file_name,
                                        key, process.sourceline))
                continue
            except Exception as exc:  # noqa: BLE001
                problems.append(Problem(f"cannot parse process: {readable(str(exc))}", parsed_file.file_name, key,
                                        process.sourceline))
                continue
            problems.extend(_script_problems(parsed_file.file_name, root, [spec, *embedded.values()]))
            parsed_file.processes[key] = ParsedProcess(key, process.get("name") or key, spec, embedded, called,
                                                       decision_keys=_decision_keys([spec, *embedded.values()]))
    return ([] if problems else parsed), problems


def _problem_from_validation(exc: ValidationException, file_name: str, root: Any) -> Problem:
    element_id = getattr(exc, "id", None) or None
    line = getattr(exc, "line_number", None) or _line_of(root, element_id)
    message = readable(str(exc.args[0] if exc.args else exc))
    tag = str(getattr(exc, "tag", "") or "").removeprefix("bpmn:")
    if tag and not message.startswith(tag):
        message = f"{tag}: {message}"
    return Problem(message, file_name, element_id, int(line) if line else None)


def parse_process(file_name: str, xml: bytes, key: str,
                  decisions: Sequence[tuple[str, str, bytes]] = ()) -> ParsedProcess:
    """Parse one stored process again (after a restart) with the decisions it was deployed with; the XML was
    validated when it was deployed."""
    parser = SilverflowParser()
    for decision_key, decision_file, decision_xml in decisions:
        add_decision(parser, decision_key, decision_file, decision_xml)
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    process = root.find(f"{{{BPMN_NS}}}process[@id='{key}']")
    name = process.get("name") if process is not None else None
    if process is not None and not _is_executable(process):
        return _kept_for_the_diagram(key, name)
    VALIDATOR.preprocess(root)
    parser.add_bpmn_xml(execution_copy(root, file_name)[0], filename=file_name)
    spec = parser.get_spec(key)
    embedded, called = _walk_specs(spec, parser)
    return ParsedProcess(key, name or key, spec, embedded, called,
                         decision_keys=_decision_keys([spec, *embedded.values()]))
