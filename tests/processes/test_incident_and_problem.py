"""Incidents and problems through the REST API: routing by category, the customer's answer by message, the
SLA escalation and violation by timer, and a problem whose resolution resolves and advances its incidents."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from crm.accounts import ContactInput, create_account, create_contact
from crm.schema import incident, incident_log

from .conftest import World


def _customer(world: World) -> dict[str, int]:
    with world.api.engine.db.transaction() as conn:
        account = create_account(conn, "Bäckerei Schmidt", sla_class="silver")
        contact = create_contact(conn, ContactInput(last_name="Schmidt", salutation="Frau",
                                                    email="schmidt@baeckerei.example"), account)
    return {"account_id": account, "contact_id": contact}


def _report(world: World, category: str, **extra: object) -> str:
    variables = {**_customer(world), "summary": "Internet gestört", "impact": "medium", "urgency": "high",
                 "origin": "phone", "category": category, "description": "Seit 8 Uhr kein Sync", **extra}
    return world.start("incident", variables)


def _incident_row(world: World, instance: str) -> sa.Row[tuple[object, ...]]:
    number = world.wait_for(lambda: world.instance(instance)["variables"].get("incident_number"), "incident number")
    with world.api.engine.db.read() as conn:
        return conn.execute(sa.select(incident).where(incident.c.number == number)).one()


def test_network_incident_goes_to_2nd_level_and_closes_when_the_customer_confirms(world: World) -> None:
    instance = _report(world, "network")
    task = world.task(instance, "work_2nd", "support2")
    assert task["candidateGroups"] == ["support2"] and task["priority"] == 70
    world.complete(instance, "work_2nd", "support2", {"resolution": "Port am DSLAM neu gestartet"})
    world.wait_for(lambda: "wait" in world.instance(instance)["activeElements"], "waiting for the answer")
    row = _incident_row(world, instance)
    assert row.status == "resolved" and row.assigned_group == "support2" and row.responded_at is not None
    answer = world.api.client("integration").post("/messages", json={
        "name": "incident_answer", "correlationKeys": {"incident_id": row.id}, "variables": {"confirmed": True}})
    assert answer.status_code == 200, answer.text
    world.wait_state(instance, "completed")
    assert _incident_row(world, instance).status == "closed"
    assert any("Bitte bestätigen" in s or row.number in s for s in world.inbox.subjects())


def test_customer_saying_not_fixed_reopens_and_routes_the_incident_again(world: World) -> None:
    instance = _report(world, "voip")
    world.complete(instance, "work_2nd", "support2", {"resolution": "Trunk neu registriert"})
    world.wait_for(lambda: "wait" in world.instance(instance)["activeElements"], "waiting for the answer")
    row = _incident_row(world, instance)
    answer = world.api.client("integration").post("/messages", json={
        "name": "incident_answer", "correlationKeys": {"incident_id": row.id}, "variables": {"confirmed": False}})
    assert answer.status_code == 200, answer.text
    world.task(instance, "work_2nd", "support2")
    reopened = _incident_row(world, instance)
    assert reopened.status == "assigned" and reopened.assigned_group == "support2"


def test_sla_escalation_at_75_percent_and_violation_at_100_percent(world: World) -> None:
    instance = _report(world, "billing")
    world.task(instance, "work_1st", "servicedesk")
    row = _incident_row(world, instance)
    engine = world.api.engine
    escalate_at = datetime.fromisoformat(world.instance(instance)["variables"]["incident"]["escalate_at"])
    assert row.opened_at < escalate_at < row.resolution_due  # 75 % of the working time, on the SLA's calendar
    warn = escalate_at + timedelta(minutes=1)
    assert engine.fire_due_timers(now=warn) >= 1  # the shipped daily start timers may be due as well
    escalation = world.task(instance, "escalate", "manager")
    assert escalation["candidateGroups"] == ["management"]
    assert engine.fire_due_timers(now=row.resolution_due + timedelta(minutes=1)) >= 1
    world.complete(instance, "urgent", "support2", {"resolution": "Router getauscht"})
    world.wait_for(lambda: "wait" in world.instance(instance)["activeElements"], "waiting for the answer")
    with engine.db.read() as conn:
        entries = [e.text for e in conn.execute(sa.select(incident_log).where(incident_log.c.incident_id == row.id))]
    assert any(text.startswith("SLA verletzt") for text in entries)
    assert engine.fire_due_timers(now=datetime.now(row.opened_at.tzinfo) + timedelta(days=4)) >= 1
    world.wait_for(lambda: _incident_row(world, instance).status == "closed", "closed after 3 days of silence")
    world.complete(instance, "escalate", "manager", {"measure": "Kunde informiert"})
    world.wait_state(instance, "completed")


def test_resolving_a_problem_resolves_its_incidents_and_asks_their_customers(world: World) -> None:
    first, second = _report(world, "access"), _report(world, "access")
    ids = [_incident_row(world, first).id, _incident_row(world, second).id]
    problem = world.start("problem", {"title": "DSLAM Nord ausgefallen", "incident_ids": ids})
    world.complete(problem, "analyse", "support2", {"root_cause": "Linecard defekt", "workaround": "Modem neu starten"})
    world.complete(problem, "fix", "support2", {"resolution": "Linecard getauscht"})
    world.complete(problem, "approve", "manager", {"accepted": True})
    world.wait_state(problem, "completed")
    for instance in (first, second):
        world.wait_for(lambda i=instance: "wait" in world.instance(i)["activeElements"], "incident advanced")
        assert _incident_row(world, instance).status == "resolved"
    with world.api.engine.db.read() as conn:
        public = [e.text for e in conn.execute(sa.select(incident_log).where(
            incident_log.c.incident_id == ids[0], incident_log.c.visibility == "public"))]
    assert public == ["Workaround: Modem neu starten"]
    world.wait_for(lambda: len(world.inbox.messages) >= 2, "confirmation requests to both customers")
