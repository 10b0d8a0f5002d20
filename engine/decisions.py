"""DMN decision tables for business rule tasks: read and check ``.dmn`` files, give the BPMN parser their tables.

A ``.dmn`` file deploys beside ``.bpmn`` files; each decision in it is stored under its id (the key) with a
version and the file's checksum (``engine.repository``). A ``businessRuleTask`` names its decision with
SpiffWorkflow's ``spiffworkflow:calledDecisionId`` extension or Camunda's ``camunda:decisionRef`` attribute.
A process version is parsed with the latest version of each decision it uses when it is deployed, and keeps
that binding (``process_definition.decision_versions``): running instances never see a later table.

Input expressions, input entries and output entries are Python expressions evaluated by the sandbox
(``engine.sandbox``), like every script; they are checked statically at deploy. Hit policies: UNIQUE (at most
one rule may match: two matching rules fail the task), FIRST and COLLECT without aggregation. Results merge into
the task data as SpiffWorkflow does (each output by its name; None, or [] under COLLECT, when no rule
matches); with Camunda's ``camunda:resultVariable`` the
result goes into that variable, shaped by ``camunda:mapDecisionResult`` (resultList, singleResult,
singleEntry, collectEntries) as Camunda does.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.dmn.engine.DMNEngine import DMNEngine
from SpiffWorkflow.dmn.parser.BpmnDmnParser import SCHEMAS
from SpiffWorkflow.dmn.parser.DMNParser import DMNParser
from SpiffWorkflow.spiff.parser.task_spec import BusinessRuleTaskParser, SpiffTaskParser

from .errors import Problem
from .foreign import as_utf8, readable
from .sandbox import ScriptRejected, ScriptSyntaxError, check

DMN_NAMESPACES = frozenset(SCHEMAS)
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
HIT_POLICIES = ("UNIQUE", "FIRST", "COLLECT")
RESULT_MAPPINGS = ("resultList", "singleResult", "singleEntry", "collectEntries")
_QUESTION_MARK = re.compile(r'(\?)(?=(?:[^\'"]|[\'"][^\'"]*[\'"])*$)')  # SpiffWorkflow's, outside quotes


def is_decision_file(file_name: str) -> bool:
    return file_name.lower().endswith(".dmn")


@dataclass(frozen=True)
class ParsedDecision:
    """One decision of a ``.dmn`` file; ``xml`` is the whole file as UTF-8 (what is stored)."""

    key: str
    name: str
    file_name: str
    xml: bytes
    checksum: str


def _local(node: Any) -> str:
    return str(node.tag).split("}", 1)[-1] if isinstance(node.tag, str) else ""


def _parse_xml(xml: bytes) -> Any:
    return etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))


def _decisions_of(root: Any) -> list[Any]:
    return [node for node in root if _local(node) == "decision"]


def _single_decision(root: Any, key: str) -> Any:
    """A copy of the document holding only decision ``key``, without annotation columns (comments that
    SpiffWorkflow's reader does not know): SpiffWorkflow reads one decision per document."""
    tree = copy.deepcopy(root)
    for node in list(tree):
        if _local(node) in ("decision", "inputData", "knowledgeSource", "businessKnowledgeModel") \
                and node.get("id") != key:
            tree.remove(node)
    for node in list(tree.iter()):
        if _local(node) in ("annotation", "annotationEntry") and node.getparent() is not None:
            node.getparent().remove(node)
    return tree


def _dmn_parser(parser: Any, file_name: str, root: Any) -> DMNParser:
    namespaces = dict(getattr(parser, "namespaces", None) or {})
    namespaces["dmn"] = etree.QName(root).namespace
    return DMNParser(parser, root, namespaces, filename=file_name)


def add_decision(parser: Any, key: str, file_name: str, xml: bytes) -> None:
    """Give a BPMN parser decision ``key`` of a stored (already checked) file."""
    parser.dmn_parsers[key] = _dmn_parser(parser, file_name, _single_decision(_parse_xml(xml), key))


def parse_decision_files(files: list[tuple[str, bytes]]) -> tuple[list[ParsedDecision], list[Problem]]:
    """Read and check ``.dmn`` files: well-formed DMN, one decision table per decision, supported hit policies,
    expressions the sandbox accepts. Every problem names the file, the decision or rule and the line."""
    from .parsing import checksum  # parsing imports this module

    decisions: list[ParsedDecision] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for file_name, raw in files:
        try:
            root = _parse_xml(raw)
        except etree.XMLSyntaxError as exc:
            problems.append(Problem(f"not well-formed XML: {readable(exc.msg)}", file_name, None, exc.lineno))
            continue
        try:
            xml = as_utf8(raw, root.getroottree().docinfo.encoding)
        except ValueError as exc:
            problems.append(Problem(str(exc), file_name, None, 1))
            continue
        if _local(root) != "definitions" or etree.QName(root).namespace not in DMN_NAMESPACES:
            problems.append(Problem("not a DMN file: the root element must be the definitions of DMN 1.1, 1.2 or "
                                    "1.3", file_name, None, root.sourceline))
            continue
        found = _decisions_of(root)
        if not found:
            problems.append(Problem("the file contains no decision", file_name, None, root.sourceline))
        file_problems: list[Problem] = []
        for decision in found:
            key = decision.get("id")
            if not key:
                file_problems.append(Problem("decision: it has no id", file_name, None, decision.sourceline))
                continue
            if key in seen:
                file_problems.append(Problem(f"decision '{key}' is also in {seen[key]}: decision ids must be unique",
                                             file_name, key, decision.sourceline))
                continue
            seen[key] = file_name
            file_problems.extend(_decision_problems(file_name, root, decision))
        problems.extend(file_problems)
        if not file_problems:
            digest = checksum(xml)
            decisions.extend(ParsedDecision(d.get("id"), d.get("name") or d.get("id"), file_name, xml, digest)
                             for d in found)
    return ([] if problems else decisions), problems


def _decision_problems(file_name: str, root: Any, decision: Any) -> list[Problem]:
    key = decision.get("id")
    where = f"decision '{key}'"
    tables = [node for node in decision if _local(node) == "decisionTable"]
    if len(tables) != 1:
        what = "a literal expression or nothing" if not tables else f"{len(tables)} decision tables"
        return [Problem(f"{where} holds {what}; only decisions with one decision table are supported", file_name,
                        key, decision.sourceline)]
    problems = []
    for requirement in decision.iter():
        if _local(requirement) == "requiredDecision":
            problems.append(Problem(f"{where} requires decision '{requirement.get('href', '').lstrip('#')}': "
                                    "decision requirement graphs are not supported; let a business rule task "
                                    "before it decide that and pass the result as input", file_name, key,
                                    requirement.sourceline))
    table = tables[0]
    policy = (table.get("hitPolicy") or "UNIQUE").upper()
    if policy not in HIT_POLICIES:
        problems.append(Problem(f"{where}: hit policy {policy} is not supported (supported: "
                                f"{', '.join(HIT_POLICIES)})", file_name, key, table.sourceline))
    if table.get("aggregation"):
        problems.append(Problem(f"{where}: the COLLECT aggregation {table.get('aggregation')} is not supported; "
                                "collect the values and compute in a script", file_name, key, table.sourceline))
    inputs = [node for node in table if _local(node) == "input"]
    outputs = [node for node in table if _local(node) == "output"]
    for number, node in enumerate(inputs, 1):
        text = _text_of(node, "inputExpression")
        label = node.get("label") or node.get("id") or f"input {number}"
        if not text:
            problems.append(Problem(f"{where}: input '{label}' has no expression", file_name, key, node.sourceline))
        else:
            problems.extend(_checked(text, "eval", f"{where}: input expression of '{label}'", file_name, key,
                                     node.sourceline))
    for number, node in enumerate(outputs, 1):
        if not (node.get("name") or node.get("label")):
            problems.append(Problem(f"{where}: output {number} has no name; the name is the variable it sets",
                                    file_name, key, node.sourceline))
    for row, rule in enumerate((node for node in table if _local(node) == "rule"), 1):
        rule_id = rule.get("id") or key
        entries = [node for node in rule if _local(node) == "inputEntry"]
        results = [node for node in rule if _local(node) == "outputEntry"]
        if len(entries) != len(inputs) or len(results) != len(outputs):
            problems.append(Problem(f"{where}, rule {row}: it has {len(entries)} input and {len(results)} output "
                                    f"entries, the table {len(inputs)} inputs and {len(outputs)} outputs",
                                    file_name, rule_id, rule.sourceline))
            continue
        for entry in entries:
            problems.extend(_input_entry_problems(entry, f"{where}, rule {row}", file_name, rule_id))
        for entry in results:
            text = _text_of(entry)
            if text:
                problems.extend(_checked(text, "eval", f"{where}, rule {row}: output entry '{text}'", file_name,
                                         rule_id, entry.sourceline))
    if not problems:
        try:  # what SpiffWorkflow's reader says about anything left
            _dmn_parser(None, file_name, _single_decision(root, key)).parse()
        except ValidationException as exc:
            problems.append(Problem(f"{where}: {readable(str(exc.args[0] if exc.args else exc))}", file_name, key,
                                    decision.sourceline))
        except Exception as exc:  # noqa: BLE001 - a modeller's file must never crash the deploy
            problems.append(Problem(f"{where} cannot be read: {readable(str(exc))}", file_name, key,
                                    decision.sourceline))
    return problems


def _text_of(node: Any, child: str | None = None) -> str | None:
    holder = node
    if child is not None:
        holder = next((n for n in node if _local(n) == child), None)
        if holder is None:
            return None
    text = next((n.text for n in holder if _local(n) == "text"), None)
    return text.strip() if text and text.strip() else None


def _input_entry_problems(entry: Any, where: str, file_name: str, rule_id: str) -> list[Problem]:
    """An input entry is an expression (compared with ``==``), a comparison missing its left side
    (``>= 3``, ``in ("a", "b")``) or an expression with ``?`` standing for the input — as SpiffWorkflow reads it."""
    text = _text_of(entry)
    if text is None or text == "-":
        return []
    what = f"{where}: input entry '{text}'"
    if _QUESTION_MARK.search(text):
        return _checked(_QUESTION_MARK.sub("dmninputexpr", text), "eval", what, file_name, rule_id,
                        entry.sourceline)
    try:
        check(text, "eval")
        return []
    except ScriptSyntaxError:
        return _checked(f"v {text}", "eval", what, file_name, rule_id, entry.sourceline,
                        "it is neither a value nor a comparison like '>= 3'")
    except ScriptRejected as exc:
        return [Problem(f"{what}: {exc}", file_name, rule_id, entry.sourceline)]


def _checked(source: str, mode: Any, what: str, file_name: str, element_id: str, line: int | None,
             syntax_message: str | None = None) -> list[Problem]:
    try:
        check(source, mode)
    except ScriptSyntaxError as exc:
        return [Problem(f"{what}: {syntax_message or exc}", file_name, element_id, line)]
    except ScriptRejected as exc:
        return [Problem(f"{what}: {exc}", file_name, element_id, line)]
    return []


# -- running -----------------------------------------------------------------------------------------------
class DecisionEngine(DMNEngine):
    """SpiffWorkflow's table evaluation with the hit policies as DMN defines them (UNIQUE: two matching rules
    are an error; FIRST: the first match, later rules are not evaluated) and Camunda's result variable."""

    def __init__(self, decision_table: Any, key: str, result_variable: str | None = None,
                 mapping: str = "resultList") -> None:
        super().__init__(decision_table)
        self.key = key
        self.result_variable = result_variable
        self.mapping = mapping

    def evaluate(self, input_expr: str, match_expr: str | None, task: Any) -> Any:
        """SpiffWorkflow's, but a comparison is joined to the input with a space (``x in ("a", "b")``; Spiff
        wrote ``xin (…)``) and the input in parentheses, so ``- 1`` or ``not in`` entries read as written."""
        if match_expr is None:
            return True
        script_engine = task.workflow.script_engine
        match_expr = _QUESTION_MARK.sub("dmninputexpr", match_expr)
        if "dmninputexpr" in match_expr:
            value = script_engine.evaluate(task, input_expr)
            return script_engine.evaluate(task, match_expr, external_context={"dmninputexpr": value})
        script_engine.validate(input_expr)
        if self.needs_eq(script_engine, match_expr):
            return script_engine.evaluate(task, f"({input_expr}) == ({match_expr})")
        return script_engine.evaluate(task, f"({input_expr}) {match_expr}")

    def decide(self, task: Any) -> list[Any]:
        policy = self.decision_table.hit_policy
        if policy == "COLLECT":
            return list(super().decide(task))
        matched = []
        for rule in self.decision_table.rules:
            if self._DMNEngine__check_rule(rule, task):
                matched.append(rule)
                if policy == "FIRST":
                    break
                if len(matched) > 1:
                    raise WorkflowTaskException(
                        f"decision '{self.key}' has hit policy UNIQUE but rules {matched[0].row_number} and "
                        f"{rule.row_number} both match; make the rules exclusive or use hit policy FIRST", task=task)
        return matched

    def result(self, task: Any) -> dict[str, Any]:
        if not self.result_variable:
            # No matching rule still sets every output: None, or an empty list under COLLECT (Spiff set none,
            # and a gateway after the task failed on an undefined name).
            empty: list[Any] | None = [] if self.decision_table.hit_policy == "COLLECT" else None
            unset = {output.name or output.label: copy.copy(empty) for output in self.decision_table.outputs
                     if "." not in (output.name or output.label or ".")}
            return {**unset, **super().result(task)}
        rows = [dict(rule.output_as_dict(task)) for rule in self.decide(task)]
        value: Any = rows
        if self.mapping in ("singleResult", "singleEntry"):
            if len(rows) > 1:
                raise WorkflowTaskException(f"decision '{self.key}' matched {len(rows)} rules, but "
                                            f"mapDecisionResult {self.mapping} takes one", task=task)
            value = rows[0] if rows else None
        if self.mapping in ("singleEntry", "collectEntries"):
            if rows and len(rows[0]) != 1:
                raise WorkflowTaskException(f"decision '{self.key}' has {len(rows[0])} outputs, but "
                                            f"mapDecisionResult {self.mapping} takes one", task=task)
            entries = [next(iter(row.values())) for row in rows]
            value = entries if self.mapping == "collectEntries" else (entries[0] if entries else None)
        return {self.result_variable: value}


def decision_ref(node: Any) -> str | None:
    """The decision a business rule task calls: SpiffWorkflow's extension, else Camunda's attribute."""
    ref = SpiffTaskParser._parse_extensions(node).get("calledDecisionId") or node.get(f"{{{CAMUNDA_NS}}}decisionRef")
    return str(ref).strip() if ref and str(ref).strip() else None


class DecisionTaskParser(BusinessRuleTaskParser):
    """SpiffWorkflow's business rule task parser, also reading Camunda Modeler's attributes."""

    @staticmethod
    def get_decision_ref(node: Any) -> str | None:
        return decision_ref(node)

    def create_task(self) -> Any:
        spec = super().create_task()
        engine = spec.dmnEngine
        variable = self.node.get(f"{{{CAMUNDA_NS}}}resultVariable")
        mapping = self.node.get(f"{{{CAMUNDA_NS}}}mapDecisionResult") or "resultList"
        if mapping not in RESULT_MAPPINGS:
            raise ValidationException(f"mapDecisionResult '{mapping}' is not one of {', '.join(RESULT_MAPPINGS)}",
                                      node=self.node, file_name=self.filename)
        if variable and variable.strip():
            engine.result_variable, engine.mapping = variable.strip(), mapping
        return spec


def decision_engine(parser: Any, ref: str | None, node: Any) -> DecisionEngine:
    """The table of decision ``ref`` for a business rule task (the parser's ``get_engine``)."""
    if not ref:
        raise ValidationException("businessRuleTask: it names no decision (spiffworkflow:calledDecisionId or "
                                  "camunda:decisionRef)", node=node)
    dmn_parser = parser.dmn_parsers.get(ref)
    if dmn_parser is None:
        raise ValidationException(f"businessRuleTask: decision '{ref}' is not deployed; deploy its .dmn file "
                                  "with the process or before it", node=node)
    dmn_parser.parse()
    return DecisionEngine(dmn_parser.decision.decisionTables[0], ref)
