"""Every shipped model reads well in the modeler and deploys cleanly: full diagram interchange (DI) with no
overlapping shapes, documentation on each element, lanes named like our groups, a valid form for every user
task, and a deployment through the real connector registry with no problems and no warnings."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import jsonschema
import pytest

from api.app import shipped_registry
from api.cli import migrate_database
from api.services import ConnectorGateway
from engine.database import Database
from engine.runtime import Engine

ROOT = Path(__file__).parents[2]
MODELS = sorted((ROOT / "processes").glob("*.bpmn"))
FORMS = {p.stem: p for p in (ROOT / "forms").glob("*.json")}
GROUPS = {"sales", "backoffice", "provisioning", "billing", "servicedesk", "support2", "management", "hr", "staff"}

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
BPMNDI = "{http://www.omg.org/spec/BPMN/20100524/DI}"
DC = "{http://www.omg.org/spec/DD/20100524/DC}"
DI = "{http://www.omg.org/spec/DD/20100524/DI}"
SPIFF = "{http://spiffworkflow.org/bpmn/schema/1.0/core}"
FLOW_NODES = {
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent", "task",
    "userTask", "serviceTask", "scriptTask", "sendTask", "receiveTask", "manualTask", "callActivity", "subProcess",
    "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway",
}
TOLERANCE = 1.0


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float

    def overlaps(self, other: Box) -> bool:
        return (self.x < other.x + other.width - TOLERANCE and other.x < self.x + self.width - TOLERANCE
                and self.y < other.y + other.height - TOLERANCE and other.y < self.y + self.height - TOLERANCE)

    def contains(self, other: Box) -> bool:
        return (other.x >= self.x - TOLERANCE and other.y >= self.y - TOLERANCE
                and other.x + other.width <= self.x + self.width + TOLERANCE
                and other.y + other.height <= self.y + self.height + TOLERANCE)

    def on_border(self, other: Box) -> bool:
        """Whether ``other`` (a boundary event) sits on this box's border, as the modeler attaches it."""
        cx, cy = other.x + other.width / 2, other.y + other.height / 2
        inside_x = self.x - TOLERANCE <= cx <= self.x + self.width + TOLERANCE
        inside_y = self.y - TOLERANCE <= cy <= self.y + self.height + TOLERANCE
        near_x = min(abs(cx - self.x), abs(cx - self.x - self.width)) <= TOLERANCE + 1
        near_y = min(abs(cy - self.y), abs(cy - self.y - self.height)) <= TOLERANCE + 1
        return (inside_x and near_y) or (inside_y and near_x)


@dataclass
class Model:
    path: Path
    root: ElementTree.Element
    nodes: dict[str, tuple[ElementTree.Element, str]]  # id -> (element, id of the process/sub-process holding it)
    flows: list[ElementTree.Element]
    shapes: dict[str, Box]
    edges: dict[str, int]  # sequence flow id -> number of waypoints
    lanes: dict[str, tuple[str, list[str]]]  # lane id -> (name, flow node refs)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _collect(container: ElementTree.Element, owner: str, model: Model) -> None:
    for child in container:
        kind = _local(child.tag)
        if kind in FLOW_NODES:
            model.nodes[child.attrib["id"]] = (child, owner)
            if kind == "subProcess":
                _collect(child, child.attrib["id"], model)
        elif kind == "sequenceFlow":
            model.flows.append(child)


def load(path: Path) -> Model:
    root = ElementTree.parse(path).getroot()
    model = Model(path, root, {}, [], {}, {}, {})
    for process in root.iter(f"{BPMN}process"):
        _collect(process, process.attrib["id"], model)
        for lane in process.iter(f"{BPMN}lane"):
            refs = [ref.text or "" for ref in lane.findall(f"{BPMN}flowNodeRef")]
            model.lanes[lane.attrib["id"]] = (lane.attrib.get("name", ""), refs)
    for shape in root.iter(f"{BPMNDI}BPMNShape"):
        bounds = shape.find(f"{DC}Bounds")
        assert bounds is not None, f"{path.name}: shape {shape.attrib['id']} has no bounds"
        model.shapes[shape.attrib["bpmnElement"]] = Box(*(float(bounds.attrib[k]) for k in ("x", "y", "width",
                                                                                                 "height")))
    for edge in root.iter(f"{BPMNDI}BPMNEdge"):
        model.edges[edge.attrib["bpmnElement"]] = len(edge.findall(f"{DI}waypoint"))
    return model


@pytest.fixture(params=MODELS, ids=lambda p: p.stem)
def model(request: pytest.FixtureRequest) -> Model:
    return load(request.param)


def test_one_executable_process_per_file_named_like_the_file(model: Model) -> None:
    processes = list(model.root.iter(f"{BPMN}process"))
    assert [p.attrib["id"] for p in processes] == [model.path.stem]
    assert processes[0].attrib.get("isExecutable") == "true" and processes[0].attrib.get("name")


