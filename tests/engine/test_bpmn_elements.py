"""Every supported BPMN element, end to end: deploy → start → work/messages/timers → end, on both databases.

The processes are built with tests/support/bpmn_builder.py (complete BPMN 2.0 with DI). Timers are fired
with a virtual ``now``; no test sleeps.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from engine.database import utcnow
from engine.errors import DeploymentError, NotFound, ProcessError
from engine.runtime import Engine
from tests.engine.conftest import Calls
from tests.support.bpmn_builder import (
    Bpmn,
    error,
    message,
    multi_instance,
    properties,
    script,
    service,
    timer,
)

LATER = timedelta(days=400)


def deploy(engine: Engine, *processes: Bpmn) -> None:
    engine.deploy([(f"{p.process_id}.bpmn", p.xml()) for p in processes])


def path(engine: Engine, instance_id: str) -> list[str]:
    return [h.element_id for h in engine.history(instance_id) if h.type == "element.completed" and h.element_id]


def work(engine: Engine, instance_id: str, element_id: str, data: dict[str, object] | None = None) -> None:
    [task] = [t for t in engine.list_tasks(instance_id=instance_id) if t.element_id == element_id]
    engine.complete_task(task.id, data or {})


def open_elements(engine: Engine, instance_id: str) -> list[str]:
    return sorted(t.element_id for t in engine.list_tasks(instance_id=instance_id))


def test_none_start_script_task_and_end(engine: Engine) -> None:
    p = Bpmn("plain").node("start", "startEvent").node("calc", "scriptTask", "Rechnen", script("y = x * 2")) \
        .node("end", "endEvent").chain("start", "calc", "end")
    deploy(engine, p)
    done = engine.start("plain", {"x": 21})
    assert done.state == "completed" and done.variables == {"x": 21, "y": 42}
    assert path(engine, done.id) == ["start", "calc", "end"]


def test_message_start(engine: Engine) -> None:
    p = Bpmn("web-lead").message("m_lead", "lead_received") \
        .node("start", "startEvent", "Anfrage", message("m_lead")).node("qualify", "userTask") \
        .node("end", "endEvent").chain("start", "qualify", "end")
    deploy(engine, p)
    [started] = engine.correlate_message("lead_received", {"company": "ACME"}, business_key="L-1")
    assert started.process_key == "web-lead" and started.business_key == "L-1"
    assert started.variables["company"] == "ACME" and open_elements(engine, started.id) == ["qualify"]
    with pytest.raises(NotFound):
        engine.correlate_message("unknown_message")


def test_timer_start_started_by_hand_waits_for_its_timer(engine: Engine) -> None:
    p = Bpmn("nightly").node("start", "startEvent", "Nachts", timer("timeDuration", '"PT2H"')) \
        .node("run", "scriptTask", body=script("ran = True")).node("end", "endEvent").chain("start", "run", "end")
    deploy(engine, p)
    instance = engine.start("nightly")
    assert instance.state == "running" and instance.active_elements == ["start"]
    assert engine.fire_due_timers() == 0
    assert engine.fire_due_timers(utcnow() + timedelta(hours=3)) >= 1
    assert engine.get_instance(instance.id).variables["ran"] is True


def test_service_task_calls_the_connector_with_parameters_and_idempotency_key(engine: Engine, calls: Calls) -> None:
    p = Bpmn("svc").node("start", "startEvent").node("call", "serviceTask", "Aufruf",
                                                     service("record", "answer", customer="customer", n="n * 2")) \
        .node("end", "endEvent").chain("start", "call", "end")
    deploy(engine, p)
    done = engine.start("svc", {"customer": "ACME", "n": 4})
    [(operator, params, context)] = calls.calls
    assert operator == "record" and params == {"customer": "ACME", "n": 8}
    assert context.idempotency_key.startswith(done.id + ":") and context.element_id == "call"
    assert done.variables["answer"] == {"received": {"customer": "ACME", "n": 8}}


@pytest.mark.parametrize("amount, expected", [(500, "big"), (5, "small")])
def test_exclusive_gateway_condition_and_default(engine: Engine, amount: int, expected: str) -> None:
    p = Bpmn("xor").node("start", "startEvent").node("gw", "exclusiveGateway", attrs='default="f_gw_small"') \
        .node("big", "scriptTask", body=script("size = 'big'")) \
        .node("small", "scriptTask", body=script("size = 'small'")) \
        .node("end_big", "endEvent").node("end_small", "endEvent") \
        .flow("start", "gw").flow("gw", "big", "amount > 100").flow("gw", "small").chain("big", "end_big") \
        .chain("small", "end_small")
    deploy(engine, p)
    done = engine.start("xor", {"amount": amount})
    assert done.variables["size"] == expected and expected in path(engine, done.id)


@pytest.mark.parametrize("order", [("a", "b"), ("b", "a")])
def test_parallel_gateway_joins_and_merges_both_branches(engine: Engine, order: tuple[str, str]) -> None:
    p = Bpmn("and").node("start", "startEvent").node("split", "parallelGateway").node("a", "userTask") \
        .node("b", "userTask").node("join", "parallelGateway").node("end", "endEvent") \
        .flow("start", "split").flow("split", "a").flow("split", "b").flow("a", "join").flow("b", "join") \
        .flow("join", "end")
    deploy(engine, p)
    instance = engine.start("and")
    assert open_elements(engine, instance.id) == ["a", "b"]
    work(engine, instance.id, order[0], {f"from_{order[0]}": 1})
    assert engine.get_instance(instance.id).state == "running"
    work(engine, instance.id, order[1], {f"from_{order[1]}": 2})
    done = engine.get_instance(instance.id)
    assert done.state == "completed" and {"from_a", "from_b"} <= set(done.variables)


@pytest.mark.parametrize("flags, expected", [({"dsl": True, "voip": False, "housing": False}, ["dsl"]),
                                             ({"dsl": True, "voip": True, "housing": False}, ["dsl", "voip"])])
def test_inclusive_gateway_runs_the_chosen_branches_and_joins(engine: Engine, flags: dict[str, bool],
                                                              expected: list[str]) -> None:
    p = Bpmn("or").node("start", "startEvent").node("split", "inclusiveGateway").node("dsl", "userTask") \
        .node("voip", "userTask").node("housing", "userTask").node("join", "inclusiveGateway") \
        .node("end", "endEvent").flow("start", "split").flow("split", "dsl", "dsl").flow("split", "voip", "voip") \
        .flow("split", "housing", "housing").flow("dsl", "join").flow("voip", "join").flow("housing", "join") \
        .flow("join", "end")
    deploy(engine, p)
    instance = engine.start("or", flags)
    assert open_elements(engine, instance.id) == expected
    for element in expected[:-1]:
        work(engine, instance.id, element)
        assert engine.get_instance(instance.id).state == "running"
    work(engine, instance.id, expected[-1])
    assert engine.get_instance(instance.id).state == "completed"


def _event_gateway() -> Bpmn:
    return Bpmn("race").message("m_answer", "customer_answer") \
        .node("start", "startEvent").node("gw", "eventBasedGateway") \
        .node("answer", "intermediateCatchEvent", "Antwort", message("m_answer")) \
        .node("wait", "intermediateCatchEvent", "7 Tage", timer("timeDuration", '"P7D"')) \
        .node("thanks", "scriptTask", body=script("outcome = 'answered'")) \
        .node("remind", "scriptTask", body=script("outcome = 'reminded'")) \
        .node("end_a", "endEvent").node("end_b", "endEvent") \
        .flow("start", "gw").flow("gw", "answer").flow("gw", "wait").chain("answer", "thanks", "end_a") \
        .chain("wait", "remind", "end_b")


def test_event_based_gateway_message_wins(engine: Engine) -> None:
    deploy(engine, _event_gateway())
    instance = engine.start("race", business_key="Q-1")
    assert instance.active_elements == ["gw"]  # the gateway waits for whichever event comes first
    engine.correlate_message("customer_answer", {"accepted": True}, business_key="Q-1")
    done = engine.get_instance(instance.id)
    assert done.variables["outcome"] == "answered" and done.state == "completed"
    assert engine.jobs(instance_id=instance.id) == []  # the losing timer is gone


def test_event_based_gateway_with_two_timers_is_refused_at_deploy(engine: Engine) -> None:
    two_timers = _event_gateway().node("expire", "intermediateCatchEvent", "Ablauf", timer("timeDuration", '"P3D"')) \
        .node("end_c", "endEvent").flow("gw", "expire").flow("expire", "end_c")
    with pytest.raises(DeploymentError) as refused:
        deploy(engine, two_timers)
    [problem] = refused.value.problems
    assert problem.element_id == "gw" and "one timer branch" in problem.message


def test_event_based_gateway_timer_wins(engine: Engine) -> None:
    deploy(engine, _event_gateway())
    instance = engine.start("race", business_key="Q-2")
    engine.fire_due_timers(utcnow() + timedelta(days=8))
    assert engine.get_instance(instance.id).variables["outcome"] == "reminded"
    with pytest.raises(NotFound):
        engine.correlate_message("customer_answer", business_key="Q-2")


def test_embedded_subprocess(engine: Engine) -> None:
    p = Bpmn("embedded").node("start", "startEvent")
    inner = p.sub("sub", "Prüfen")
    inner.node("s_start", "startEvent").node("s_task", "userTask", "Innen").node("s_calc", "scriptTask",
                                                                                  body=script("checked = True")) \
        .node("s_end", "endEvent").chain("s_start", "s_task", "s_calc", "s_end")
    p.node("after", "scriptTask", body=script("after = checked")).node("end", "endEvent").chain("start", "sub",
                                                                                                 "after", "end")
    deploy(engine, p)
    instance = engine.start("embedded", {"x": 1})
    assert open_elements(engine, instance.id) == ["s_task"]
    work(engine, instance.id, "s_task", {"note": "ok"})
    done = engine.get_instance(instance.id)
    assert done.state == "completed" and done.variables["after"] is True and done.variables["note"] == "ok"


def _called() -> Bpmn:
    return Bpmn("credit-check").node("start", "startEvent").node("score", "scriptTask",
                                                                 body=script("score = 700 if amount < 1000 else 400")) \
        .node("review", "userTask").node("end", "endEvent").chain("start", "score", "review", "end")


def _caller() -> Bpmn:
    return Bpmn("order").node("start", "startEvent") \
        .node("check", "callActivity", "Bonität", attrs='calledElement="credit-check"') \
        .node("decide", "scriptTask", body=script("approved = score > 500")).node("end", "endEvent") \
        .chain("start", "check", "decide", "end")


@pytest.mark.parametrize("together", [True, False])
def test_call_activity_across_files_passes_data_in_and_out(engine: Engine, together: bool) -> None:
    if together:
        deploy(engine, _caller(), _called())
    else:
        deploy(engine, _called())
        deploy(engine, _caller())
    instance = engine.start("order", {"amount": 250})
    assert open_elements(engine, instance.id) == ["review"]
    work(engine, instance.id, "review", {"reviewed_by": "anna"})
    done = engine.get_instance(instance.id)
    assert done.state == "completed" and done.variables["approved"] is True
    assert done.variables["reviewed_by"] == "anna" and done.variables["score"] == 700


def test_call_activity_keeps_the_called_version_it_started_with(engine: Engine) -> None:
    deploy(engine, _called(), _caller())
    first = engine.start("order", {"amount": 5000})
    changed = _called()
    changed.nodes[1].body = script("score = 999")
    deploy(engine, changed)
    second = engine.start("order", {"amount": 5000})
    work(engine, first.id, "review")
    work(engine, second.id, "review")
    assert engine.get_instance(first.id).variables["score"] == 400
    assert engine.get_instance(second.id).variables["score"] == 999


def test_parallel_multi_instance_user_tasks(engine: Engine) -> None:
    p = Bpmn("mi-par").node("start", "startEvent") \
        .node("provision", "userTask", "Bereitstellen", multi_instance("positions", "position", False, "results",
                                                                       "outcome")) \
        .node("end", "endEvent").chain("start", "provision", "end")
    deploy(engine, p)
    instance = engine.start("mi-par", {"positions": ["dsl", "voip", "ip"]})
    tasks = engine.list_tasks(instance_id=instance.id)
    assert len(tasks) == 3
    for task in tasks:
        engine.complete_task(task.id, {"outcome": "done"})
    done = engine.get_instance(instance.id)
    assert done.state == "completed" and done.variables["results"] == ["done", "done", "done"]


def test_sequential_multi_instance_script(engine: Engine) -> None:
    p = Bpmn("mi-seq").node("start", "startEvent") \
        .node("pricing", "scriptTask", "Preis", multi_instance("items", "item", True, "prices", "price")
              + script("price = item * 10")) \
        .node("end", "endEvent").chain("start", "pricing", "end")
    deploy(engine, p)
    done = engine.start("mi-seq", {"items": [1, 2, 3]})
    assert done.state == "completed" and done.variables["prices"] == [10, 20, 30]


def test_error_boundary_on_a_service_task(engine: Engine) -> None:
    p = Bpmn("domain").error("e_taken", "DomainUnavailable").node("start", "startEvent") \
        .node("register", "serviceTask", "Domain registrieren", service("check_domain", domain="domain")) \
        .node("taken", "boundaryEvent", "Vergeben", error("e_taken"), 'attachedToRef="register"') \
        .node("ask", "userTask", "Anderen Namen erfragen").node("end", "endEvent").node("end_taken", "endEvent") \
        .chain("start", "register", "end").chain("taken", "ask", "end_taken")
    deploy(engine, p)
    ok = engine.start("domain", {"domain": "silverflow.example"})
    assert ok.state == "completed" and "taken" not in path(engine, ok.id)
    taken = engine.start("domain", {"domain": "taken.example"})
    assert open_elements(engine, taken.id) == ["ask"]
    assert taken.variables.get("result") is None


def test_error_end_event_in_a_subprocess_caught_on_its_boundary(engine: Engine) -> None:
    p = Bpmn("sub-error").error("e_credit", "CreditRefused").node("start", "startEvent")
    inner = p.sub("check", "Prüfung")
    inner.node("c_start", "startEvent").node("c_gw", "exclusiveGateway", attrs='default="f_c_gw_c_ok"') \
        .node("c_refuse", "endEvent", "Abgelehnt", error("e_credit")).node("c_ok", "endEvent") \
        .flow("c_start", "c_gw").flow("c_gw", "c_refuse", "score < 500").flow("c_gw", "c_ok")
    p.node("refused", "boundaryEvent", "Abgelehnt", error("e_credit"), 'attachedToRef="check"') \
        .node("manager", "userTask", "Freigabe durch Leitung").node("end", "endEvent").node("end_r", "endEvent") \
        .chain("start", "check", "end").chain("refused", "manager", "end_r")
    deploy(engine, p)
    assert engine.start("sub-error", {"score": 800}).state == "completed"
    refused = engine.start("sub-error", {"score": 100})
    assert open_elements(engine, refused.id) == ["manager"]


def test_interrupting_timer_boundary_cancels_the_task(engine: Engine) -> None:
    p = Bpmn("escalate").node("start", "startEvent").node("approve", "userTask", "Freigeben") \
        .node("late", "boundaryEvent", "3 Tage", timer("timeDuration", '"P3D"'), 'attachedToRef="approve"') \
        .node("escalated", "userTask", "Eskaliert").node("end", "endEvent").node("end_late", "endEvent") \
        .chain("start", "approve", "end").chain("late", "escalated", "end_late")
    deploy(engine, p)
    instance = engine.start("escalate")
    [task] = engine.list_tasks(instance_id=instance.id)
    assert task.due_at is not None and timedelta(days=2) < task.due_at - utcnow() <= timedelta(days=3)
    engine.fire_due_timers(utcnow() + timedelta(days=4))
    assert engine.get_task(task.id).state == "cancelled"
    assert open_elements(engine, instance.id) == ["escalated"]


def test_task_completed_before_its_timer_cancels_the_timer(engine: Engine) -> None:
    p = Bpmn("in-time").node("start", "startEvent").node("approve", "userTask") \
        .node("late", "boundaryEvent", None, timer("timeDuration", '"P3D"'), 'attachedToRef="approve"') \
        .node("end", "endEvent").node("end_late", "endEvent").chain("start", "approve", "end") \
        .chain("late", "end_late")
    deploy(engine, p)
    instance = engine.start("in-time")
    assert [j.kind for j in engine.jobs(instance_id=instance.id)] == ["timer"]
    work(engine, instance.id, "approve")
    assert engine.jobs(instance_id=instance.id) == [] and engine.fire_due_timers(utcnow() + LATER) == 0
    assert engine.get_instance(instance.id).state == "completed"


def test_non_interrupting_timer_boundary_keeps_the_task(engine: Engine) -> None:
    p = Bpmn("remind").node("start", "startEvent").node("approve", "userTask") \
        .node("nudge", "boundaryEvent", "Erinnern", timer("timeDuration", '"P1D"'),
              'attachedToRef="approve" cancelActivity="false"') \
        .node("reminder", "scriptTask", body=script("reminded = True")).node("end", "endEvent") \
        .node("end_nudge", "endEvent").chain("start", "approve", "end").chain("nudge", "reminder", "end_nudge")
    deploy(engine, p)
    instance = engine.start("remind")
    engine.fire_due_timers(utcnow() + timedelta(days=2))
    assert open_elements(engine, instance.id) == ["approve"]
    assert "reminder" in path(engine, instance.id)
    work(engine, instance.id, "approve")
    assert engine.get_instance(instance.id).state == "completed"


@pytest.mark.parametrize("interrupting", [True, False])
def test_message_boundary(engine: Engine, interrupting: bool) -> None:
    p = Bpmn("cancelable").message("m_cancel", "order_cancelled").node("start", "startEvent") \
        .node("deliver", "userTask", "Liefern") \
        .node("cancel", "boundaryEvent", "Storno", message("m_cancel"),
              f'attachedToRef="deliver" cancelActivity="{str(interrupting).lower()}"') \
        .node("refund", "userTask", "Erstatten").node("end", "endEvent").node("end_c", "endEvent") \
        .chain("start", "deliver", "end").chain("cancel", "refund", "end_c")
    deploy(engine, p)
    instance = engine.start("cancelable", business_key="O-1")
    engine.correlate_message("order_cancelled", {"reason": "Kunde"}, business_key="O-1")
    expected = ["refund"] if interrupting else ["deliver", "refund"]
    assert open_elements(engine, instance.id) == expected


def test_intermediate_timer_catch(engine: Engine) -> None:
    p = Bpmn("wait").node("start", "startEvent") \
        .node("pause", "intermediateCatchEvent", "Warten", timer("timeDuration", '"PT30M"')) \
        .node("end", "endEvent").chain("start", "pause", "end")
    deploy(engine, p)
    instance = engine.start("wait")
    assert engine.fire_due_timers(utcnow() + timedelta(minutes=10)) == 0
    assert engine.fire_due_timers(utcnow() + timedelta(minutes=31)) == 1
    assert engine.get_instance(instance.id).state == "completed"


def test_intermediate_message_catch_with_correlation_keys(engine: Engine) -> None:
    p = Bpmn("shipment").message("m_ship", "shipment_arrived").node("start", "startEvent") \
        .node("arrive", "intermediateCatchEvent", "Lieferung", message("m_ship")) \
        .node("end", "endEvent").chain("start", "arrive", "end")
    deploy(engine, p)
    ours = engine.start("shipment", {"order_id": "A-1"})
    other = engine.start("shipment", {"order_id": "B-2"})
    reached = engine.correlate_message("shipment_arrived", {"tracking": "Z123"}, correlation_keys={"order_id": "A-1"})
    assert [r.id for r in reached] == [ours.id]
    assert engine.get_instance(ours.id).variables["tracking"] == "Z123"
    assert engine.get_instance(other.id).state == "running"
    with pytest.raises(NotFound):
        engine.correlate_message("shipment_arrived", correlation_keys={"order_id": "nope"})


def test_message_end_event_reaches_another_waiting_instance(engine: Engine) -> None:
    waiting = Bpmn("billing-wait").message("m_done", "provisioning_done").node("start", "startEvent") \
        .node("done", "intermediateCatchEvent", "Bereitgestellt", message("m_done")) \
        .node("bill", "userTask", "Abrechnen").node("end", "endEvent").chain("start", "done", "bill", "end")
    throwing = Bpmn("provision").message("m_done", "provisioning_done").node("start", "startEvent") \
        .node("work", "userTask").node("end", "endEvent", "Fertig melden", message("m_done")) \
        .chain("start", "work", "end")
    deploy(engine, waiting, throwing)
    target = engine.start("billing-wait", business_key="K-7")
    source = engine.start("provision", business_key="K-7")
    work(engine, source.id, "work")
    assert engine.get_instance(source.id).state == "completed"
    assert open_elements(engine, target.id) == ["bill"]


def test_thrown_message_with_correlation_keys_reaches_the_matching_instances_of_any_business_key(
        engine: Engine) -> None:
    """A payload's ``correlationKeys`` pick the receivers by their variables (e.g. a problem's incidents)."""
    waiting = Bpmn("incident-wait").message("m_fixed", "problem_resolved").node("start", "startEvent") \
        .node("fixed", "intermediateCatchEvent", "Behoben", message("m_fixed")) \
        .node("confirm", "userTask").node("end", "endEvent").chain("start", "fixed", "confirm", "end")
    payload = ('<bpmn:messageEventDefinition messageRef="m_fixed"><bpmn:extensionElements>'
               '<spiffworkflow:messagePayload>'
               "{'correlationKeys': {'incident_id': incident_id}, 'fix': 'Firmware'}"
               '</spiffworkflow:messagePayload></bpmn:extensionElements></bpmn:messageEventDefinition>')
    throwing = Bpmn("problem-fix").message("m_fixed", "problem_resolved").node("start", "startEvent") \
        .node("end", "endEvent", "Gelöst melden", payload).chain("start", "end")
    deploy(engine, waiting, throwing)
    ours = engine.start("incident-wait", {"incident_id": 7}, business_key="I-7")
    other = engine.start("incident-wait", {"incident_id": 8}, business_key="I-8")
    engine.start("problem-fix", {"incident_id": 7}, business_key="P-1")
    assert open_elements(engine, ours.id) == ["confirm"]
    assert engine.get_instance(other.id).active_elements == ["fixed"]
    assert engine.get_instance(ours.id).variables["fix"] == "Firmware"


def test_terminate_end_event_stops_every_branch(engine: Engine) -> None:
    p = Bpmn("terminate").node("start", "startEvent").node("split", "parallelGateway").node("a", "userTask") \
        .node("b", "userTask").node("stop", "endEvent", "Abbruch", "<bpmn:terminateEventDefinition/>") \
        .node("end_b", "endEvent").flow("start", "split").flow("split", "a").flow("split", "b") \
        .flow("a", "stop").flow("b", "end_b")
    deploy(engine, p)
    instance = engine.start("terminate")
    [b_task] = [t for t in engine.list_tasks(instance_id=instance.id) if t.element_id == "b"]
    work(engine, instance.id, "a")
    assert engine.get_instance(instance.id).state == "completed"
    assert engine.get_task(b_task.id).state == "cancelled"


def test_lanes_and_properties_set_candidate_groups(engine: Engine) -> None:
    p = Bpmn("lanes").node("start", "startEvent") \
        .node("t", "userTask", "Prüfen", properties(candidateGroups="billing,management", priority="80",
                                                    formKey="check.schema.json", dueIn="P2D")) \
        .node("end", "endEvent").chain("start", "t", "end")
    xml = p.xml().replace(
        b'<bpmn:startEvent',
        b'<bpmn:laneSet id="ls"><bpmn:lane id="lane_sales" name="sales"><bpmn:flowNodeRef>t</bpmn:flowNodeRef>'
        b'</bpmn:lane></bpmn:laneSet><bpmn:startEvent', 1)
    engine.deploy([("lanes.bpmn", xml)])
    instance = engine.start("lanes")
    [task] = engine.list_tasks(instance_id=instance.id)
    assert task.candidate_groups == ["sales", "billing", "management"] and task.lane == "sales"
    assert (task.priority, task.form_key) == (80, "check")
    assert task.due_at is not None and timedelta(days=1) < task.due_at - utcnow() <= timedelta(days=2)
    assert [t.id for t in engine.list_tasks(candidate_group="billing")] == [task.id]


def test_a_script_loop_of_2000_passes_in_one_step(engine: Engine) -> None:
    p = Bpmn("count").node("start", "startEvent").node("inc", "scriptTask", body=script("i = i + 1")) \
        .node("more", "exclusiveGateway", attrs='default="f_more_end"').node("end", "endEvent") \
        .flow("start", "inc").flow("inc", "more").flow("more", "inc", "i < 2000").flow("more", "end")
    deploy(engine, p)
    done = engine.start("count", {"i": 0})
    assert done.state == "completed" and done.variables["i"] == 2000


def _timer_due(engine: Engine, instance_id: str, element_id: str) -> datetime:
    [job] = [j for j in engine.jobs(instance_id=instance_id, kind="timer", state="pending")
             if j.element_id == element_id]
    return job.due_at


def test_month_durations_are_calendar_months_for_intermediate_and_boundary_timers(engine: Engine) -> None:
    p = Bpmn("monthly-wait").node("start", "startEvent") \
        .node("first", "intermediateCatchEvent", "Eine Stunde", timer("timeDuration", '"PT1H"')) \
        .node("month", "intermediateCatchEvent", "Ein Monat", timer("timeDuration", '"P1M"')) \
        .node("approve", "userTask", "Freigeben") \
        .node("late", "boundaryEvent", "Ein Monat", timer("timeDuration", '"P1M"'), 'attachedToRef="approve"') \
        .node("escalate", "userTask", "Eskalieren").node("end", "endEvent").node("end_late", "endEvent") \
        .chain("start", "first", "month", "approve", "end").chain("late", "escalate", "end_late")
    deploy(engine, p)
    instance = engine.start("monthly-wait")
    end_of_january = datetime(2027, 1, 31, 10, tzinfo=UTC)
    engine.fire_due_timers(end_of_january)  # "first" fires; "month" is armed at this (virtual) time
    assert _timer_due(engine, instance.id, "month") == datetime(2027, 2, 28, 10, tzinfo=UTC)  # not 3 March
    engine.fire_due_timers(datetime(2027, 2, 28, 10, tzinfo=UTC))
    assert open_elements(engine, instance.id) == ["approve"]
    assert _timer_due(engine, instance.id, "late") == datetime(2027, 3, 28, 10, tzinfo=UTC)
    engine.fire_due_timers(datetime(2027, 3, 28, 10, tzinfo=UTC))
    assert open_elements(engine, instance.id) == ["escalate"]


def _recurring_reminder(key: str, cycle: str) -> Bpmn:
    """A user task ("pay") with a non-interrupting cycle timer ("nudge") that calls the recording connector."""
    return Bpmn(key).node("start", "startEvent").node("pay", "userTask", "Bezahlen") \
        .node("nudge", "boundaryEvent", "Erinnerung", timer("timeCycle", f'"{cycle}"'),
              'attachedToRef="pay" cancelActivity="false"') \
        .node("remind", "serviceTask", "Erinnern", service("record", "out", n="1")) \
        .node("end", "endEvent").node("end_nudge", "endEvent") \
        .chain("start", "pay", "end").chain("nudge", "remind", "end_nudge")


def test_a_monthly_boundary_cycle_stays_on_its_day_and_does_not_burst(engine: Engine, calls: Calls) -> None:
    deploy(engine, _recurring_reminder("nag", "R/2027-01-31T09:00:00+01:00/P1M"))
    instance = engine.start("nag")
    assert _timer_due(engine, instance.id, "nudge") == datetime(2027, 1, 31, 8, tzinfo=UTC)
    engine.fire_due_timers(datetime(2027, 1, 31, 8, tzinfo=UTC))
    assert len(calls.calls) == 1 and _timer_due(engine, instance.id, "nudge") == datetime(2027, 2, 28, 8, tzinfo=UTC)
    engine.fire_due_timers(datetime(2027, 2, 28, 8, tzinfo=UTC))
    assert len(calls.calls) == 2 and _timer_due(engine, instance.id, "nudge") == datetime(2027, 3, 31, 8, tzinfo=UTC)
    engine.fire_due_timers(datetime(2027, 6, 15, tzinfo=UTC))  # 31 March, 30 April, 31 May overdue: one reminder
    assert len(calls.calls) == 3 and _timer_due(engine, instance.id, "nudge") == datetime(2027, 6, 30, 8, tzinfo=UTC)
    work(engine, instance.id, "pay")
    assert engine.get_instance(instance.id).state == "completed" and engine.jobs(instance_id=instance.id) == []


def test_a_limited_boundary_cycle_fires_its_repetitions_one_at_a_time(engine: Engine, calls: Calls) -> None:
    deploy(engine, _recurring_reminder("thrice", "R3/PT1H"))
    instance = engine.start("thrice")
    now = utcnow()
    fired = [engine.fire_due_timers(now + timedelta(hours=h, minutes=1)) for h in (1, 2, 3, 4, 5)]
    assert fired == [1, 1, 1, 0, 0] and len(calls.calls) == 3
    assert open_elements(engine, instance.id) == ["pay"]


def test_each_parallel_multi_instance_task_shows_and_stores_its_own_item(engine: Engine) -> None:
    p = Bpmn("contracts").node("start", "startEvent") \
        .node("review", "userTask", "Vertrag prüfen", multi_instance("contracts", "contract", False, "verdicts",
                                                                     "verdict")) \
        .node("end", "endEvent").chain("start", "review", "end")
    deploy(engine, p)
    contracts = [{"number": "V-1", "term": 12}, {"number": "V-2", "term": 24}, {"number": "V-3", "term": 36}]
    instance = engine.start("contracts", {"contracts": contracts, "customer": "ACME"})
    tasks = engine.list_tasks(instance_id=instance.id)
    shown = {engine.task_data(t.id)["contract"]["number"]: t for t in tasks}
    assert sorted(shown) == ["V-1", "V-2", "V-3"]
    assert all(engine.task_data(t.id)["customer"] == "ACME" for t in tasks)
    for number, task in shown.items():
        engine.complete_task(task.id, {"verdict": f"ok {number}"})
    done = engine.get_instance(instance.id)
    assert done.state == "completed"
    # Spiff appends a parallel activity's outputs to a separate list in completion order (not item order)
    assert sorted(done.variables["verdicts"]) == ["ok V-1", "ok V-2", "ok V-3"]


def test_date_today_in_a_script_task(engine: Engine) -> None:
    p = Bpmn("today").node("start", "startEvent") \
        .node("calc", "scriptTask", "Frist", script("due = (date.today() + timedelta(days=14)).isoformat()")) \
        .node("end", "endEvent").chain("start", "calc", "end")
    deploy(engine, p)
    done = engine.start("today")
    assert done.state == "completed" and done.variables["due"] == (date.today() + timedelta(days=14)).isoformat()


def test_a_malformed_timer_duration_is_a_process_error_naming_the_event(engine: Engine) -> None:
    p = Bpmn("bad-wait").node("start", "startEvent") \
        .node("pause", "intermediateCatchEvent", "Warten", timer("timeDuration", "wait_for")) \
        .node("end", "endEvent").chain("start", "pause", "end")
    deploy(engine, p)
    with pytest.raises(ProcessError) as failed:
        engine.start("bad-wait", {"wait_for": "two weeks"})
    assert failed.value.element_id == "pause" and "'two weeks' is not an ISO 8601 duration" in str(failed.value)
