"""A small builder for the BPMN 2.0 files the element tests run: real XML with a simple left-to-right DI.

Tests describe a process in a few lines; the builder writes incoming/outgoing references, sequence flows
with conditions, nested sub-processes, boundary events, message/error/signal definitions and diagram
interchange, so every generated file is a complete document bpmn.io can open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

NS = ('xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
      'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" '
      'xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
      'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"')
SIZES = {"task": (100, 80), "event": (36, 36), "gateway": (50, 50), "sub": (200, 120)}


def _shape(kind: str) -> str:
    if kind.endswith("Event"):
        return "event"
    if kind.endswith("Gateway"):
        return "gateway"
    if kind == "subProcess":
        return "sub"
    return "task"


@dataclass
class Node:
    id: str
    kind: str
    name: str | None
    body: str
    attrs: str
    scope: Scope | None = None  # an embedded sub-process holds its own nodes


@dataclass
class Scope:
    nodes: list[Node] = field(default_factory=list)
    flows: list[tuple[str, str, str, str | None]] = field(default_factory=list)

    def node(self, node_id: str, kind: str, name: str | None = None, body: str = "", attrs: str = "") -> Scope:
        self.nodes.append(Node(node_id, kind, name, body, attrs))
        return self

    def sub(self, node_id: str, name: str | None = None, attrs: str = "", body: str = "") -> Scope:
        inner = Scope()
        self.nodes.append(Node(node_id, "subProcess", name, body, attrs, inner))
        return inner

    def flow(self, source: str, target: str, condition: str | None = None, flow_id: str | None = None) -> Scope:
        self.flows.append((flow_id or f"f_{source}_{target}", source, target, condition))
        return self

    def chain(self, *ids: str) -> Scope:
        for source, target in zip(ids, ids[1:], strict=False):
            self.flow(source, target)
        return self


class Bpmn(Scope):
    def __init__(self, process_id: str, name: str | None = None) -> None:
        super().__init__()
        self.process_id = process_id
        self.name = name or process_id
        self.definitions: list[str] = []

    def message(self, message_id: str, name: str) -> Bpmn:
        self.definitions.append(f'<bpmn:message id="{message_id}" name="{name}"/>')
        return self

    def error(self, error_id: str, code: str) -> Bpmn:
        self.definitions.append(f'<bpmn:error id="{error_id}" name="{code}" errorCode="{code}"/>')
        return self

    def signal(self, signal_id: str, name: str) -> Bpmn:
        self.definitions.append(f'<bpmn:signal id="{signal_id}" name="{name}"/>')
        return self

    def xml(self) -> bytes:
        shapes: list[str] = []
        edges: list[str] = []
        positions: dict[str, tuple[int, int, int, int]] = {}
        process = self._scope_xml(self, shapes, edges, positions, 100, 100)
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions {NS} id="defs_{self.process_id}" '
                f'targetNamespace="http://silverflow.example/tests">{"".join(self.definitions)}'
                f'<bpmn:process id="{self.process_id}" name="{escape(self.name)}" isExecutable="true">{process}'
                f'</bpmn:process><bpmndi:BPMNDiagram id="diagram"><bpmndi:BPMNPlane id="plane" '
                f'bpmnElement="{self.process_id}">{"".join(shapes)}{"".join(edges)}</bpmndi:BPMNPlane>'
                f'</bpmndi:BPMNDiagram></bpmn:definitions>')
        return body.encode()

    def _scope_xml(self, scope: Scope, shapes: list[str], edges: list[str],
                   positions: dict[str, tuple[int, int, int, int]], x0: int, y0: int) -> str:
        incoming: dict[str, list[str]] = {}
        outgoing: dict[str, list[str]] = {}
        for flow_id, source, target, _condition in scope.flows:
            outgoing.setdefault(source, []).append(flow_id)
            incoming.setdefault(target, []).append(flow_id)
        parts = []
        x = x0
        for node in scope.nodes:
            width, height = SIZES[_shape(node.kind)]
            attached = 'attachedToRef="' in node.attrs
            if attached:
                host = node.attrs.split('attachedToRef="', 1)[1].split('"', 1)[0]
                hx, hy, hw, hh = positions[host]
                nx, ny = hx + hw - 20 - 40 * sum(1 for k in positions if k.startswith(f"{host}::")), hy + hh - 18
                positions[f"{host}::{node.id}"] = (nx, ny, width, height)
            else:
                nx, ny = x, y0 + (0 if node.kind != "subProcess" else -40)
                x += width + 60
            positions[node.id] = (nx, ny, width, height)
            refs = "".join(f"<bpmn:incoming>{f}</bpmn:incoming>" for f in incoming.get(node.id, [])) + \
                "".join(f"<bpmn:outgoing>{f}</bpmn:outgoing>" for f in outgoing.get(node.id, []))
            inner = ""
            if node.scope is not None:
                inner = self._scope_xml(node.scope, shapes, edges, positions, nx + 30, ny + 40)
                width = max(width, (positions[node.scope.nodes[-1].id][0] + 80 - nx) if node.scope.nodes else width)
                positions[node.id] = (nx, ny, width, height)
                x = nx + width + 60
            name = f' name="{escape(node.name)}"' if node.name else ""
            extensions, rest = "", node.body
            if rest.startswith("<bpmn:extensionElements>"):  # the schema wants them before incoming/outgoing
                cut = rest.index("</bpmn:extensionElements>") + len("</bpmn:extensionElements>")
                extensions, rest = rest[:cut], rest[cut:]
            parts.append(f'<bpmn:{node.kind} id="{node.id}"{name} {node.attrs}>{extensions}{refs}{rest}{inner}'
                         f'</bpmn:{node.kind}>')
            expanded = ' isExpanded="true"' if node.kind == "subProcess" else ""
            shapes.append(f'<bpmndi:BPMNShape id="{node.id}_di" bpmnElement="{node.id}"{expanded}>'
                          f'<dc:Bounds x="{nx}" y="{ny}" width="{width}" height="{height}"/></bpmndi:BPMNShape>')
        for flow_id, source, target, condition in scope.flows:
            cond = f"<bpmn:conditionExpression>{escape(condition)}</bpmn:conditionExpression>" if condition else ""
            parts.append(f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}">{cond}'
                         f'</bpmn:sequenceFlow>')
            sx, sy, sw, sh = positions[source]
            tx, ty, _tw, th = positions[target]
            edges.append(f'<bpmndi:BPMNEdge id="{flow_id}_di" bpmnElement="{flow_id}">'
                         f'<di:waypoint x="{sx + sw}" y="{sy + sh // 2}"/><di:waypoint x="{tx}" y="{ty + th // 2}"/>'
                         f'</bpmndi:BPMNEdge>')
        return "".join(parts)


def timer(kind: str, expression: str) -> str:
    """A timer event definition; ``expression`` is Python, so ISO strings need quotes: '"PT1H"'."""
    return (f'<bpmn:timerEventDefinition><bpmn:{kind} xsi:type="bpmn:tFormalExpression">{escape(expression)}'
            f'</bpmn:{kind}></bpmn:timerEventDefinition>')


def message(ref: str) -> str:
    return f'<bpmn:messageEventDefinition messageRef="{ref}"/>'


def error(ref: str | None = None) -> str:
    return f'<bpmn:errorEventDefinition errorRef="{ref}"/>' if ref else "<bpmn:errorEventDefinition/>"


def script(code: str) -> str:
    return f"<bpmn:script>{escape(code)}</bpmn:script>"


def service(operator: str, result: str = "result", **params: str) -> str:
    values = "".join(f'<spiffworkflow:parameter id="{k}" type="any" value="{escape(v, {chr(34): "&quot;"})}"/>'
                     for k, v in params.items())
    return (f'<bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="{operator}" resultVariable="{result}">'
            f'<spiffworkflow:parameters>{values}</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator>'
            f'</bpmn:extensionElements>')


def properties(**values: str) -> str:
    items = "".join(f'<spiffworkflow:property name="{k}" value="{escape(v)}"/>' for k, v in values.items())
    return (f"<bpmn:extensionElements><spiffworkflow:properties>{items}</spiffworkflow:properties>"
            f"</bpmn:extensionElements>")


def multi_instance(collection: str, item: str, sequential: bool = False, output: str | None = None,
                   output_item: str | None = None) -> str:
    output_ref = f"<bpmn:loopDataOutputRef>{output}</bpmn:loopDataOutputRef>" if output else ""
    # the output item's id names the variable each instance sets, so it must differ from the input item
    output_item_xml = f'<bpmn:outputDataItem id="{output_item}" name="{output_item}"/>' \
        if output else ""
    return (f'<bpmn:multiInstanceLoopCharacteristics isSequential="{str(sequential).lower()}">'
            f"<bpmn:loopDataInputRef>{collection}</bpmn:loopDataInputRef>{output_ref}"
            f'<bpmn:inputDataItem id="{item}" name="{item}"/>{output_item_xml}'
            f"</bpmn:multiInstanceLoopCharacteristics>")
