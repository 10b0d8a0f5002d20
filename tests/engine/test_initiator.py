"""A start event's ``initiator`` property: the variable it names holds the user who started the instance (by a
plain start or a message start), whatever the client sent; a name that is no variable is refused at deploy."""

from __future__ import annotations

import pytest

from engine.errors import DeploymentError
from engine.runtime import Engine
from tests.support.bpmn_builder import Bpmn, message, properties, script


def requester_process(initiator: str = "requester") -> Bpmn:
    """Copies the requester into a second variable, so the test sees the value the process itself read."""
    process = Bpmn("leave")
    process.node("start", "startEvent", "Antrag", properties(initiator=initiator)) \
        .node("note", "scriptTask", "Merken", script("seen_by_script = requester")) \
        .node("review", "userTask").node("end", "endEvent").chain("start", "note", "review", "end")
    return process


def test_the_initiator_variable_is_the_starting_user_not_the_clients_value(engine: Engine) -> None:
    engine.deploy([("leave.bpmn", requester_process().xml())])
    started = engine.start("leave", {"requester": "someone-else", "days": 3}, user="kim")
    assert started.variables["requester"] == "kim" and started.variables["seen_by_script"] == "kim"
    assert started.variables["days"] == 3
    assert engine.get_instance(started.id).variables["requester"] == "kim"  # saved, not only in the view


def test_without_a_user_the_initiator_variable_is_none(engine: Engine) -> None:
    engine.deploy([("leave.bpmn", requester_process().xml())])
    started = engine.start("leave", {"requester": "forged"})
    assert started.variables["requester"] is None and started.variables["seen_by_script"] is None


def test_a_process_without_initiator_keeps_the_start_variables(engine: Engine) -> None:
    plain = Bpmn("plain")
    plain.node("start", "startEvent").node("review", "userTask").node("end", "endEvent").chain("start", "review", "end")
    engine.deploy([("plain.bpmn", plain.xml())])
    assert engine.start("plain", {"requester": "client"}, user="kim").variables == {"requester": "client"}


def test_a_message_start_sets_the_initiator_to_the_correlating_user(engine: Engine) -> None:
    p = Bpmn("lead").message("m_lead", "lead_received")
    p.node("start", "startEvent", "Anfrage", properties(initiator="received_by") + message("m_lead")) \
        .node("qualify", "userTask").node("end", "endEvent").chain("start", "qualify", "end")
    engine.deploy([("lead.bpmn", p.xml())])
    [started] = engine.correlate_message("lead_received", {"company": "ACME", "received_by": "x"},
                                         business_key="L-1", user="key:webform")
    assert started.variables["received_by"] == "key:webform" and started.variables["company"] == "ACME"


@pytest.mark.parametrize("name", ["employee name", "1st", "class", ""])
def test_an_initiator_that_is_no_variable_name_is_refused_naming_the_start_event(engine: Engine, name: str) -> None:
    with pytest.raises(DeploymentError) as caught:
        engine.deploy([("leave.bpmn", requester_process(name).xml())])
    [problem] = caught.value.problems
    assert problem.element_id == "start" and problem.file_name == "leave.bpmn" and problem.line
    assert "initiator" in problem.message and "Python identifier" in problem.message
    with engine.db.read() as conn:
        assert engine.repository.list(conn) == []
