"""Migration of running instances to a new version: plans by element id, validation per instance with reasons,
execution per instance; user tasks moved, removed elements mapped, timers kept or re-armed (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from api.services import ConnectorGateway
from connectors import default_registry
from connectors.registry import ConnectorContext
from engine.database import Database, utcnow
from engine.migration import InvalidPlan, execute, instances_of, plan_for, validate
from engine.runtime import Engine
from tests.engine.conftest import BPMN_DIR

V1 = (BPMN_DIR / "modify_flow.bpmn").read_text()
# version 2: the review is now "check" (a removed element that needs a mapping), the deadline comes from the data
V2 = (V1.replace('id="review"', 'id="check"').replace('targetRef="review"', 'targetRef="check"')
      .replace('sourceRef="review"', 'sourceRef="check"')
      .replace("<bpmn:flowNodeRef>review<", "<bpmn:flowNodeRef>check<")
      .replace('bpmnElement="review"', 'bpmnElement="check"').replace('"P3D"', "frist"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    registry = default_registry()

    def lookup(params: dict[str, Any], context: ConnectorContext) -> dict[str, Any]:
        return {"found": True}

    registry.register("flaky", lookup)
    eng = Engine(Database(db_url), ConnectorGateway(registry), inline_services=True)
    eng.deploy([("modify_flow.bpmn", V1.encode())])
    yield eng
    eng.db.dispose()


def _deploy_v2(engine: Engine) -> None:
    result = engine.deploy([("modify_flow.bpmn", V2.encode())])
    assert [d.version for d in result.definitions] == [2]


def _at_review(engine: Engine) -> str:
    inst = engine.start("modify-flow", {"failures": 0, "frist": "P5D"})
    [task] = engine.list_tasks(instance_id=inst.id)
    engine.complete_task(task.id, {})
    assert engine.get_instance(inst.id).active_elements == ["review"]
    return inst.id


def test_plan_maps_same_ids_and_lists_the_rest(engine: Engine) -> None:
    _deploy_v2(engine)
    plan = plan_for(engine, {"key": "modify-flow", "version": 1}, {"key": "modify-flow", "version": 2})
    assert plan.mappings["capture"] == "capture" and plan.mappings["deadline"] == "deadline"
    assert "review" not in plan.mappings
    assert [u.element_id for u in plan.unmapped] == ["review"]
    mapped = plan_for(engine, {"key": "modify-flow", "version": 1}, {"key": "modify-flow"}, {"review": "check"})
    assert mapped.mappings["review"] == "check" and mapped.unmapped == []
    with pytest.raises(InvalidPlan, match="'nope' does not exist") as bad:
        plan_for(engine, {"key": "modify-flow", "version": 1}, {"key": "modify-flow"}, {"review": "nope"})
    assert bad.value.element_id == "nope"
    with pytest.raises(InvalidPlan, match="same version"):
        plan_for(engine, {"key": "modify-flow", "version": 2}, {"key": "modify-flow", "version": 2})


def test_validate_reports_which_instances_cannot_migrate_and_why(engine: Engine) -> None:
    ok = engine.start("modify-flow", {"failures": 0, "frist": "P5D"}, business_key="OK-1").id
    no_data = engine.start("modify-flow", {"failures": 0}).id
    at_review = _at_review(engine)
    _deploy_v2(engine)
    plan = plan_for(engine, {"key": "modify-flow", "version": 1}, {"key": "modify-flow", "version": 2})
    reports = {r.instance_id: r for r in validate(engine, plan, [ok, no_data, at_review, "unknown"])}
    assert reports[ok].ok and reports[ok].business_key == "OK-1" and reports[ok].active_elements == ["capture"]
    assert not reports[no_data].ok and "frist" in reports[no_data].reasons[0]
    assert not reports[at_review].ok
    assert reports[at_review].reasons == ["active element 'review' (Prüfen) has no mapping in the target version"]
    assert not reports["unknown"].ok
    # validating changed nothing
    assert engine.get_instance(ok).process_version == 1 and engine.get_instance(at_review).active_elements == ["review"]
    assert sorted(instances_of(engine, plan)) == sorted([ok, no_data, at_review])


def test_execute_moves_user_tasks_keeps_claims_and_timers_and_reports_per_instance(engine: Engine) -> None:
    claimed = engine.start("modify-flow", {"failures": 0, "frist": "P5D"}).id
    [capture] = engine.list_tasks(instance_id=claimed)
    engine.claim(capture.id, "anna")
    [timer_before] = engine.jobs(instance_id=claimed, kind="timer")
    no_data = engine.start("modify-flow", {"failures": 0}).id
    at_review = _at_review(engine)
    _deploy_v2(engine)
    plan = plan_for(engine, {"key": "modify-flow", "version": 1}, {"key": "modify-flow", "version": 2},
                    {"review": "check"})
    reports = {r.instance_id: r for r in execute(engine, plan, [claimed, no_data, at_review], "admin", "Fix v2")}
    assert reports[claimed].ok and reports[at_review].ok and not reports[no_data].ok
    # the claimed capture task: a new task of version 2, still with anna, the P3D timer keeps its due time
    moved = engine.get_instance(claimed)
    assert (moved.process_version, moved.active_elements) == (2, ["capture", "deadline"])
    [task] = engine.list_tasks(instance_id=claimed)
    assert task.element_id == "capture" and task.assignee == "anna" and task.id != capture.id
    assert engine.get_task(capture.id).state == "cancelled"
    [timer] = engine.jobs(instance_id=claimed, kind="timer", state="pending")
    assert abs((timer.due_at - timer_before.due_at).total_seconds()) < 1
    # the review became "check" in the backoffice inbox
    [check] = engine.list_tasks(instance_id=at_review)
    assert check.element_id == "check" and check.candidate_groups == ["backoffice"]
    assert engine.get_instance(at_review).process_version == 2
    migrated = [h for h in engine.history(at_review) if h.type == "instance.migrated"]
    assert migrated[0].user_id == "admin" and migrated[0].data == {
        "fromKey": "modify-flow", "fromVersion": 1, "toKey": "modify-flow", "toVersion": 2, "reason": "Fix v2",
        "mappings": {"review": "check"}}
    assert "instance.started" in [h.type for h in engine.history(at_review)]  # the history stays
    # the refused instance is untouched and still works on version 1
    assert engine.get_instance(no_data).process_version == 1
    [left] = engine.list_tasks(instance_id=no_data)
    assert left.element_id == "capture"
    # the migrated instances run on to the end on version 2
    engine.complete_task(check.id, {})
    assert engine.get_instance(at_review).state == "completed"
    engine.complete_task(task.id, {}, user="anna")
    [check2] = engine.list_tasks(instance_id=claimed)
    assert check2.element_id == "check"


def test_update_event_triggers_re_arms_timers_from_now(engine: Engine) -> None:
    inst = engine.start("modify-flow", {"failures": 0, "frist": "P5D"}).id
    _deploy_v2(engine)
    plan = plan_for(engine, {"key": "modify-flow", "version": 1}, {"key": "modify-flow", "version": 2},
                    update_event_triggers=True)
    [report] = execute(engine, plan, [inst], None)
    assert report.ok, report.reasons
    [timer] = engine.jobs(instance_id=inst, kind="timer", state="pending")
    assert timer.due_at > utcnow() + timedelta(days=4, hours=23)  # the new expression, counted from now
    assert engine.fire_due_timers(now=utcnow() + timedelta(days=6)) == 1
    assert engine.get_instance(inst).state == "completed"  # the deadline path of version 2
