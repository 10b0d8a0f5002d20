"""The sick note through the REST API: HR acknowledges; a short sickness is done at once, a longer one waits for
the doctor's certificate (form or message ``sick_certificate``) and reminds the employee after three days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from crm.documents import DocumentLinks, DocumentStore
from crm.schema import sick_note

from .conftest import World
from .employee import EMAIL, USERNAME, Employee, key_employee, logged_in_employee, mails_with_subject

REMINDER = "Erinnerung: Attest fehlt"


def report(world: World, employee: Employee, first_day: str, last_day: str) -> str:
    """The employee reports sick themselves; HR acknowledges."""
    instance = employee.start("sick-note")
    employee.complete(world, instance, "report", {"first_day": first_day, "last_day": last_day})
    task = world.task(instance, "acknowledge", "hr")
    assert task["candidateGroups"] == ["hr"] and task["formKey"] == "sick-note-acknowledge"
    world.complete(instance, "acknowledge", "hr", {"note": "Vertretung: Herr Wolf"})
    return instance


def the_note(world: World, employee: str = USERNAME) -> sa.Row[Any]:
    with world.api.engine.db.read() as conn:
        return conn.execute(sa.select(sick_note).where(sick_note.c.employee == employee)).one()


def reminders(world: World) -> list[list[str]]:
    """The recipients of each certificate reminder sent so far."""
    return mails_with_subject(world, REMINDER)


def scanned_certificate(world: World) -> int:
    with world.api.engine.db.transaction() as conn:
        return DocumentStore().store(conn, b"%PDF-1.4 AU-Bescheinigung", "au.pdf", "application/pdf", DocumentLinks(),
                                     uploaded_by="hr")


def test_short_sickness_needs_no_certificate(world: World) -> None:
    instance = report(world, logged_in_employee(world), "2027-03-08", "2027-03-10")
    world.wait_state(instance, "completed")
    note = the_note(world)
    assert (note.status, note.decided_by, note.certificate_document_id) == ("approved", "key:test-hr", None)


def test_certificate_reminder_after_three_days_then_the_certificate_arrives_by_message(world: World) -> None:
    employee = logged_in_employee(world)
    instance = report(world, employee, "2027-03-08", "2027-03-12")
    task = employee.task(world, instance, "hand_in")
    assert task["formKey"] == "sick-note-certificate"
    engine = world.api.engine
    engine.fire_due_timers(now=datetime.now(UTC) + timedelta(days=2))  # other shipped processes' timers may fire
    assert reminders(world) == [] and "hand_in" in world.instance(instance)["activeElements"]
    engine.fire_due_timers(now=datetime.now(UTC) + timedelta(days=3, minutes=1))
    world.wait_for(lambda: reminders(world), "the reminder")
    assert reminders(world) == [[EMAIL]] and "hand_in" in world.instance(instance)["activeElements"]
    assert the_note(world).status == "submitted"  # not acknowledged in the CRM without the certificate

    document = scanned_certificate(world)
    sent = world.api.client("integration").post("/messages", json={
        "name": "sick_certificate", "correlationKeys": {"sick_note_id": the_note(world).id},
        "variables": {"certificate_document_id": document}})
    assert sent.status_code == 200, sent.text
    world.wait_state(instance, "completed")
    note = the_note(world)
    assert (note.status, note.certificate_document_id) == ("approved", document)


def test_started_by_an_api_key_the_reminder_is_skipped_and_the_certificate_comes_by_form(world: World) -> None:
    employee = key_employee(world)
    instance = report(world, employee, "2027-03-08", "2027-03-19")
    employee.task(world, instance, "hand_in")
    engine = world.api.engine
    engine.fire_due_timers(now=datetime.now(UTC) + timedelta(days=3, minutes=1))
    world.wait_for(lambda: "end_reminded" in [h.element_id for h in engine.history(instance)
                                              if h.type == "element.completed"], "the reminder branch")
    assert reminders(world) == []  # no address for an API key: the reminder is skipped, not failed
    document = scanned_certificate(world)
    employee.complete(world, instance, "hand_in", {"certificate_document_id": document})
    world.wait_state(instance, "completed")
    note = the_note(world, employee.name)
    assert (note.status, note.certificate_document_id) == ("approved", document)
