"""Persistence rules: one transaction per step, optimistic locking, projections, history, bounded state."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.errors import Conflict, FormValidationError, InvalidState
from engine.runtime import Engine
from engine.schema import process_instance, user_task
from tests.engine.conftest import Calls, bpmn, make_engine

APPROVAL_FORM = (b'{"type": "object", "properties": {"ok": {"type": "boolean"}, '
                 b'"comment": {"type": "string", "maxLength": 5}}, "required": ["ok"]}')


LOOP_BPMN = Path(__file__).parents[2] / "bench" / "bpmn" / "loop.bpmn"


def _deploy(engine: Engine) -> None:
    engine.deploy(bpmn("reference.bpmn"), [("approval.json", APPROVAL_FORM)])
    engine.deploy([("loop.bpmn", LOOP_BPMN.read_bytes())])


def test_user_task_projection_and_completion(engine: Engine, calls: Calls) -> None:
    _deploy(engine)
    instance = engine.start("reference", {"amount": 70}, business_key="K-1", user="alice")
    assert instance.active_elements == ["approve"]
    [task] = engine.list_tasks(instance_id=instance.id)
    assert (task.element_id, task.name, task.form_key, task.business_key, task.process_key) == \
        ("approve", "Approve", "approval", "K-1", "reference")
    assert engine.task_form(task.id)["required"] == ["ok"]
    assert instance.variables["lookup_result"] == {}
    done = engine.complete_task(task.id, {"ok": True}, user="bob")
    assert done.state == "completed" and done.variables["ok"] is True
    row = engine.get_task(task.id)
    assert (row.state, row.completed_by) == ("completed", "bob") and row.completed_at is not None
    assert engine.get_instance(instance.id).state == "completed"


def test_form_data_is_validated_and_nothing_is_written_on_error(engine: Engine) -> None:
    _deploy(engine)
    instance = engine.start("reference", {"amount": 70})
    [task] = engine.list_tasks(instance_id=instance.id)
    with pytest.raises(FormValidationError) as raised:
        engine.complete_task(task.id, {"comment": "far too long"})
    fields = {e["field"] for e in raised.value.errors}
    assert fields == {"ok", "comment"}
    assert engine.get_task(task.id).state == "open"
    assert engine.get_instance(instance.id).state == "running"


def test_read_only_form_fields_a_client_sends_back_change_nothing(engine: Engine) -> None:
    form = (b'{"type": "object", "properties": {"ok": {"type": "boolean"}, '
            b'"amount": {"type": "integer", "readOnly": true}}, "required": ["ok"], "additionalProperties": false}')
    engine.deploy(bpmn("reference.bpmn"), [("approval.json", form)])
    instance = engine.start("reference", {"amount": 70})
    [task] = engine.list_tasks(instance_id=instance.id)
    done = engine.complete_task(task.id, {"ok": True, "amount": 1_000_000})
    assert done.variables["amount"] == 70 and done.variables["ok"] is True


def test_second_completion_is_refused_with_who_completed(engine: Engine) -> None:
    _deploy(engine)
    instance = engine.start("reference", {"amount": 1})
    [task] = engine.list_tasks(instance_id=instance.id)
    engine.complete_task(task.id, {"ok": True}, user="alice")
    with pytest.raises(InvalidState, match="already completed by alice"):
        engine.complete_task(task.id, {"ok": False}, user="bob")


def test_claim_rules(engine: Engine) -> None:
    _deploy(engine)
    instance = engine.start("reference", {"amount": 1})
    [task] = engine.list_tasks(instance_id=instance.id)
    assert engine.claim(task.id, "alice").assignee == "alice"
    with pytest.raises(Conflict, match="claimed by alice"):
        engine.claim(task.id, "bob")
    with pytest.raises(Conflict):
        engine.complete_task(task.id, {"ok": True}, user="bob")
    assert engine.list_tasks(assignee="alice")[0].id == task.id
    engine.unclaim(task.id, "alice")
    assert engine.claim(task.id, "bob").assignee == "bob"
    types = [h.type for h in engine.history(instance.id)]
    assert types.count("task.claimed") == 2 and "task.unclaimed" in types


def test_stale_writer_loses_with_conflict(engine: Engine, calls: Calls) -> None:
    """Two engines load the same instance; the second save must fail, not overwrite."""
    _deploy(engine)
    instance = engine.start("loop", {"iteration": 0, "limit": 5})
    other = make_engine(engine.db.url, calls)
    with engine.db.transaction() as conn:
        stale = other.store.load(conn, instance.id)
    [task] = engine.list_tasks(instance_id=instance.id)
    engine.complete_task(task.id, {})
    with engine.db.transaction() as conn, pytest.raises(Conflict, match="changed concurrently"):
        other.store.save(conn, stale, [])
    other.db.dispose()


def test_concurrent_completions_of_one_instance(engine: Engine, calls: Calls) -> None:
    """Parallel clerks on the same task: exactly one wins, the others get a clear error."""
    _deploy(engine)
    instance = engine.start("reference", {"amount": 1})
    [task] = engine.list_tasks(instance_id=instance.id)
    engines = [make_engine(engine.db.url, calls) for _ in range(4)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(engines))

    def complete(eng: Engine, user: str) -> None:
        barrier.wait()
        try:
            eng.complete_task(task.id, {"ok": True}, user=user)
            outcomes.append("ok")
        except (Conflict, InvalidState) as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=complete, args=(eng, f"user{i}")) for i, eng in enumerate(engines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("ok") == 1 and len(outcomes) == 4
    history = [h.type for h in engine.history(instance.id)]
    assert history.count("task.completed") == 1 and history.count("instance.completed") == 1
    for eng in engines:
        eng.db.dispose()


def test_history_is_an_ordered_timeline(engine: Engine) -> None:
    _deploy(engine)
    instance = engine.start("reference", {"amount": 500}, user="alice")
    [task] = engine.list_tasks(instance_id=instance.id)
    engine.complete_task(task.id, {"ok": True}, user="bob")
    events = [(h.type, h.element_id) for h in engine.history(instance.id)]
    assert events[0] == ("instance.started", None)
    assert events[-1] == ("instance.completed", None)
    completed = [e for t, e in events if t == "element.completed"]
    assert completed == ["start", "compute", "lookup", "decide", "approve", "end"]
    assert ("task.created", "approve") in events and ("task.completed", "approve") in events
    started = engine.history(instance.id)[0]
    assert started.user_id == "alice" and started.data == {"variables": {"amount": 500, "total": 1000,
                                                                           "lookup_result": {}}}


def test_cancel(engine: Engine) -> None:
    _deploy(engine)
    instance = engine.start("reference", {"amount": 1})
    cancelled = engine.cancel(instance.id, "customer withdrew", user="alice")
    assert cancelled.state == "cancelled"
    assert engine.list_tasks(instance_id=instance.id) == []
    history = engine.history(instance.id)
    assert [h.data for h in history if h.type == "instance.cancelled"] == [{"reason": "customer withdrew"}]
    assert ("task.cancelled", "approve") in [(h.type, h.element_id) for h in history]
    with pytest.raises(InvalidState):
        engine.cancel(instance.id)


def test_loop_state_stays_bounded(engine: Engine) -> None:
    """Each pass of a loop adds tasks in Spiff; our compaction keeps the saved state small."""
    _deploy(engine)
    instance = engine.start("loop", {"iteration": 0, "limit": 400})
    sizes = []
    for step in range(400):
        [task] = engine.list_tasks(instance_id=instance.id)
        instance = engine.complete_task(task.id, {})
        if step % 50 == 49:
            with engine.db.read() as conn:
                sizes.append(len(conn.execute(sa.select(process_instance.c.workflow_state)
                                              .where(process_instance.c.id == instance.id)).scalar_one()))
    assert instance.state == "completed" and instance.variables["iteration"] == 400
    assert max(sizes) < 16 * 1024, sizes
    with engine.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(user_task)
                            .where(user_task.c.instance_id == instance.id)).scalar_one() == 400
