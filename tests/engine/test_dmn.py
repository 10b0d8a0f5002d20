"""Business rule tasks with DMN decision tables (engine/decisions.py): deploy beside BPMN, versioned by checksum,
bound to the process version they were deployed with, evaluated in the sandbox, surviving a restart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.errors import DeploymentError, ProcessError
from engine.runtime import Engine
from tests.engine.conftest import Calls, make_engine
from tests.support.databases import SqliteFactory
from tests.support.live_app import live_app

DMN_DIR = Path(__file__).parent / "dmn"
FOREIGN = Path(__file__).parent / "foreign_models"


def _file(name: str) -> tuple[str, bytes]:
    return name, (DMN_DIR / name).read_bytes()


def _priority_table(rules: list[tuple[str, str, str]], hit_policy: str = "FIRST",
                    output: str = "priority") -> bytes:
    rows = "\n".join(
        f'<rule id="rule{n}"><inputEntry id="rule{n}i1"><text>{impact}</text></inputEntry>'
        f'<inputEntry id="rule{n}i2"><text>{urgency}</text></inputEntry>'
        f'<outputEntry id="rule{n}o"><text>{result}</text></outputEntry></rule>'
        for n, (impact, urgency, result) in enumerate(rules, 1))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="defs" name="p" namespace="x">
  <decision id="incident_priority" name="Störungspriorität">
    <decisionTable id="t" hitPolicy="{hit_policy}">
      <input id="i1" label="Auswirkung"><inputExpression id="e1"><text>impact</text></inputExpression></input>
      <input id="i2" label="Dringlichkeit"><inputExpression id="e2"><text>urgency</text></inputExpression></input>
      <output id="o1" label="Priorität" name="{output}"/>
{rows}
    </decisionTable>
  </decision>
</definitions>
""".encode()


def _decide(engine: Engine, impact: str, urgency: str, key: str = "triage") -> tuple[str, dict[str, object]]:
    instance = engine.start(key)
    [enter] = engine.list_tasks(instance_id=instance.id)
    after = engine.complete_task(enter.id, {"impact": impact, "urgency": urgency})
    return instance.id, after.variables


def test_first_hit_policy_decides_priority_from_impact_and_urgency(engine: Engine) -> None:
    engine.deploy([_file("triage.bpmn"), _file("incident_priority.dmn")])
    expected = {("high", "high"): "P1", ("high", "low"): "P2", ("low", "high"): "P2", ("low", "low"): "P3"}
    for (impact, urgency), priority in expected.items():
        instance_id, variables = _decide(engine, impact, urgency)
        assert variables["priority"] == priority
        assert engine.get_instance(instance_id).active_elements == ["work"]
    history = [h.element_id for h in engine.history(instance_id) if h.type == "element.completed"]
    assert "decide" in history


def test_unique_hit_policy_refuses_overlapping_rules_at_run_time(engine: Engine) -> None:
    table = _priority_table([('"high"', "-", '"P1"'), ("-", '"high"', '"P2"'), ("-", "-", '"P3"')], "UNIQUE")
    # The last rule overlaps every other: UNIQUE may only match one.
    engine.deploy([_file("triage.bpmn"), ("priority.dmn", table)])
    instance = engine.start("triage")
    [enter] = engine.list_tasks(instance_id=instance.id)
    with pytest.raises(ProcessError) as failed:
        engine.complete_task(enter.id, {"impact": "high", "urgency": "low"})
    assert "hit policy UNIQUE but rules 1 and 3 both match" in str(failed.value)
    assert engine.list_tasks(instance_id=instance.id)[0].element_id == "enter"  # nothing was saved

    exclusive = _priority_table([('"high"', "-", '"P1"'), ('"low"', "-", '"P3"')], "UNIQUE")
    engine.deploy([("priority.dmn", exclusive)])
    assert _decide(engine, "low", "high")[1]["priority"] == "P3"


