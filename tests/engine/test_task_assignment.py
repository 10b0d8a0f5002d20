"""User tasks routed by the model at run time (engine/assignment.py): ``assignee="${employee}"`` gives the task to
the person who started the instance alone (Camunda's ``${initiator}`` pattern), ``excludedUsers`` keeps the
requester away from the approval of their own request on every engine path (claim, assign, complete, inbox),
``completedBy`` records the login of whoever completed it, whatever the form sent."""

from __future__ import annotations

import pytest

from engine.assignment import NotPermitted
from engine.errors import ProcessError
from engine.queries import TaskFilter
from engine.runtime import Engine
from tests.support.bpmn_builder import Bpmn, properties, script

LANES = (b'<bpmn:laneSet id="lanes"><bpmn:lane id="lane_staff" name="staff"><bpmn:flowNodeRef>submit'
         b'</bpmn:flowNodeRef></bpmn:lane><bpmn:lane id="lane_management" name="management"><bpmn:flowNodeRef>'
         b'approve</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>')


def leave_process(assignee: str = "${employee}") -> bytes:
    process = Bpmn("leave")
    process.node("start", "startEvent", "Antrag", properties(initiator="employee")) \
        .node("submit", "userTask", "Beantragen", properties(assignee=assignee)) \
        .node("approve", "userTask", "Genehmigen", properties(
            candidateGroups="${escalate_to}", excludedUsers="${employee}", completedBy="approver")) \
        .node("note", "scriptTask", "Merken", script("decided_by = approver")) \
        .node("end", "endEvent").chain("start", "submit", "approve", "note", "end")
    return process.xml().replace(b'isExecutable="true">', b'isExecutable="true">' + LANES, 1)


def open_task(engine: Engine, instance_id: str, element_id: str) -> str:
    [task] = [t for t in engine.list_tasks(instance_id=instance_id) if t.element_id == element_id]
    return task.id


@pytest.fixture
def started(engine: Engine) -> str:
    engine.deploy([("leave.bpmn", leave_process())])
    return engine.start("leave", {"escalate_to": ["hr"], "employee": "forged"}, user="kim").id


def test_the_employees_task_is_assigned_to_the_initiator_alone(engine: Engine, started: str) -> None:
    task = engine.get_task(open_task(engine, started, "submit"))
    assert task.assignee == "kim" and task.candidate_groups == []  # the staff lane offers it to nobody else
    created = [e for e in engine.history(started) if e.type == "task.created"]
    assert created[0].data == {"candidateGroups": [], "assignee": "kim"}
    staff_inbox, _ = engine.query_tasks(TaskFilter(visible_to_user="bob", visible_to_groups=["staff"]))
    assert task.id not in [t.id for t in staff_inbox]
    kims_inbox, _ = engine.query_tasks(TaskFilter(visible_to_user="kim", visible_to_groups=["sales"]))
    assert task.id in [t.id for t in kims_inbox]


def test_nobody_else_claims_completes_takes_or_gives_back_the_employees_task(engine: Engine, started: str) -> None:
    task_id = open_task(engine, started, "submit")
    with pytest.raises(NotPermitted, match="kim's own task"):
        engine.claim(task_id, "bob")
    with pytest.raises(NotPermitted, match="kim's own task"):
        engine.complete_task(task_id, {}, user="bob")
    with pytest.raises(NotPermitted):
        engine.assign(task_id, "bob", user="boss")
    with pytest.raises(NotPermitted):
        engine.unclaim(task_id, user="boss")
    assert engine.get_task(task_id).assignee == "kim"
    engine.claim(task_id, "kim")  # claiming one's own task is harmless
    engine.complete_task(task_id, {}, user="kim")
    assert engine.get_task(task_id).completed_by == "kim"


def test_the_requester_can_neither_claim_assign_nor_complete_the_approval(engine: Engine, started: str) -> None:
    engine.complete_task(open_task(engine, started, "submit"), {}, user="kim")
    approval_id = open_task(engine, started, "approve")
    approval = engine.get_task(approval_id)
    assert approval.candidate_groups == ["management", "hr"] and approval.assignee is None
    with pytest.raises(NotPermitted, match="your own request"):
        engine.claim(approval_id, "kim")
    with pytest.raises(NotPermitted, match="kim's own request"):
        engine.assign(approval_id, "kim", user="boss")
    with pytest.raises(NotPermitted, match="your own request"):
        engine.assign(approval_id, "boss", user="kim")
    with pytest.raises(NotPermitted, match="your own request"):
        engine.complete_task(approval_id, {}, user="kim")
    assert engine.get_task(approval_id).state == "open"
    mine, total = engine.query_tasks(TaskFilter(hidden_from="kim"))
    assert approval_id not in [t.id for t in mine] and total == len(mine)
    theirs, _ = engine.query_tasks(TaskFilter(hidden_from="boss", visible_to_groups=["hr"]))
    assert approval_id in [t.id for t in theirs]


def test_completed_by_records_the_approvers_login_not_what_the_form_sent(engine: Engine, started: str) -> None:
    engine.complete_task(open_task(engine, started, "submit"), {}, user="kim")
    approval_id = open_task(engine, started, "approve")
    done = engine.complete_task(approval_id, {"approver": "management"}, user="boss")
    assert done.state == "completed"
    assert (done.variables["approver"], done.variables["decided_by"]) == ("boss", "boss")
    [completed] = [e for e in engine.history(started) if e.type == "task.completed" and e.element_id == "approve"]
    assert completed.user_id == "boss"


def test_a_name_that_looks_like_a_pattern_is_no_wildcard(engine: Engine) -> None:
    engine.deploy([("leave.bpmn", leave_process())])
    instance = engine.start("leave", {"escalate_to": "hr"}, user="k_m")
    engine.complete_task(open_task(engine, instance.id, "submit"), {}, user="k_m")
    approval_id = open_task(engine, instance.id, "approve")
    visible, _ = engine.query_tasks(TaskFilter(hidden_from="kim"))  # '_' would match 'i' in a raw LIKE
    assert approval_id in [t.id for t in visible]
    hidden, _ = engine.query_tasks(TaskFilter(hidden_from="k_m"))
    assert approval_id not in [t.id for t in hidden]


def test_a_literal_assignee_and_an_empty_expression(engine: Engine) -> None:
    engine.deploy([("leave.bpmn", leave_process("anna"))])
    instance = engine.start("leave", {"escalate_to": None}, user="kim")
    task = engine.get_task(open_task(engine, instance.id, "submit"))
    assert (task.assignee, task.candidate_groups) == ("anna", [])
    engine.complete_task(task.id, {}, user="anna")
    assert engine.get_task(open_task(engine, instance.id, "approve")).candidate_groups == ["management"]


def test_an_expression_that_fails_names_the_task(engine: Engine) -> None:
    engine.deploy([("leave.bpmn", leave_process("${no_such_variable}"))])
    with pytest.raises(ProcessError) as caught:
        engine.start("leave", {}, user="kim")
    assert caught.value.element_id == "submit" and "assignee" in str(caught.value)
    assert engine.list_tasks() == []  # nothing half-written
