"""The vacation request through the REST API: the remaining-days check before the team lead sees it, approval
with the calendar entry (after the employee moved a clashing appointment), rejection with a reason, the mails.
The employee is whoever starts the request: a logged-in user (mails to their address) or an API key (no mails);
the page /start begins it for the person and opens the request form."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crm.appointments import AppointmentInput, cancel_appointment, create_appointment
from crm.schema import appointment, appointment_participant, vacation_request
from crm.staff import CALENDAR_ZONE, set_entitlement

from .conftest import World
from .employee import (
    USERNAME,
    Employee,
    add_employee_user,
    key_employee,
    logged_in_employee,
    mail_to_employee,
    mails_with_subject,
)

WEEK = {"first_day": "2027-03-08", "last_day": "2027-03-12", "deputy": "Frau Schmidt"}  # Mon–Fri: 5 days


def start(world: World, employee: Employee, entitlement: str) -> str:
    """The employee starts a request themselves, with the given vacation days for 2027."""
    with world.api.engine.db.transaction() as conn:
        set_entitlement(conn, employee.name, 2027, Decimal(entitlement))
    instance = employee.start("vacation-request")
    employee.complete(world, instance, "submit", WEEK)
    return instance


def requests(world: World, employee: str = USERNAME) -> list[sa.Row[Any]]:
    with world.api.engine.db.read() as conn:
        return list(conn.execute(sa.select(vacation_request).where(vacation_request.c.employee == employee)))


def test_request_over_the_entitlement_is_refused_with_the_reason_before_the_team_lead(world: World) -> None:
    instance = start(world, logged_in_employee(world), "3")
    done = world.wait_state(instance, "completed")
    assert done["variables"]["refusal_reason"] == "last_day: 5 working days requested but only 3.0 left in 2027"
    assert requests(world) == []
    body = mail_to_employee(world, "Urlaubsantrag nicht möglich")
    assert "2027-03-08" in body and "only 3.0 left" in body
    tasks = world.api.client("manager").get("/tasks", params={"limit": 200}).json()["items"]
    assert not [t for t in tasks if t["instanceId"] == instance]


def test_approved_vacation_goes_into_the_calendar_after_a_clash_is_moved(world: World) -> None:
    with world.api.engine.db.transaction() as conn:
        clash = create_appointment(conn, AppointmentInput(
            "Kundentermin Hofmann KG", datetime(2027, 3, 10, 9, tzinfo=UTC), datetime(2027, 3, 10, 10, tzinfo=UTC),
            [USERNAME]))
    employee = logged_in_employee(world)
    instance = start(world, employee, "30")
    task = world.task(instance, "approve", "manager")
    assert task["candidateGroups"] == ["management", "hr"] and task["formKey"] == "vacation-approval"
    variables = world.instance(instance)["variables"]
    assert (variables["days"], variables["remaining_days"]) == ("5.0", "25.0")
    world.complete(instance, "approve", "manager", {"approved": True})

    conflict = employee.task(world, instance, "resolve_conflict")  # the employee's alone
    assert "Kundentermin Hofmann KG" in world.instance(instance)["variables"]["conflict"]
    assert conflict["formKey"] == "vacation-conflict"
    with world.api.engine.db.transaction() as conn:
        cancel_appointment(conn, clash)
    employee.complete(world, instance, "resolve_conflict", {"moved": True})
    world.wait_state(instance, "completed")

    [row] = requests(world)
    assert (row.status, row.days, row.decided_by) == ("approved", Decimal(5), "key:test-manager")  # who decided
    with world.api.engine.db.read() as conn:
        entry = conn.execute(sa.select(appointment).join(appointment_participant).where(
            appointment_participant.c.participant == USERNAME, appointment.c.status == "planned")).one()
    assert entry.topic == f"Urlaub (Antrag {row.id})"
    assert entry.starts_at == datetime(2027, 3, 8, tzinfo=CALENDAR_ZONE)
    assert entry.ends_at == datetime(2027, 3, 13, tzinfo=CALENDAR_ZONE)
    assert "Resturlaub: 25.0 Tage" in mail_to_employee(world, "Urlaub genehmigt")
    mine = employee.client.get("/staff/vacation-requests").json()["items"]
    assert [(r["id"], r["status"]) for r in mine] == [(row.id, "approved")]


def test_started_by_an_api_key_the_key_is_the_employee_and_no_mail_goes_out(world: World) -> None:
    employee = key_employee(world)
    instance = start(world, employee, "30")
    assert world.instance(instance)["variables"]["employee_user"] == {
        "username": employee.name, "display_name": employee.name, "email": None}
    task = world.task(instance, "approve", "manager")
    manager = world.api.client("manager")
    assert manager.post(f"/tasks/{task['id']}/claim").status_code == 200
    refused = manager.post(f"/tasks/{task['id']}/complete", json={"data": {"approved": False}})
    assert refused.status_code in (400, 422) and "rejection_reason" in refused.text
    world.complete(instance, "approve", "manager", {"approved": False, "rejection_reason": "Messe in der Woche"})
    world.wait_state(instance, "completed")
    [row] = requests(world, employee.name)
    assert row.status == "rejected"
    assert mails_with_subject(world, "Urlaubsantrag abgelehnt") == []
    balance = employee.client.get("/staff/vacation-balance", params={"year": 2027}).json()
    assert balance["remainingDays"] == "30.0"


def test_a_user_starting_it_from_the_start_page_lands_on_the_form_and_the_request_is_theirs(world: World) -> None:
    add_employee_user(world)
    browser = world.api.client()
    login = browser.post("/auth/login", json={"username": USERNAME, "password": "kim-password"})
    csrf = login.json()["csrfToken"]
    with world.api.engine.db.transaction() as conn:
        set_entitlement(conn, USERNAME, 2027, Decimal(30))
    page = f"{world.api.base_url}/start"
    assert "Urlaubsantrag" in browser.get(page).text
    started = browser.post(page, data={"process": "vacation-request", "csrf_token": csrf})
    assert started.status_code == 303 and started.headers["location"].startswith("/tasks/")
    form = browser.get(world.api.base_url + started.headers["location"])
    assert form.status_code == 200 and "Urlaub beantragen" in form.text
    task_id = started.headers["location"].removeprefix("/tasks/")
    done = browser.post(f"/tasks/{task_id}/complete", json={"data": WEEK}, headers={"X-CSRF-Token": csrf})
    assert done.status_code == 200, done.text
    [row] = world.wait_for(lambda: requests(world), "the stored request")
    assert (row.employee, row.status, row.days) == (USERNAME, "submitted", Decimal(5))