def test_collect_hit_policy_lists_every_match_and_comparisons_work(engine: Engine) -> None:
    bpmn = (DMN_DIR / "triage.bpmn").read_bytes().replace(b"incident_priority", b"incident_groups") \
        .replace(b'id="triage"', b'id="routing"')
    engine.deploy([("routing.bpmn", bpmn), _file("routing_collect.dmn")])
    instance = engine.start("routing")
    [enter] = engine.list_tasks(instance_id=instance.id)
    after = engine.complete_task(enter.id, {"category": "modem", "affected": 12})
    assert after.variables["groups"] == ["support2", "management", "servicedesk"]
    instance = engine.start("routing")
    [enter] = engine.list_tasks(instance_id=instance.id)
    after = engine.complete_task(enter.id, {"category": "billing", "affected": 0})
    assert after.variables["groups"] == []


def test_bpmn_and_dmn_deploy_separately_and_the_same_file_makes_no_new_version(engine: Engine) -> None:
    first = engine.deploy([_file("incident_priority.dmn")])
    assert [(d.key, d.version, d.name) for d in first.created_decisions] == \
        [("incident_priority", 1, "Störungspriorität")]
    assert first.definitions == [] and first.deployment_id is not None
    second = engine.deploy([_file("triage.bpmn")])
    assert [(d.key, d.version) for d in second.created] == [("triage", 1)]
    assert _decide(engine, "high", "high")[1]["priority"] == "P1"
    again = engine.deploy([_file("incident_priority.dmn"), _file("triage.bpmn")])
    assert again.created == [] and again.created_decisions == [] and again.deployment_id is None
    assert [(d.key, d.version) for d in again.decisions] == [("incident_priority", 1)]


def test_a_new_decision_version_reaches_new_instances_only(db_url: str, calls: Calls) -> None:
    engine = make_engine(db_url, calls)
    try:
        engine.deploy([_file("triage.bpmn"), _file("incident_priority.dmn")])
        running = engine.start("triage")
        stricter = _priority_table([('"high"', "-", '"P1"'), ("-", "-", '"P4"')])
        result = engine.deploy([("incident_priority.dmn", stricter)])
        assert [(d.key, d.version) for d in result.created_decisions] == [("incident_priority", 2)]
        # the process is bound anew (same XML, next version); the running instance stays on version 1
        assert [(d.key, d.version) for d in result.created] == [("triage", 2)]
        assert result.created[0].checksum == engine.deploy([_file("triage.bpmn")]).definitions[0].checksum

        [enter] = engine.list_tasks(instance_id=running.id)
        assert engine.complete_task(enter.id, {"impact": "low", "urgency": "low"}).variables["priority"] == "P3"
        assert _decide(engine, "low", "low")[1]["priority"] == "P4"
        # a fresh engine (restart) parses version 1 with decision version 1 again
        restarted = make_engine(db_url, calls)
        try:
            old = restarted.start("triage", version=1)
            [enter] = restarted.list_tasks(instance_id=old.id)
            assert restarted.complete_task(enter.id, {"impact": "low", "urgency": "low"}).variables["priority"] \
                == "P3"
        finally:
            restarted.db.dispose()
    finally:
        engine.db.dispose()


def test_an_instance_continues_after_a_restart(db_url: str, calls: Calls) -> None:
    engine = make_engine(db_url, calls)
    try:
        engine.deploy([_file("triage.bpmn"), _file("incident_priority.dmn")])
        instance = engine.start("triage")
    finally:
        engine.db.dispose()
    restarted = make_engine(db_url, calls)
    try:
        [enter] = restarted.list_tasks(instance_id=instance.id)
        after = restarted.complete_task(enter.id, {"impact": "high", "urgency": "high"})
        assert after.variables["priority"] == "P1" and after.active_elements == ["work"]
        [work] = restarted.list_tasks(instance_id=instance.id)
        assert restarted.complete_task(work.id, {}).state == "completed"
    finally:
        restarted.db.dispose()