def test_every_element_has_a_shape_and_every_flow_an_edge(model: Model) -> None:
    missing = [node_id for node_id in model.nodes if node_id not in model.shapes]
    missing += [lane_id for lane_id in model.lanes if lane_id not in model.shapes]
    missing += [p.attrib["id"] for p in model.root.iter(f"{BPMN}participant") if p.attrib["id"] not in model.shapes]
    assert not missing, f"{model.path.name}: no BPMNShape for {missing}"
    edgeless = [f.attrib["id"] for f in model.flows if model.edges.get(f.attrib["id"], 0) < 2]
    assert not edgeless, f"{model.path.name}: no BPMNEdge with waypoints for {edgeless}"


def test_no_two_shapes_overlap(model: Model) -> None:
    placed = [(node_id, owner) for node_id, (element, owner) in model.nodes.items()
              if _local(element.tag) != "boundaryEvent"]
    clashes = [(a, b) for i, (a, owner_a) in enumerate(placed) for b, owner_b in placed[i + 1:]
               if owner_a == owner_b and model.shapes[a].overlaps(model.shapes[b])]
    assert not clashes, f"{model.path.name}: overlapping shapes {clashes}"


def test_boundary_events_sit_on_their_host(model: Model) -> None:
    for node_id, (element, _owner) in model.nodes.items():
        if _local(element.tag) == "boundaryEvent":
            host = element.attrib["attachedToRef"]
            assert model.shapes[host].on_border(model.shapes[node_id]), f"{model.path.name}: {node_id} off {host}"


def test_lanes_are_groups_and_hold_their_shapes(model: Model) -> None:
    participants = [model.shapes[p.attrib["id"]] for p in model.root.iter(f"{BPMN}participant")]
    assert len(participants) == 1, f"{model.path.name}: one pool expected"
    assert model.lanes, f"{model.path.name}: no lanes"
    laned = {ref for _name, refs in model.lanes.values() for ref in refs}
    top_level = {node_id for node_id, (element, owner) in model.nodes.items()
                 if owner == model.path.stem and _local(element.tag) != "boundaryEvent"}
    assert top_level <= laned, f"{model.path.name}: not in any lane: {sorted(top_level - laned)}"
    for lane_id, (name, refs) in model.lanes.items():
        assert name in GROUPS, f"{model.path.name}: lane {lane_id} is named {name!r}, not a group"
        lane = model.shapes[lane_id]
        assert participants[0].contains(lane), f"{model.path.name}: lane {lane_id} sticks out of the pool"
        outside = [ref for ref in refs if not lane.contains(model.shapes[ref])]
        assert not outside, f"{model.path.name}: shapes outside lane {lane_id}: {outside}"


def test_every_element_is_documented(model: Model) -> None:
    undocumented = [node_id for node_id, (element, _owner) in model.nodes.items()
                    if not (element.findtext(f"{BPMN}documentation") or "").strip()]
    assert not undocumented, f"{model.path.name}: no documentation on {undocumented}"
    merges = {node_id for node_id, (element, _owner) in model.nodes.items()
              if _local(element.tag).endswith("Gateway") and len(element.findall(f"{BPMN}outgoing")) <= 1}
    labels = [node_id for node_id, (element, _owner) in model.nodes.items()
              if node_id not in merges and _local(element.tag) not in {"boundaryEvent", "parallelGateway"}
              and not element.attrib.get("name")]
    assert not labels, f"{model.path.name}: no German label on {labels}"


def test_every_user_task_has_a_valid_form(model: Model) -> None:
    for node_id, (element, _owner) in model.nodes.items():
        if _local(element.tag) != "userTask":
            continue
        keys = [p.attrib["value"] for p in element.iter(f"{SPIFF}property") if p.attrib.get("name") == "formKey"]
        assert keys, f"{model.path.name}: user task {node_id} has no formKey"
        assert keys[0] in FORMS, f"{model.path.name}: form {keys[0]} of {node_id} is not in forms/"
        schema = json.loads(FORMS[keys[0]].read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema.get("type") == "object" and schema.get("title"), f"forms/{keys[0]}.json needs type and title"


def test_every_form_is_used_and_titles_its_fields() -> None:
    used = {p.attrib["value"] for path in MODELS for p in ElementTree.parse(path).getroot().iter(f"{SPIFF}property")
            if p.attrib.get("name") == "formKey"}
    assert set(FORMS) <= used, f"forms no shipped model uses: {sorted(set(FORMS) - used)}"
    for key, path in FORMS.items():
        schema = json.loads(path.read_text(encoding="utf-8"))
        untitled = [name for name, field in schema.get("properties", {}).items() if not field.get("title")]
        assert not untitled, f"forms/{key}.json: fields without a title (the form label): {untitled}"


def test_all_shipped_models_deploy_without_problems_or_warnings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'deploy.db'}"
    migrate_database(url)
    database = Database(url)
    engine = Engine(database, ConnectorGateway(shipped_registry(database)))
    files = [(p.name, p.read_bytes()) for p in MODELS]
    forms = [(p.name, p.read_bytes()) for p in sorted(FORMS.values())]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = engine.deploy(files, forms, deployed_by="test")
    assert sorted(info.key for info in result.created) == sorted(p.stem for p in MODELS)
    assert not [str(w.message) for w in caught]
    database.dispose()
