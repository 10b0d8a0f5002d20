"""Instance modification: start before/after, cancel, move a token, skip a failed service task — each with a
reason, in history, re-projecting tasks, jobs and timers (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from api.services import ConnectorGateway
from connectors import default_registry
from connectors.registry import ConnectorContext
from engine.database import Database, utcnow
from engine.errors import InvalidState
from engine.modification import Instruction, InvalidModification, modify, retry_with_fresh_parameters
from engine.runtime import Engine
from tests.engine.conftest import bpmn

FAR = timedelta(days=3650)


class Supplier:
    def __init__(self) -> None:
        self.down = True

    def __call__(self, params: dict[str, Any], context: ConnectorContext) -> dict[str, Any]:
        if self.down or params.get("failures") == "kaputt":
            raise ConnectionError("supplier API unreachable")
        return {"ok": True}


@pytest.fixture
def supplier() -> Supplier:
    return Supplier()


@pytest.fixture
def engine(db_url: str, supplier: Supplier) -> Iterator[Engine]:
    registry = default_registry()
    registry.register("flaky", supplier)
    eng = Engine(Database(db_url), ConnectorGateway(registry))
    eng.deploy(bpmn("modify_flow.bpmn"))
    yield eng
    eng.db.dispose()


def _types(engine: Engine, instance_id: str) -> list[str]:
    return [h.type for h in engine.history(instance_id)]


def test_move_token_cancels_the_task_and_its_timer_and_offers_the_target_to_its_lane(engine: Engine) -> None:
    inst = engine.start("modify-flow", {"failures": 0, "customer": "Muster GmbH"})
    [capture] = engine.list_tasks(instance_id=inst.id)
    assert capture.element_id == "capture" and len(engine.jobs(instance_id=inst.id, kind="timer")) == 1
    moved = modify(engine, inst.id, [Instruction("moveToken", "capture", target_element_id="review")],
                   "Daten kamen per Telefon", "boss")
    assert moved.state == "running" and moved.active_elements == ["review"]
    [review] = engine.list_tasks(instance_id=inst.id)
    assert review.element_id == "review" and review.candidate_groups == ["backoffice"]
    assert engine.list_tasks(candidate_group="backoffice") == [review]
    assert engine.get_task(capture.id).state == "cancelled"
    assert engine.jobs(instance_id=inst.id, kind="timer") == []  # the boundary timer went with its task
    assert engine.task_data(review.id)["customer"] == "Muster GmbH"
    [event] = [h for h in engine.history(inst.id) if h.type == "instance.modified"]
    assert event.user_id == "boss" and event.data is not None
    assert event.data["reason"] == "Daten kamen per Telefon"
    assert event.data["instructions"] == [{"type": "moveToken", "elementId": "capture", "targetElementId": "review"}]
    assert "task.cancelled" in _types(engine, inst.id)
    engine.complete_task(review.id, {}, user="bob")
    assert engine.get_instance(inst.id).state == "completed"


def test_start_before_an_activity_with_a_timer_arms_it_and_cancel_removes_one_token(engine: Engine) -> None:
    inst = engine.start("modify-flow", {"failures": 0})
    [first] = engine.list_tasks(instance_id=inst.id)
    modify(engine, inst.id, [Instruction("startBeforeActivity", "capture", variables={"note": "zweiter Versuch"})],
           "zweite Erfassung", "boss")
    tasks = engine.list_tasks(instance_id=inst.id)
    assert sorted(t.element_id for t in tasks) == ["capture", "capture"]
    timers = engine.jobs(instance_id=inst.id, kind="timer")
    assert len(timers) == 2 and all(t.due_at > utcnow() + timedelta(days=2) for t in timers)
    second = next(t for t in tasks if t.id != first.id)
    assert engine.task_data(second.id)["note"] == "zweiter Versuch"
    with pytest.raises(InvalidState, match="name one with taskId"):
        modify(engine, inst.id, [Instruction("moveToken", "capture", target_element_id="review")], "x", "boss")
    modify(engine, inst.id, [Instruction("cancel", "capture", task_id=first.id)], "doppelt", "boss")
    assert [t.id for t in engine.list_tasks(instance_id=inst.id)] == [second.id]
    assert len(engine.jobs(instance_id=inst.id, kind="timer", state="pending")) == 1


def test_start_after_an_activity_writes_the_next_service_job(engine: Engine) -> None:
    inst = engine.start("modify-flow", {"failures": 0})
    view = modify(engine, inst.id, [Instruction("cancel", "capture"), Instruction("startAfterActivity", "capture")],
                  "erfasst im Altsystem", "boss")
    assert view.active_elements == ["lookup"]
    [service] = engine.jobs(instance_id=inst.id, kind="service")
    assert service.state == "pending" and service.element_id == "lookup"


def test_cancelling_the_last_token_ends_the_instance_as_cancelled(engine: Engine) -> None:
    inst = engine.start("modify-flow", {"failures": 0})
    view = modify(engine, inst.id, [Instruction("cancel", "capture")], "Dublette", "boss")
    assert view.state == "cancelled"
    assert engine.get_instance(inst.id).state == "cancelled"
    assert engine.list_tasks(instance_id=inst.id) == [] and engine.jobs(instance_id=inst.id, state="pending") == []
    with pytest.raises(InvalidState, match="only running instances"):
        modify(engine, inst.id, [Instruction("startBeforeActivity", "review")], "zu spät", "boss")


def test_skip_a_failed_service_task_with_given_results(engine: Engine, supplier: Supplier) -> None:
    inst = engine.start("modify-flow", {"failures": 0})
    [capture] = engine.list_tasks(instance_id=inst.id)
    engine.complete_task(capture.id, {})
    for _ in range(4):
        engine.run_jobs(now=utcnow() + FAR, kinds=("service",))
    [failed] = engine.jobs(instance_id=inst.id, kind="service")
    assert failed.state == "failed"
    view = modify(engine, inst.id, [Instruction("skipTask", "lookup", result={"modem": "FB-7590"},
                                                variables={"checked_by_phone": True})],
                  "Lieferant bestätigt telefonisch", "boss")
    assert view.active_elements == ["review"]
    assert view.variables["lookup_result"] == {"modem": "FB-7590"} and view.variables["checked_by_phone"] is True
    assert engine.get_job(failed.id).state == "skipped"
    assert engine.jobs(state="failed") == []
    skipped = [h for h in engine.history(inst.id) if h.type == "element.skipped"]
    assert skipped and skipped[0].element_id == "lookup" and skipped[0].data is not None
    assert "supplier API unreachable" in skipped[0].data["lastError"]
    [review] = engine.list_tasks(instance_id=inst.id)
    assert review.element_id == "review"


def test_instructions_are_checked_against_the_definition(engine: Engine) -> None:
    inst = engine.start("modify-flow", {"failures": 0})
    with pytest.raises(InvalidModification, match="'nowhere' does not exist") as unknown:
        modify(engine, inst.id, [Instruction("startBeforeActivity", "nowhere")], "x", "boss")
    assert unknown.value.element_id == "nowhere" and unknown.value.index == 0
    with pytest.raises(InvalidModification, match="boundary event"):
        modify(engine, inst.id, [Instruction("moveToken", "capture", target_element_id="deadline")], "x", "boss")
    with pytest.raises(InvalidModification, match="not a service task"):
        modify(engine, inst.id, [Instruction("skipTask", "capture")], "x", "boss")
    with pytest.raises(InvalidModification, match="reason is required"):
        modify(engine, inst.id, [Instruction("cancel", "capture")], "  ", "boss")
    with pytest.raises(InvalidModification, match="0 outgoing flows"):
        modify(engine, inst.id, [Instruction("startAfterActivity", "end")], "x", "boss")
    with pytest.raises(InvalidState, match="no active token"):
        modify(engine, inst.id, [Instruction("cancel", "review")], "x", "boss")
    with pytest.raises(InvalidState, match="not waiting for its connector|no active token"):
        modify(engine, inst.id, [Instruction("skipTask", "lookup")], "x", "boss")
    # nothing of the refused requests was applied
    assert [t.element_id for t in engine.list_tasks(instance_id=inst.id)] == ["capture"]
    assert "instance.modified" not in _types(engine, inst.id)


def test_retry_with_fresh_parameters_fixes_the_data_behind_an_incident(engine: Engine, supplier: Supplier) -> None:
    supplier.down = False
    inst = engine.start("modify-flow", {"failures": "kaputt"})
    [capture] = engine.list_tasks(instance_id=inst.id)
    engine.complete_task(capture.id, {})
    for _ in range(4):
        engine.run_jobs(now=utcnow() + FAR, kinds=("service",))
    [failed] = engine.jobs(instance_id=inst.id, kind="service")
    assert failed.state == "failed"
    done = retry_with_fresh_parameters(engine, failed.id, {"failures": 0}, "Tippfehler im Formular", "boss")
    assert done["params"] == {"failures": 0} and done["previousParams"] == {"failures": "kaputt"}
    assert engine.get_instance(inst.id).variables["failures"] == 0
    assert engine.run_jobs(kinds=("service",)) == 1
    assert engine.get_job(failed.id).state == "done"
    [review] = engine.list_tasks(instance_id=inst.id)
    assert review.element_id == "review"
    [retried] = [h for h in engine.history(inst.id) if h.type == "job.retried"]
    assert retried.user_id == "boss" and retried.data is not None
    assert retried.data["reason"] == "Tippfehler im Formular"
    with pytest.raises(InvalidState, match="only a failed or waiting service job"):
        retry_with_fresh_parameters(engine, failed.id, {}, "noch einmal", "boss")