def test_the_full_spiff_serializer_round_trips_a_business_rule_task(engine: Engine) -> None:
    from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

    engine.deploy([_file("triage.bpmn"), _file("incident_priority.dmn")])
    with engine.db.read() as conn:
        loaded = engine.repository.get(conn, "triage")
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    workflow = BpmnWorkflow(loaded.parsed.spec, script_engine=engine.script_engine)
    restored = serializer.from_dict(serializer.to_dict(workflow))
    table = restored.spec.task_specs["decide"].dmnEngine.decision_table
    assert table.hit_policy == "FIRST" and len(table.rules) == 4


def test_a_missing_decision_is_refused_naming_the_task_and_line(engine: Engine) -> None:
    with pytest.raises(DeploymentError) as refused:
        engine.deploy([_file("triage.bpmn")])
    [problem] = refused.value.problems
    assert (problem.file_name, problem.element_id, problem.line) == ("triage.bpmn", "decide", 8)
    assert "decision 'incident_priority' is not deployed" in problem.message


@pytest.mark.parametrize(("content", "element", "line", "words"), [
    (b'<?xml version="1.0"?>\n<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/">\n<decision>',
     None, 3, "not well-formed XML"),
    (b'<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"/>', None, 1, "not a DMN file"),
    (_priority_table([('"high"', "-", '"P1"')], "PRIORITY"), "incident_priority", 4, "hit policy PRIORITY"),
    (_priority_table([('"high"', "-", '"P1"'), ("-", "-", "().__class__.__bases__")]), "rule2", 9,
     "rule 2: output entry"),
    (_priority_table([('"high"', "-", '"P1"'), ("[1..3]", "-", '"P2"')]), "rule2", 9,
     "neither a value nor a comparison"),
    (_priority_table([("__import__('os')", "-", '"P1"')]), "rule1", 8, "input entry"),
])
def test_a_malformed_decision_is_refused_naming_file_and_line(engine: Engine, content: bytes, element: str | None,
                                                               line: int, words: str) -> None:
    with pytest.raises(DeploymentError) as refused:
        engine.deploy([("bad.dmn", content), _file("triage.bpmn")])
    problems = refused.value.problems
    assert all(p.file_name == "bad.dmn" for p in problems), problems
    assert any(p.element_id == element and p.line == line and words in p.message for p in problems), problems
    assert not re.search(r"<Element|0x[0-9a-f]{6}|\{http", str(refused.value))
    with engine.db.read() as conn:
        assert engine.repository.list(conn) == []


def test_a_camunda_modeler_pair_with_decision_ref_and_result_variable(engine: Engine) -> None:
    engine.deploy([("camunda7_decision.bpmn", (FOREIGN / "camunda7_decision.bpmn").read_bytes()),
                   ("camunda7_decision.dmn", (FOREIGN / "camunda7_decision.dmn").read_bytes())])
    instance = engine.start("camunda7_decision")
    [enter] = engine.list_tasks(instance_id=instance.id)
    assert enter.element_id == "Activity_urgent"  # set by the script before: 3 lines down, impact high
    assert engine.get_instance(instance.id).variables["slaHours"] == 4


def test_deploy_over_rest_takes_dmn_files(sqlite_factory: SqliteFactory) -> None:
    with live_app(sqlite_factory.create()) as api:
        designer = api.client("designer")
        response = designer.post("/deployments", files=[("files", _file("triage.bpmn")),
                                                        ("files", _file("incident_priority.dmn"))])
        assert response.status_code == 201, response.text
        body = response.json()
        assert [(d["key"], d["version"], d["created"]) for d in body["decisions"]] == \
            [("incident_priority", 1, True)]
        bad = designer.post("/deployments", files=[("files", ("bad.dmn", _priority_table([], "ANY")))])
        assert bad.status_code == 422, bad.text
        [error] = bad.json()["errors"]
        assert (error["file"], error["elementId"], error["line"]) == ("bad.dmn", "incident_priority", 4)
        other = designer.post("/deployments", files=[("files", ("table.xlsx", b"x"))])
        assert other.status_code == 422 and ".dmn" in other.json()["detail"]
