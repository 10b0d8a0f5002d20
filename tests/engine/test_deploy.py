"""Deploying BPMN: versions by checksum, problems with element and line, foreign tools' files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.errors import DeploymentError, NotFound, Problem
from engine.parsing import ParsedFile, parse_files
from engine.runtime import Engine
from tests.engine.conftest import BPMN_DIR, Calls, bpmn, make_engine

FOREIGN = sorted((Path(__file__).parent / "foreign_models").glob("*.bpmn"))
REFERENCE = (BPMN_DIR / "reference.bpmn").read_bytes()


def test_deploy_stores_version_checksum_and_who(engine: Engine) -> None:
    result = engine.deploy(bpmn("reference.bpmn"), deployed_by="designer1")
    [definition] = result.created
    assert (definition.key, definition.version, definition.deployed_by) == ("reference", 1, "designer1")
    assert len(definition.checksum) == 64
    assert definition.name == "Reference process"


def test_same_checksum_creates_no_new_version(engine: Engine) -> None:
    engine.deploy(bpmn("reference.bpmn"))
    again = engine.deploy(bpmn("reference.bpmn"))
    assert again.created == [] and again.deployment_id is None
    assert [d.version for d in again.definitions] == [1]


def test_changed_file_creates_new_version_and_running_instances_keep_theirs(engine: Engine) -> None:
    engine.deploy(bpmn("reference.bpmn"))
    first = engine.start("reference", {"amount": 1})
    changed = REFERENCE.replace(b"total = amount * 2", b"total = amount * 3")
    result = engine.deploy([("reference.bpmn", changed)])
    assert [d.version for d in result.created] == [2]
    second = engine.start("reference", {"amount": 1})
    pinned = engine.start("reference", {"amount": 1}, version=1)
    assert (first.process_version, second.process_version, pinned.process_version) == (1, 2, 1)
    assert second.variables["total"] == 3 and pinned.variables["total"] == 2
    task = engine.list_tasks(instance_id=first.id)[0]
    assert engine.complete_task(task.id, {"ok": True}).state == "completed"


def test_unknown_process_and_version(engine: Engine) -> None:
    engine.deploy(bpmn("reference.bpmn"))
    with pytest.raises(NotFound, match="'nope'"):
        engine.start("nope")
    with pytest.raises(NotFound, match="version 9"):
        engine.start("reference", version=9)


def _problems(files: list[tuple[str, bytes]]) -> list[str]:
    parsed, problems = parse_files(files)
    return [str(p) for p in problems]


def test_malformed_xml_names_the_line() -> None:
    _, problems = parse_files([("broken.bpmn", b"<?xml version='1.0'?>\n<bpmn:definitions\n <oops")])
    assert problems and problems[0].line == 3
    assert "not well-formed XML" in problems[0].message


def test_not_bpmn_at_all() -> None:
    _, problems = parse_files([("x.bpmn", b"<html><body/></html>")])
    assert "not a BPMN 2.0 file" in problems[0].message


def test_schema_violation_names_element_and_line() -> None:
    xml = REFERENCE.replace(b'<bpmn:endEvent id="end" name="Done">',
                            b'<bpmn:endEvent id="end" name="Done" bogus:attr="1" xmlns:bogus="urn:x">'
                            b'<bpmn:notAnElement/>')
    _, problems = parse_files([("ref.bpmn", xml)])
    assert problems, "an unknown BPMN element must be refused"
    assert any(p.line and "notAnElement" in p.message for p in problems)


def test_script_and_condition_problems_name_the_element() -> None:
    xml = REFERENCE.replace(b"total = amount * 2", b"import os").replace(b"total &gt; 100", b"total &gt;")
    _, problems = parse_files([("ref.bpmn", xml)])
    by_element = {p.element_id: p for p in problems}
    assert "compute" in by_element and "import" in by_element["compute"].message
    assert by_element["compute"].line is not None
    assert "decide" in by_element and "condition" in by_element["decide"].message


def test_call_activity_to_missing_process_is_a_problem(engine: Engine) -> None:
    xml = REFERENCE.replace(
        b'<bpmn:scriptTask id="compute" name="Compute total">',
        b'<bpmn:callActivity id="call_missing" calledElement="does-not-exist"><bpmn:incoming>f1</bpmn:incoming>'
        b'<bpmn:outgoing>f2</bpmn:outgoing></bpmn:callActivity><bpmn:scriptTask id="unused" name="u">',
    ).replace(b'<bpmn:sequenceFlow id="f2" sourceRef="compute"', b'<bpmn:sequenceFlow id="f2" sourceRef="call_missing"'
              ).replace(b'<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="compute" />',
                        b'<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="call_missing" />')
    with pytest.raises(DeploymentError) as raised:
        engine.deploy([("caller.bpmn", xml)])
    assert any("does-not-exist" in p.message for p in raised.value.problems)


def test_invalid_form_schema_is_refused(engine: Engine) -> None:
    with pytest.raises(DeploymentError) as raised:
        engine.deploy(bpmn("reference.bpmn"), [("approval.json", b'{"type": "nonsense"}')])
    assert raised.value.problems[0].file_name == "approval.json"
    with pytest.raises(NotFound):
        engine.start("reference")  # nothing of a refused deployment was stored


@pytest.mark.parametrize("path", FOREIGN, ids=lambda p: p.name)
def test_files_of_other_tools_deploy_or_are_refused_with_problems(path: Path) -> None:
    parsed, problems = parse_files([(path.name, path.read_bytes())])
    assert bool(parsed) != bool(problems), "either parsed or refused, never both, never neither"
    for problem in problems:
        assert problem.message and problem.file_name == path.name


def test_foreign_expectations() -> None:
    outcome = {p.name: parse_files([(p.name, p.read_bytes())]) for p in FOREIGN}
    for name in ("signavio_export.bpmn", "bpmnio_plain.bpmn"):  # deployed for the diagram, not startable
        [parsed] = outcome[name][0]
        assert not next(iter(parsed.processes.values())).executable
        assert "not executable" in " ".join(str(w) for w in parsed.warnings)
    assert any("complex gateways" in t for t in _problem_texts(outcome["trisotech_collaboration.bpmn"]))
    camunda = _problem_texts(outcome["camunda7_modeler.bpmn"])
    assert any("[Activity_pay]" in t and "operator" in t for t in camunda), camunda
    zeebe = _problem_texts(outcome["zeebe_camunda8.bpmn"])
    assert any("[Task_reserve]" in t for t in zeebe), zeebe


def _problem_texts(outcome: tuple[list[ParsedFile], list[Problem]]) -> list[str]:
    return [str(p) for p in outcome[1]]


def test_deploy_of_100_elements_is_fast(engine: Engine) -> None:
    from bench.engine import _generated_bpmn

    xml = _generated_bpmn(98)
    started = time.perf_counter()
    engine.deploy([("generated.bpmn", xml)])
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0  # the 200 ms target is measured by bench/engine.py; this only guards regressions
    instance = engine.start("generated")
    assert instance.state == "completed"


def test_starting_never_reparses_a_cached_definition(engine: Engine, calls: Calls,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.repository as repository

    engine.deploy(bpmn("reference.bpmn"))
    parses: list[str] = []
    original = repository.parse_process
    monkeypatch.setattr(repository, "parse_process", lambda *a, **k: parses.append(a[2]) or original(*a, **k))
    for n in range(5):
        engine.start("reference", {"amount": n})
    assert parses == []
    fresh = make_engine(engine.db.url, calls)  # a restarted process: parses once from the XML, then caches
    for n in range(5):
        fresh.start("reference", {"amount": n})
    assert parses == ["reference"]
    fresh.db.dispose()


def test_a_failed_deploy_leaves_no_cached_definition(engine: Engine) -> None:
    engine.deploy(bpmn("reference.bpmn"))
    changed = REFERENCE.replace(b"total = amount * 2", b"total = amount * 5")
    broken_timer = changed.replace(b'<bpmn:startEvent id="start"',
                                   b'<bpmn:startEvent id="late"><bpmn:timerEventDefinition><bpmn:timeDate>'
                                   b'"2027-01-01T10:00:00Z" if missing else "R"</bpmn:timeDate>'
                                   b'</bpmn:timerEventDefinition></bpmn:startEvent><bpmn:startEvent id="start"')
    with pytest.raises(DeploymentError) as raised:  # the start timer's expression fails while scheduling
        engine.deploy([("reference.bpmn", broken_timer)])
    assert raised.value.problems[0].element_id == "late"
    with pytest.raises(NotFound):
        engine.start("reference", {"amount": 1}, version=2)
    assert engine.start("reference", {"amount": 1}).variables["total"] == 2


def test_timer_literals_as_other_tools_write_them(engine: Engine) -> None:
    cycle = _timer_process(b'<bpmn:timeCycle>R6/P1D</bpmn:timeCycle>')
    engine.deploy([("cycle.bpmn", cycle)])
    assert engine.start("timers").state == "running"  # was: NameError 'R6' at every start
    for value in (b"PT1H", b'"PT1H"', b"2027-01-01T10:00:00Z", b"R/PT15S"):
        tag = b"timeCycle" if value.startswith(b"R") else b"timeDate" if value[:1] == b"2" else b"timeDuration"
        _, problems = parse_files([("t.bpmn", _timer_process(b"<bpmn:%s>%s</bpmn:%s>" % (tag, value, tag)))])
        assert problems == [], (value, problems)
    for value, words in ((b"<bpmn:timeDuration>P1X</bpmn:timeDuration>", "'P1X' is not an ISO 8601 duration"),
                         (b"<bpmn:timeCycle>R6/soon</bpmn:timeCycle>", "not an ISO 8601 duration"),
                         (b"<bpmn:timeDuration>${later}</bpmn:timeDuration>", "timer"),
                         (b"<bpmn:timeDuration></bpmn:timeDuration>", "no value")):
        _, problems = parse_files([("t.bpmn", _timer_process(value))])
        assert [(p.element_id, p.line) for p in problems] == [("wait", 4)], (value, problems)
        assert words in problems[0].message, problems


def _timer_process(definition: bytes) -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/'
            b'20100524/MODEL" id="d" targetNamespace="x">\n<bpmn:process id="timers" isExecutable="true">\n'
            b'<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition>' + definition +
            b'</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>\n'
            b'<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="wait"/>'
            b'<bpmn:endEvent id="e"/><bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="e"/>'
            b'</bpmn:process></bpmn:definitions>')


def test_a_chain_of_5000_elements_deploys_and_runs(engine: Engine) -> None:
    steps = "".join(f'<bpmn:scriptTask id="t{i}"><bpmn:script>x = {i}</bpmn:script></bpmn:scriptTask>'
                    f'<bpmn:sequenceFlow id="f{i}" sourceRef="{"s" if i == 0 else f"t{i - 1}"}" targetRef="t{i}"/>'
                    for i in range(5000))
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/'
           f'20100524/MODEL" id="d" targetNamespace="x"><bpmn:process id="chain" isExecutable="true">'
           f'<bpmn:startEvent id="s"/>{steps}<bpmn:endEvent id="e"/>'
           f'<bpmn:sequenceFlow id="fe" sourceRef="t4999" targetRef="e"/></bpmn:process></bpmn:definitions>')
    engine.deploy([("chain.bpmn", xml.encode())])
    instance = engine.start("chain")
    assert (instance.state, instance.variables) == ("completed", {"x": 4999})
